"""Build the app's two networks as ONNX graphs for the peer benchmark (onnxruntime-web,
onnxruntime native), from the layer lists in the shipped model cards.

The graphs have the same layers, shapes and FLOPs as the Burn networks (batch norm kept as
its own node, as Burn runs it); the weights are random (timing only: the issue allows it).
Usage: python3 make_onnx.py OUT_DIR [BATCH ...]  ->  OUT_DIR/attribute_net_bB.onnx,
OUT_DIR/seg_net_bB.onnx for each batch size B (default 1 and 8).
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
HEAD_WIDTH = 36
NUM_LABELS = 6
rng = np.random.default_rng(1)


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base, array):
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv(self, x, cin, cout, k, stride=1, groups=1, bias=False):
        w = self.const("w", rng.normal(0, (2.0 / (cin // groups * k * k)) ** 0.5, (cout, cin // groups, k, k)))
        inputs = [x, w] + ([self.const("b", np.zeros(cout))] if bias else [])
        y = self.name("conv")
        p = k // 2
        self.nodes.append(helper.make_node("Conv", inputs, [y], kernel_shape=[k, k], strides=[stride, stride], pads=[p, p, p, p], group=groups))
        return y

    def bn(self, x, c):
        y = self.name("bn")
        args = [x, self.const("g", np.ones(c)), self.const("beta", np.zeros(c)), self.const("mean", np.zeros(c)), self.const("var", np.ones(c))]
        self.nodes.append(helper.make_node("BatchNormalization", args, [y], epsilon=1e-5))
        return y

    def op(self, kind, inputs, **attrs):
        y = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [y], **attrs))
        return y

    def conv_bn_relu(self, x, cin, cout, k, stride=1, groups=1):
        return self.op("Relu", [self.bn(self.conv(x, cin, cout, k, stride, groups), cout)])

    def model(self, x_shape, y, y_shape):
        graph = helper.make_graph(
            self.nodes, "net",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, x_shape)],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, y_shape)],
            self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def attribute_net(card, batch):
    c = card["config"]
    size, block = c["input_size"], c.get("block", "plain")
    g = Graph()
    x, cin = "input", 3
    for i, (w, s) in enumerate(zip(c["widths"], c["strides"])):
        if i == 0 or block == "plain":
            x = g.conv_bn_relu(x, cin, w, 3, s)
        elif block == "basic":
            branch = g.bn(g.conv(g.conv_bn_relu(x, cin, w, 3, s), w, w, 3), w)
            skip = x if (s == 1 and cin == w) else g.bn(g.conv(x, cin, w, 1, s), w)
            x = g.op("Relu", [g.op("Add", [branch, skip])])
        else:  # {"inverted": {"expansion": e}}
            hidden = cin * block["inverted"]["expansion"]
            h = g.conv_bn_relu(g.conv_bn_relu(x, cin, hidden, 1), hidden, hidden, 3, s, groups=hidden)
            h = g.bn(g.conv(h, hidden, w, 1), w)
            x = g.op("Add", [h, x]) if (s == 1 and cin == w) else h
        cin = w
    if c.get("feature_width"):
        x = g.conv_bn_relu(x, cin, c["feature_width"], 1)
        cin = c["feature_width"]
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [x])], axis=1)
    y = g.op("Gemm", [pooled, g.const("head", rng.normal(0, 0.05, (HEAD_WIDTH, cin))), g.const("hb", np.zeros(HEAD_WIDTH))], transB=1)
    return g.model([batch, 3, size, size], y, [batch, HEAD_WIDTH])


def seg_net(card, batch):
    c = card["config"]
    size, widths = c["input_size"], c["widths"]
    cin = 3 + int(c.get("centre_prior", False))
    g = Graph()
    x, skips, side = "input", [], size
    for w in widths:
        x = g.conv_bn_relu(g.conv_bn_relu(x, cin, w, 3, 2), w, w, 3)
        side = (side + 1) // 2
        skips.append((x, w, side))
        cin = w
    skips.pop()
    while skips:
        skip, w, side = skips.pop()
        up = g.op("Resize", [x, "", g.const("scales", np.array([1, 1, 2, 2]))], mode="nearest")
        x = g.conv_bn_relu(g.op("Concat", [up, skip], axis=1), cin + w, w, 3)
        cin = w
    y = g.conv(x, cin, NUM_LABELS, 1, bias=True)
    first = (size + 1) // 2
    return g.model([batch, 3 + int(c.get("centre_prior", False)), size, size], y, [batch, NUM_LABELS, first, first])


def main():
    out = sys.argv[1]
    batches = [int(b) for b in sys.argv[2:]] or [1, 8]
    os.makedirs(out, exist_ok=True)
    cards = {n: json.load(open(os.path.join(ROOT, "models", f"{n}.json"))) for n in ("attribute_net", "seg_net")}
    for b in batches:
        for name, build in (("attribute_net", attribute_net), ("seg_net", seg_net)):
            path = os.path.join(out, f"{name}_b{b}.onnx")
            onnx.save(build(cards[name], b), path)
            print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
