"""Score what the page answers against the WBCAtt labels: the table `wbc analyse --out` writes
(the page's own export: front end, both networks, the measured type joined) for the cells of a
split, against that split's CSV. Prints per-attribute macro-F1, their mean, the cell-type
accuracy and how many cells carry a warning, as one JSON object.

    cargo run --release -p wbc -- analyse $(python3 bench/score_analyse.py --paths test [EVERY]) --out target/test_table.csv
    python3 bench/score_analyse.py target/test_table.csv ../shared/data/wbcatt/pbc_attr_v1_test.csv [--bootstrap N]

With `--bootstrap N` it adds a 95% interval (percentile bootstrap over cells, N resamples,
seed fixed) for the mean macro-F1, nucleus shape and the cell-type accuracy: with one trained
seed, the spread the test split's own sampling gives.

Standard library only, so it runs anywhere the repository does.
"""

import csv
import json
import random
import sys

ATTRIBUTES = ["cell_size", "cell_shape", "nucleus_shape", "nuclear_cytoplasmic_ratio",
              "chromatin_density", "cytoplasm_vacuole", "cytoplasm_texture", "cytoplasm_colour",
              "granule_type", "granule_colour", "granularity"]


def macro_f1(pairs):
    values = sorted({t for t, _ in pairs})
    f1s = []
    for v in values:
        tp = sum(1 for t, p in pairs if t == v and p == v)
        fp = sum(1 for t, p in pairs if t != v and p == v)
        fn = sum(1 for t, p in pairs if t == v and p != v)
        f1s.append(2 * tp / max(1, 2 * tp + fp + fn))
    return 100 * sum(f1s) / max(1, len(f1s))


def macro_f1_weighted(pairs, counts):
    """macro_f1 with each pair counted `counts[i]` times (a bootstrap resample); the values
    are those of the resample's truths, as macro_f1 takes them."""
    tp, fp, fn = {}, {}, {}
    for (t, p), c in zip(pairs, counts):
        if not c:
            continue
        tp.setdefault(t, 0)
        if t == p:
            tp[t] += c
        else:
            fn[t] = fn.get(t, 0) + c
            fp[p] = fp.get(p, 0) + c
    f1s = [2 * tp[v] / max(1, 2 * tp[v] + fp.get(v, 0) + fn.get(v, 0)) for v in tp]
    return 100 * sum(f1s) / max(1, len(f1s))


def bootstrap(rows, resamples, seed=0):
    """95% percentile intervals over `resamples` resamples of the cells."""
    rng = random.Random(seed)
    n = len(rows)
    pairs = {a: [(t[a], p[a]) for t, p in rows] for a in ATTRIBUTES}
    right = [t["label"] == p["label"] for t, p in rows]
    means, nucleus, types = [], [], []
    for _ in range(resamples):
        counts = [0] * n
        for _ in range(n):
            counts[rng.randrange(n)] += 1
        per = {a: macro_f1_weighted(pairs[a], counts) for a in ATTRIBUTES}
        means.append(sum(per.values()) / len(per))
        nucleus.append(per["nucleus_shape"])
        types.append(100 * sum(c for c, r in zip(counts, right) if r) / n)

    def interval(values):
        v = sorted(values)
        return [v[int(0.025 * (len(v) - 1))], v[int(0.975 * (len(v) - 1))]]

    return {
        "resamples": resamples,
        "mean_attribute_macro_f1_95": interval(means),
        "nucleus_shape_macro_f1_95": interval(nucleus),
        "cell_type_accuracy_95": interval(types),
    }


def main():
    if sys.argv[1] == "--paths":
        # Every cell of the split, or every EVERY-th (the CSV is grouped by type, so a
        # stride keeps every type in).
        split = sys.argv[2]
        every = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        data = "../shared/data"
        with open(f"{data}/wbcatt/pbc_attr_v1_{split}.csv", newline="") as f:
            rows = list(csv.DictReader(f))[::every]
        print(" ".join(f"{data}/pbc/{r['path']}" for r in rows))
        return
    with open(sys.argv[1], newline="", encoding="utf-8-sig") as f:
        answers = {r["img_name"]: r for r in csv.DictReader(f)}
    with open(sys.argv[2], newline="", encoding="utf-8-sig") as f:
        labels = list(csv.DictReader(f))
    missing = [r["img_name"] for r in labels if r["img_name"] not in answers]
    rows = [(r, answers[r["img_name"]]) for r in labels if r["img_name"] in answers]
    per = {a: macro_f1([(t[a], p[a]) for t, p in rows]) for a in ATTRIBUTES}
    warned = sum(1 for _, p in rows if any(p.get(k) == "true" for k in
                                           ("unfamiliar", "in_doubt", "opinions_differ")))
    resamples = int(sys.argv[sys.argv.index("--bootstrap") + 1]) if "--bootstrap" in sys.argv else 0
    print(json.dumps({
        **({"bootstrap": bootstrap(rows, resamples)} if resamples else {}),
        "cells": len(rows),
        "missing": len(missing),
        "mean_attribute_macro_f1": sum(per.values()) / len(per),
        "per_attribute_macro_f1": per,
        "cell_type_accuracy": 100 * sum(1 for t, p in rows if t["label"] == p["label"]) / max(1, len(rows)),
        "warned_percent": 100 * warned / max(1, len(rows)),
    }, indent=1))


if __name__ == "__main__":
    main()
