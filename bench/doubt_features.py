"""Which doubt scores separate the wrong cell-type answers from the right ones on other
microscopes? Reads `wbc analyse --features` JSON lines (one per cell, the pooled encoder
features included) for the reference cells (PBC train, Chula's training series) and for the
cells to score, and prints the AUROC (wrong vs right) of candidate scores per set:

- `doubt`: the shipped doubt model's score (the network's certainty, the global feature
  distance, the front end's corrections);
- `class_distance`: the Mahalanobis distance (shared covariance, shrunk) of the features to the
  mean of the type the network answered, minus the smallest distance to another type's mean
  (the feature space's own margin; "relative" as a Gaussian discriminant sees it);
- `lda_doubt`: 1 - that discriminant's posterior of the network's answer;
- `knn`: the share of the 10 nearest reference cells (cosine) of another type;
- `lda_disagrees`: the discriminant's answer is not the network's (0/1).

Choices are read on Chula's held-back series and PBC val; cellavision100 and tecom300 are only
reported.

    python3 bench/doubt_features.py --paths        # writes target/doubt/*.paths
    for s in reference val chula_held_back cellavision100 tecom300; do
      xargs -a target/doubt/$s.paths ./target/release/wbc analyse --features > target/doubt/$s.jsonl
    done
    python3 bench/doubt_features.py                # the table (numpy)
"""

import csv
import json
import os
import sys

DATA = "../shared/data"
OUT = "target/doubt"
TYPES = ["Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"]
EXTERNAL = ["Neutrophil", "Lymphocyte", "Monocyte", "Eosinophil", "Basophil"]


def chula(held_back):
    """Chula's cells of the held-back (or training) series, as `chula_cells` in data.rs."""
    with open(f"{DATA}/chula/labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    held = set()
    for t in TYPES:
        series = sorted({r["series"] for r in rows if r["cell_type"] == t})
        picked = series[1::3] or series[:1]
        held.update(picked)
    return [(f"{DATA}/chula/images/{r['file']}", r["cell_type"]) for r in rows
            if (r["series"] in held) == held_back]


def pbc(split, per_type):
    with open(f"{DATA}/wbcatt/pbc_attr_v1_{split}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for t in TYPES:
        of = [r for r in rows if r["label"] == t]
        step = max(1, len(of) // per_type)
        out += [(f"{DATA}/pbc/{r['path']}", t) for r in of[::step][:per_type]]
    return out


def external(name):
    with open(f"{DATA}/{name}/labels.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [(f"{DATA}/{name}/images/{int(r[0]):03}.png", EXTERNAL[int(r[1]) - 1]) for r in rows]


def sets():
    return {
        "reference": pbc("train", 200) + chula(False),
        "val": pbc("val", 60),
        "chula_held_back": chula(True),
        "cellavision100": external("cellavision100"),
        "tecom300": external("tecom300"),
    }


def auroc(scores, wrong):
    pos = [s for s, w in zip(scores, wrong) if w]
    neg = [s for s, w in zip(scores, wrong) if not w]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def load(name, truth):
    import numpy as np
    feats, probs, doubt, right = [], [], [], []
    for line in open(f"{OUT}/{name}.jsonl"):
        cell = json.loads(line)
        if "features" not in cell:
            continue
        feats.append(cell["features"])
        p = cell["cell_type"]["probabilities"]
        probs.append([p[t] for t in TYPES])
        doubt.append(cell.get("doubt") or 0.0)
        right.append(truth[cell["path"]])
    return np.array(feats), np.array(probs), np.array(doubt), right


def main():
    all_sets = sets()
    if len(sys.argv) > 1 and sys.argv[1] == "--paths":
        os.makedirs(OUT, exist_ok=True)
        for name, cells in all_sets.items():
            with open(f"{OUT}/{name}.paths", "w") as f:
                f.write("\n".join(p for p, _ in cells) + "\n")
            print(name, len(cells))
        return
    import numpy as np
    truth = {p: TYPES.index(t) for cells in all_sets.values() for p, t in cells}
    rf, rp, _, ry = load("reference", truth)
    ry = np.array(ry)
    group = 5  # as the calibration card: 1,280 features averaged in fives
    g = lambda x: x.reshape(len(x), -1, group).mean(2)
    rg = g(rf)
    means = np.stack([rg[ry == c].mean(0) for c in range(len(TYPES))])
    centred = rg - means[ry]
    cov = centred.T @ centred / len(rg)
    cov = 0.9 * cov + 0.1 * np.eye(len(cov)) * np.trace(cov) / len(cov)
    prec = np.linalg.inv(cov)
    rn = rf / np.linalg.norm(rf, axis=1, keepdims=True)
    rows = []
    for name in ["val", "chula_held_back", "cellavision100", "tecom300"]:
        f, p, doubt, y = load(name, truth)
        y = np.array(y)
        answer = p.argmax(1)
        wrong = answer != y
        fg = g(f)
        d = np.stack([np.einsum("ij,jk,ik->i", fg - m, prec, fg - m) for m in means], 1)
        d_pred = d[np.arange(len(d)), answer]
        d_other = np.where(np.eye(len(TYPES))[answer] > 0, np.inf, d).min(1)
        post = np.exp(-(d - d.min(1, keepdims=True)) / 2)
        post /= post.sum(1, keepdims=True)
        fn = f / np.linalg.norm(f, axis=1, keepdims=True)
        near = np.argsort(-(fn @ rn.T), 1)[:, :10]
        knn = (ry[near] != answer[:, None]).mean(1)
        scores = {
            "doubt": doubt,
            "class_distance": np.sqrt(d_pred) - np.sqrt(d_other),
            "lda_doubt": 1 - post[np.arange(len(d)), answer],
            "knn": knn,
            "lda_disagrees": (d.argmin(1) != answer).astype(float),
            "1 - top probability": 1 - p.max(1),
        }
        row = {"set": name, "cells": len(y), "network_accuracy": round(100 * (1 - wrong.mean()), 1),
               "lda_accuracy": round(100 * (d.argmin(1) == y).mean(), 1),
               "knn_accuracy": round(100 * (np.array([np.bincount(ry[n], minlength=5).argmax() for n in near]) == y).mean(), 1)}
        row.update({k: round(auroc(list(v), list(wrong)), 3) for k, v in scores.items()})
        rows.append(row)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
