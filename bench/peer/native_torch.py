"""Native PyTorch (CPU) on the app's two architectures, the second native peer of
`cargo xtask bench` beside onnxruntime: the same layers as bench/peer/make_onnx.py builds
(from the layer lists in the shipped model cards), random weights (timing only).

- Inference: eval mode under torch.inference_mode(), one forward pass on a fixed input,
  output copied to NumPy; first run, then warm median and p90 of 30, at each batch size.
- Training (attribute network): the step `wbc train` takes (forward in training mode, the
  12 weighted softmax cross-entropies of the head's groups, backward, AdamW), batch 64 on
  random images and labels, at the first stage's input (112 px) and the second's (160 px);
  warm median and p90 of the step, images per second at the median. `wbc time-training`
  times Burn's step the same way.

Usage: python3 native_torch.py THREADS BURN_TRAINING_JSONL [BATCH ...]
  BURN_TRAINING_JSONL: `wbc time-training`'s output, whose "groups" are the head's softmax
  group widths
-> one JSON line per measurement.
"""
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
HEAD_WIDTH = 36
NUM_LABELS = 6


def conv_bn_relu(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Basic(nn.Module):
    def __init__(self, cin, w, s):
        super().__init__()
        self.branch = nn.Sequential(conv_bn_relu(cin, w, 3, s), nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w))
        self.skip = None if (s == 1 and cin == w) else nn.Sequential(nn.Conv2d(cin, w, 1, s, bias=False), nn.BatchNorm2d(w))

    def forward(self, x):
        return F.relu(self.branch(x) + (x if self.skip is None else self.skip(x)))


class Inverted(nn.Module):
    def __init__(self, cin, w, s, expansion):
        super().__init__()
        hidden = cin * expansion
        self.body = nn.Sequential(
            conv_bn_relu(cin, hidden, 1), conv_bn_relu(hidden, hidden, 3, s, groups=hidden),
            nn.Conv2d(hidden, w, 1, bias=False), nn.BatchNorm2d(w))
        self.residual = s == 1 and cin == w

    def forward(self, x):
        h = self.body(x)
        return h + x if self.residual else h


class AttributeNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        block, layers, cin = c.get("block", "plain"), [], 3
        for i, (w, s) in enumerate(zip(c["widths"], c["strides"])):
            if i == 0 or block == "plain":
                layers.append(conv_bn_relu(cin, w, 3, s))
            elif block == "basic":
                layers.append(Basic(cin, w, s))
            else:
                layers.append(Inverted(cin, w, s, block["inverted"]["expansion"]))
            cin = w
        if c.get("feature_width"):
            layers.append(conv_bn_relu(cin, c["feature_width"], 1))
            cin = c["feature_width"]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(c.get("dropout", 0.0))
        self.head = nn.Linear(cin, HEAD_WIDTH)

    def forward(self, x):
        return self.head(self.dropout(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)))


class SegNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        cin = 3 + int(c.get("centre_prior", False))
        self.encoder = nn.ModuleList()
        for w in c["widths"]:
            self.encoder.append(nn.Sequential(conv_bn_relu(cin, w, 3, 2), conv_bn_relu(w, w, 3)))
            cin = w
        self.decoder = nn.ModuleList()
        for w in reversed(c["widths"][:-1]):
            self.decoder.append(conv_bn_relu(cin + w, w, 3))
            cin = w
        self.classifier = nn.Conv2d(cin, NUM_LABELS, 1)

    def forward(self, x):
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        skips.pop()
        for block in self.decoder:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[2:], mode="nearest"), skip], 1))
        return self.classifier(x)


def quantiles(runs):
    runs = sorted(runs)
    at = lambda q: runs[round((len(runs) - 1) * q)]
    return {"median_ms": round(at(0.5), 2), "p90_ms": round(at(0.9), 2), "runs": len(runs)}


def time_inference(name, net, shape):
    net.eval()
    x = torch.from_numpy(np.random.default_rng(0).random(shape, dtype=np.float32))
    with torch.inference_mode():
        t = time.perf_counter()
        net(x).numpy()
        first = (time.perf_counter() - t) * 1000
        runs = []
        for _ in range(30):
            t = time.perf_counter()
            net(x).numpy()
            runs.append((time.perf_counter() - t) * 1000)
    return {"engine": "pytorch (native)", "graph": name, "batch": shape[0], "first_ms": round(first, 1), **quantiles(runs)}


def time_training(card, groups, size, batch=64, steps=10):
    c = dict(card["config"], input_size=size)
    net = AttributeNet(c).train()
    optim = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32))
    targets = [torch.from_numpy(rng.integers(0, n, batch)) for n in groups]
    weights = [torch.ones(n) for n in groups]
    runs = []
    for step in range(steps + 2):
        t = time.perf_counter()
        logits = net(x)
        loss, offset = 0.0, 0
        for n, y, w in zip(groups, targets, weights):
            loss = loss + F.cross_entropy(logits[:, offset:offset + n], y, weight=w)
            offset += n
        loss.item()  # as `wbc train` reads each step's loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        if step >= 2:
            runs.append((time.perf_counter() - t) * 1000)
    q = quantiles(runs)
    return {"engine": "pytorch (native)", "network": "attribute_net", "input_size": size, "batch": batch,
            "step": q, "images_per_second": round(batch / (q["median_ms"] / 1000), 1)}


def main():
    threads = int(sys.argv[1])
    with open(sys.argv[2]) as f:
        groups = json.loads(f.readline())["groups"]
    assert sum(groups) == HEAD_WIDTH, groups
    batches = [int(b) for b in sys.argv[3:]] or [1, 8]
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(1)
    cards = {n: json.load(open(os.path.join(ROOT, "models", f"{n}.json"))) for n in ("attribute_net", "seg_net")}
    nets = {"attribute_net": AttributeNet(cards["attribute_net"]["config"]), "seg_net": SegNet(cards["seg_net"]["config"])}
    for b in batches:
        for name, net in nets.items():
            c = cards[name]["config"]
            channels = 3 + int(c.get("centre_prior", False))
            line = time_inference(f"{name}_b{b}", net, (b, channels, c["input_size"], c["input_size"]))
            line["threads"] = threads
            print(json.dumps(line), flush=True)
    for size in (112, 160):
        line = time_training(cards["attribute_net"], groups, size)
        line["threads"] = threads
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
