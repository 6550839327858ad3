"""Native onnxruntime on the peer graphs (bench/peer/make_onnx.py): warm median and p90 per
batch, on this machine's CPU, with the thread count given (Burn's native flex uses 2 here).
Usage: python3 native_ort.py ONNX_DIR [THREADS] -> one JSON line per graph."""
import glob
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.onnx"))):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    t = time.perf_counter()
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t) * 1000
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).random(inp.shape, dtype=np.float32)
    t = time.perf_counter()
    session.run(None, {inp.name: x})
    first_ms = (time.perf_counter() - t) * 1000
    runs = []
    for _ in range(30):
        t = time.perf_counter()
        session.run(None, {inp.name: x})
        runs.append((time.perf_counter() - t) * 1000)
    runs.sort()
    print(json.dumps({"graph": os.path.basename(path), "batch": inp.shape[0], "threads": threads,
                      "load_ms": round(load_ms, 1), "first_ms": round(first_ms, 1),
                      "median_ms": round(runs[15], 2), "p90_ms": round(runs[27], 2)}))
