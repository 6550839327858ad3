"""Per-layer profile: Burn flex against onnxruntime, natively, on the same graphs.

Usage: python3 layers.py ONNX_DIR BURN_JSONL BATCH [THREADS] [RUNS]
  ONNX_DIR    the peer graphs (bench/peer/make_onnx.py ONNX_DIR BATCH)
  BURN_JSONL  `wbc time-networks --per-layer --batch BATCH` (one JSON line per layer)
Prints a markdown table: each Burn layer beside the onnxruntime nodes that compute it.

onnxruntime runs its optimised graph (batch norm folded, ReLU fused into the convolution,
its blocked NCHWc layout), so its nodes are matched to Burn's layers by output shape, in
order: the nodes up to the first one whose output has the layer's shape are that layer's
(layout reorders fall to the layer after them). A Burn layer with no such node (the
segmentation network's centre prior, computed before onnxruntime's graph) has none.
"""
import glob
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def node_times(path, threads, runs):
    """[(node name, op, output shape, median µs)] in execution order, over `runs` warm runs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(os.path.dirname(path), "ort_profile")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).random(inp.shape, dtype=np.float32)
    for _ in range(runs + 1):
        session.run(None, {inp.name: x})
    profile = session.end_profiling()
    with open(profile) as f:
        events = json.load(f)
    os.remove(profile)
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_run = len(kernels) // (runs + 1)
    nodes = []
    for i in range(per_run):
        first = kernels[i]
        durations = [kernels[r * per_run + i]["dur"] for r in range(1, runs + 1)]
        shapes = first["args"].get("output_type_shape") or [{}]
        shape = next(iter(shapes[0].values()), []) if shapes else []
        nodes.append((first["name"][: -len("_kernel_time")], first["args"].get("op_name", "?"),
                      list(shape), float(np.median(durations))))
    return nodes


def main():
    onnx_dir, burn_file, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 30
    burn = [json.loads(l) for l in open(burn_file) if l.strip()]
    print("| network | layer | output | Burn flex ms | onnxruntime ms (its nodes) | Burn ÷ onnxruntime |")
    print("| --- | --- | --- | --- | --- | --- |")
    totals = {}
    for network in ["attribute_net", "seg_net"]:
        path = os.path.join(onnx_dir, f"{network}_b{batch}.onnx")
        layers = [l for l in burn if l["network"] == network]
        if not layers or not os.path.exists(path):
            continue
        nodes = node_times(path, threads, runs)
        at = 0
        burn_total = ort_total = 0.0
        for layer in layers:
            end = next((j for j in range(at, len(nodes)) if nodes[j][2] == layer["output"]), None)
            burn_ms = layer["median_ms"]
            burn_total += burn_ms
            if end is None:
                print(f"| {network} | {layer['layer']} | {layer['output']} | {burn_ms:.2f} | none | |")
                continue
            mine = nodes[at:end + 1]
            at = end + 1
            ort_ms = sum(n[3] for n in mine) / 1000
            ort_total += ort_ms
            ops = "+".join(n[1] for n in mine)
            ratio = f"{burn_ms / ort_ms:.2f}" if ort_ms > 0 else ""
            print(f"| {network} | {layer['layer']} | {layer['output']} | {burn_ms:.2f} | {ort_ms:.2f} ({ops}) | {ratio} |")
        left = nodes[at:]
        if left:
            ort_ms = sum(n[3] for n in left) / 1000
            ort_total += ort_ms
            print(f"| {network} | (onnxruntime nodes left) | | | {ort_ms:.2f} ({'+'.join(n[1] for n in left)}) | |")
        totals[network] = (burn_total, ort_total)
        print(f"| {network} | **sum of layers** | | **{burn_total:.2f}** | **{ort_total:.2f}** | **{burn_total / ort_total:.2f}** |")
    for path in glob.glob(os.path.join(onnx_dir, "ort_profile*.json")):
        os.remove(path)


if __name__ == "__main__":
    main()
