"""The native peer tables of BENCHMARKS.md from one run of `cargo xtask peers` (or bench):
Burn flex against onnxruntime and PyTorch on the app's two networks (inference), cells per
second through both networks and through the page's whole pipeline (`wbc analyse`), and
training steps of the attribute network. Ratios are Burn's time over the peer's: above 1,
Burn is slower.
Usage: python3 native_table.py DIR  (DIR holds native_{burn,ort,torch,burn_training,analyse}.jsonl)
"""
import json
import os
import statistics
import sys

d = sys.argv[1]


def lines(name):
    with open(os.path.join(d, name)) as f:
        return [json.loads(l) for l in f if l.strip()]


burn = {(l["batch"], net): l[net] for l in lines("native_burn.jsonl") for net in ("attribute_net", "seg_net")}
peers = {}
for engine, name in (("onnxruntime", "native_ort.jsonl"), ("PyTorch", "native_torch.jsonl")):
    for l in lines(name):
        if "graph" in l:
            net = l["graph"].split("_b")[0]
            peers[(engine, l["batch"], net)] = l
batches = sorted({b for b, _ in burn})


def cell(q):
    return f"{q['median_ms']:.1f} / {q['p90_ms']:.1f}"


print("| network, batch | Burn flex (median / p90 ms) | onnxruntime | PyTorch | Burn ÷ onnxruntime | Burn ÷ PyTorch |")
print("| --- | --- | --- | --- | --- | --- |")
for net in ("attribute_net", "seg_net"):
    for b in batches:
        q = burn[(b, net)]
        o, t = peers[("onnxruntime", b, net)], peers[("PyTorch", b, net)]
        print(f"| {net}, {b} | {cell(q)} | {cell(o)} | {cell(t)} | {q['median_ms'] / o['median_ms']:.2f} | {q['median_ms'] / t['median_ms']:.2f} |")

print()
print("| cells per second, both networks (from the medians) | Burn flex | onnxruntime | PyTorch | Burn ÷ onnxruntime (time) | Burn ÷ PyTorch (time) |")
print("| --- | --- | --- | --- | --- | --- |")
for b in batches:
    rate = lambda a, s: 1000 * b / (a["median_ms"] + s["median_ms"])
    r_burn = rate(burn[(b, "attribute_net")], burn[(b, "seg_net")])
    r_ort = rate(peers[("onnxruntime", b, "attribute_net")], peers[("onnxruntime", b, "seg_net")])
    r_torch = rate(peers[("PyTorch", b, "attribute_net")], peers[("PyTorch", b, "seg_net")])
    print(f"| batch {b} | {r_burn:.1f} | {r_ort:.1f} | {r_torch:.1f} | {r_ort / r_burn:.2f} | {r_torch / r_burn:.2f} |")
cells = [l for l in lines("native_analyse.jsonl") if "timings_ms" in l]
total = statistics.median(l["timings_ms"]["total"] for l in cells)
nets = statistics.median(l["timings_ms"]["attribute_network"] + l["timings_ms"]["segmentation"] for l in cells)
print(f"| `wbc analyse`, the page's whole pipeline (decode, front end, both networks, tidying, morphometry), one cell at a time, median of {len(cells)} PBC cells | {1000 / total:.1f} ({total:.1f} ms a cell, of which the two network stages {nets:.1f} ms) | | | | |")

print()
print("| training step of the attribute network, batch 64 (median / p90 ms) | Burn flex | PyTorch | Burn images/s | PyTorch images/s | Burn ÷ PyTorch (time) |")
print("| --- | --- | --- | --- | --- | --- |")
torch_train = {l["input_size"]: l for l in lines("native_torch.jsonl") if "step" in l}
for l in lines("native_burn_training.jsonl"):
    t = torch_train[l["input_size"]]
    print(f"| {l['input_size']} px | {cell(l['step'])} | {cell(t['step'])} | {l['images_per_second']:.1f} | {t['images_per_second']:.1f} | {l['step']['median_ms'] / t['step']['median_ms']:.2f} |")
