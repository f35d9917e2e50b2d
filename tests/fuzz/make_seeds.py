#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: small valid models using many ops and attribute forms,
and .npy / .pb tensors of every dtype (the tensor target takes one leading format byte)."""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save_model(name, nodes, inputs, outputs, inits=(), opset=13):
    m = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)])
    with open(os.path.join(HERE, "corpus", "model", name + ".onnx"), "wb") as f:
        f.write(m.SerializeToString())


def vi(n, s, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(n, t, s)


def main():
    init = lambda n, a: numpy_helper.from_array(np.asarray(a), n)
    y = vi("y", None)
    save_model("conv_relu", [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
                             helper.make_node("Relu", ["c"], ["y"])], [vi("x", [1, 3, 9, 9])], [y],
               [init("w", np.ones((4, 3, 3, 3), np.float32)), init("b", np.zeros(4, np.float32))])
    save_model("shape_ops", [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i"], ["g"]),
                             helper.make_node("Unsqueeze", ["g", "a"], ["u"]),
                             helper.make_node("Concat", ["u", "u"], ["c"], axis=0),
                             helper.make_node("Reshape", ["x", "c"], ["y"])], [vi("x", [4, 4])], [y],
               [init("i", np.array(0)), init("a", np.array([0]))])
    save_model("gemm_softmax", [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1),
                                helper.make_node("Softmax", ["g"], ["y"])], [vi("x", [2, 5])], [y],
               [init("w", np.ones((3, 5), np.float32)), init("b", np.ones(3, np.float32))])
    save_model("pool_bn", [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], ceil_mode=1),
                           helper.make_node("BatchNormalization", ["p", "s", "b", "m", "v"], ["y"])],
               [vi("x", [1, 2, 5, 5])], [y], [init(n, np.ones(2, np.float32)) for n in "sbmv"])
    save_model("slice_cast", [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
                              helper.make_node("Cast", ["s"], ["y"], to=TensorProto.INT32)], [vi("x", [6, 6])], [y],
               [init("st", np.array([1, -1])), init("en", np.array([5, -7])), init("ax", np.array([0, 1])),
                init("sp", np.array([2, -2]))])
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [vi("t", None)])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", None)])
    save_model("if_branches", [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
               [vi("x", [3])], [y], [init("c", np.array(True))])
    save_model("old_opset", [helper.make_node("Reshape", ["x"], ["r"], shape=[2, 3]),
                             helper.make_node("Clip", ["r"], ["y"], min=0.0, max=1.0)], [vi("x", [6])], [y], opset=5)
    os.makedirs(os.path.join(HERE, "corpus", "tensor"), exist_ok=True)
    for i, dt in enumerate([np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.int64, np.bool_]):
        a = (np.arange(12) % 3).astype(dt).reshape(3, 4)
        np.save("/tmp/_seed.npy", a)
        with open(os.path.join(HERE, "corpus", "tensor", "npy_%d" % i), "wb") as f:
            f.write(b"\x00" + open("/tmp/_seed.npy", "rb").read())
        with open(os.path.join(HERE, "corpus", "tensor", "pb_%d" % i), "wb") as f:
            f.write(b"\x01" + numpy_helper.from_array(a, "t").SerializeToString())
    os.remove("/tmp/_seed.npy")


if __name__ == "__main__":
    main()
