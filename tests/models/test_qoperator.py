"""The com.microsoft QOperator ops that quantization tools emit, against ONNX Runtime:
QLinearSigmoid, QLinearLeakyRelu and QLinearGlobalAveragePool (uint8 and int8, NCHW and
channels-last) on random codes must give ONNX Runtime's codes (at most one step apart on
a few, where the two round a float function differently); and a QDQ model whose tail is
Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm must run that pool as
QLinearGlobalAveragePool and LeakyRelu/Sigmoid between quantized tensors as their QLinear
ops, with ONNX Runtime's outputs."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

MS = helper.make_opsetid("com.microsoft", 1)


def qop_model(op, dtype, shape, attrs, out_shape):
    t = TensorProto.UINT8 if dtype == np.uint8 else TensorProto.INT8
    rng = np.random.default_rng(len(op) + len(shape))
    zx, zy = (rng.integers(100, 150), rng.integers(90, 160)) if dtype == np.uint8 else (rng.integers(-20, 20),
                                                                                         rng.integers(-30, 30))
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "sx"),
             numpy_helper.from_array(np.array(zx, dtype), "zx"),
             numpy_helper.from_array(np.array(0.02 if op != "QLinearSigmoid" else 1 / 255, np.float32), "sy"),
             numpy_helper.from_array(np.array(zy if op != "QLinearSigmoid" else (0 if dtype == np.uint8 else -128),
                                              dtype), "zy")]
    node = helper.make_node(op, ["x", "sx", "zx", "sy", "zy"], ["y"], domain="com.microsoft", **attrs)
    graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", t, shape)],
                              [helper.make_tensor_value_info("y", t, out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), MS])


def compare_codes(what, ours, theirs, failures):
    diff = np.abs(ours.astype(np.int32) - theirs.astype(np.int32))
    print("%s: %d values, %d differ by one step, max %d" % (what, diff.size, int((diff == 1).sum()), int(diff.max())))
    if diff.max() > 1 or (diff > 0).mean() > 0.01:
        failures.append(what)


def check_ops(crun, tmp, failures):
    for dtype in (np.uint8, np.int8):
        info = np.iinfo(dtype)
        cases = [("QLinearSigmoid", {}, [2, 3, 5, 7], [2, 3, 5, 7]),
                 ("QLinearLeakyRelu", {"alpha": 0.1}, [3, 257], [3, 257]),
                 ("QLinearGlobalAveragePool", {}, [4, 64, 7, 9], [4, 64, 1, 1]),
                 ("QLinearGlobalAveragePool", {"channels_last": 1}, [4, 7, 9, 64], [4, 1, 1, 64])]
        for op, attrs, shape, out_shape in cases:
            path = os.path.join(tmp, "%s_%s.onnx" % (op, dtype.__name__))
            onnx.save(qop_model(op, dtype, shape, attrs, out_shape), path)
            x = np.random.default_rng(3).integers(info.min, info.max + 1, shape).astype(dtype)
            ours = mt.run_crun(crun, path, {"x": x})["y"]
            theirs = mt.run_ort(path, {"x": x})["y"]
            if ours.shape != theirs.shape:
                failures.append("%s %s: shape %s vs %s" % (op, dtype.__name__, ours.shape, theirs.shape))
                continue
            compare_codes("%s %s %s" % (op, dtype.__name__, attrs or ""), ours, theirs, failures)


def tail_model():
    rng = np.random.default_rng(5)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((8, 8, 1, 1)) * 0.3).astype(np.float32)
    w3 = (rng.standard_normal((8, 5)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c1"], ["l1"], alpha=0.2),
             helper.make_node("Conv", ["l1", "w2"], ["c2"]),
             helper.make_node("Sigmoid", ["c2"], ["s2"]),
             helper.make_node("Conv", ["s2", "w2"], ["c3"]),
             helper.make_node("Relu", ["c3"], ["r3"]),
             helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "w3"], ["y"])]
    graph = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def check_qdq_tail(crun, tmp, failures):
    fp, q = os.path.join(tmp, "tail.onnx"), os.path.join(tmp, "tail.int8.onnx")
    onnx.save(tail_model(), fp)
    res = subprocess.run([crun, "quantize", fp, "-o", q, "--calib-random", "8"], capture_output=True, text=True)
    if res.returncode:
        failures.append("quantize: " + res.stderr)
        return
    prof = subprocess.run([crun, "profile", q, "--runs", "1"], capture_output=True, text=True).stdout
    for op in ("QLinearGlobalAveragePool", "QLinearSigmoid", "QLinearLeakyRelu"):
        if op not in prof:
            failures.append("the QDQ model does not run %s:\n%s" % (op, prof))
    x = np.random.default_rng(9).uniform(-1, 1, (1, 3, 12, 12)).astype(np.float32)
    ours, theirs = mt.run_crun(crun, q, {"x": x})["y"], mt.run_ort(q, {"x": x})["y"]
    step = float(np.abs(theirs).max()) / 20 + 1e-6
    err = float(np.abs(ours - theirs).max())
    print("QDQ tail: crun vs ONNX Runtime max difference %.4g (output scale %.3g)" % (err, np.abs(theirs).max()))
    if err > step:
        failures.append("QDQ tail differs from ONNX Runtime by %g" % err)


def main():
    args = mt.main_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        check_ops(args.crun, tmp, failures)
        check_qdq_tail(args.crun, tmp, failures)
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
