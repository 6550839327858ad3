"""Cell-structure-aware heads on the shipped encoder, frozen: does pooling the encoder's
features inside the nucleus and the cytoplasm (the paper's §3.3, one pass) beat global
pooling alone? Both heads are trained the same way on the same frozen features of PBC train
and scored on val; the masks are the shipped segmentation network's.

    xargs -a PATHS ./target/release/wbc segment --network models/seg_net --out MASKS
    target/encoder-venv/bin/python bench/structure_heads.py runs/encoder_v4/best.pt MASKS

(PATHS: the train and val images of the WBCAtt split, one per line. Needs the training
script's caches target/encoder-cache/{train,val}_280.pt.)
"""
import os, sys, time
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, 'train')
import finetune_encoder as fe
from frozen_heads import head_epoch

torch.set_num_threads(2)
torch.manual_seed(0)
ckpt, masks = sys.argv[1], sys.argv[2]
net = fe.AttributeNet()
net.load_state_dict(torch.load(ckpt))
net.eval()


def feature_maps(images):
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            out.append(net.feature_map(fe.plain(images[i:i + 64], 224)).half())
    return torch.cat(out)


def regions(paths, side):
    """Per image, the share of each feature cell covered by nucleus, cytoplasm (vacuoles
    included) and the whole white cell: (N, 3, side, side)."""
    out = torch.zeros(len(paths), 3, side, side)
    for i, p in enumerate(paths):
        stem = os.path.splitext(os.path.basename(p))[0]
        lab = fe.square(Image.open(f"{masks}/{stem}.png"))
        lab = torch.from_numpy(np.asarray(lab).copy()).long()
        planes = torch.stack([lab == 2, (lab == 1) | (lab == 5), (lab == 1) | (lab == 2) | (lab == 5)]).float()
        out[i] = F.adaptive_avg_pool2d(planes[None], side)[0]
    return out


def pooled(maps, reg):
    """[global, nucleus, cytoplasm, cell] means of the feature map (a region that is empty
    falls back to the global mean)."""
    f = maps.float()
    g = f.mean((2, 3))
    parts = [g]
    for r in range(3):
        w = reg[:, r:r + 1]
        s = w.sum((2, 3))
        m = (f * w).sum((2, 3)) / s.clamp(min=1e-6)
        parts.append(torch.where(s > 1e-3, m, g))
    return torch.cat(parts, 1)


t0 = time.time()
tr_paths, tr_labels = fe.read_wbcatt('../shared/data', 'train')
va_paths, va_labels = fe.read_wbcatt('../shared/data', 'val')
tr = pooled(feature_maps(torch.load('target/encoder-cache/train_280.pt')), regions(tr_paths, 7))
va = pooled(feature_maps(torch.load('target/encoder-cache/val_280.pt')), regions(va_paths, 7))
print(f"features in {time.time() - t0:.0f} s: {tuple(tr.shape)}", flush=True)

weights = fe.value_weights(tr_labels)


def score(logits, labels):
    f1s, t = fe.attribute_scores(logits, labels)
    return sum(f1s) / len(f1s), f1s, t


def train_head(cols, name, epochs=40):
    x, xv = tr[:, cols], va[:, cols]
    mu, sd = x.mean(0), x.std(0) + 1e-4
    x, xv = (x - mu) / sd, (xv - mu) / sd
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], fe.HEAD_WIDTH)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.05)
    best = (0, None)
    for epoch in range(epochs):
        head_epoch(head, opt, x, tr_labels, weights, len(fe.GROUPS))
        with torch.no_grad():
            m, f1s, t = score(head(xv), va_labels)
        if m > best[0]:
            best = (m, (epoch + 1, f1s, t))
    m, (epoch, f1s, t) = best
    nucleus = f1s[[n for n, _ in fe.ATTRIBUTES].index('nucleus_shape')]
    print(f"{name}: val mean macro-F1 {m:.2f} (nucleus shape {nucleus:.1f}, type {t:.2f}), best epoch {epoch}", flush=True)
    return m


W = 1280
with torch.no_grad():
    m, f1s, t = score(net.head(va[:, :W]), va_labels)
print(f"shipped head (global pooling, fine-tuned with the encoder): val {m:.2f}, type {t:.2f}")
train_head(list(range(W)), "global pooling, head retrained on frozen features")
train_head(list(range(W)) + list(range(W, 3 * W)), "global + nucleus + cytoplasm pooling")
train_head(list(range(4 * W)), "global + nucleus + cytoplasm + whole-cell pooling")
