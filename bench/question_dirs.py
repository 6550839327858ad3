#!/usr/bin/env python3
"""Make a labelled folder for a question of one's own from PBC test cells (never trained on):
band vs segmented neutrophils, by WBCAtt file-name prefix (BNE / SNE), N of each, as links.

    python3 bench/question_dirs.py [N] [OUT]   # default 50, target/questions/band_segmented
then: cargo run --release -p wbc -- fit --labels target/questions/band_segmented --out target/band_segmented.json
"""
import csv, os, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
out = sys.argv[2] if len(sys.argv) > 2 else "target/questions/band_segmented"
data = "../shared/data"
with open(os.path.join(data, "wbcatt", "pbc_attr_v1_test.csv"), newline="", encoding="utf-8-sig") as f:
    rows = sorted(csv.DictReader(f), key=lambda r: r["img_name"])
for cls, prefix in [("band", "BNE_"), ("segmented", "SNE_")]:
    folder = os.path.join(out, cls)
    os.makedirs(folder, exist_ok=True)
    picked = [r for r in rows if r["img_name"].startswith(prefix)][:n]
    for r in picked:
        link = os.path.join(folder, r["img_name"])
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(data, "pbc", r["path"])), link)
    print(f"{cls}: {len(picked)} cells in {folder}")
