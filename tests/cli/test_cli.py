"""The `crun` command line contract: arguments, outputs, files, exit codes (0 success,
1 failure while running, 2 usage error or bad input) and one-line error messages."""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CRUN = None
TMP = None
failures = []


def crun(*args):
    res = subprocess.run([CRUN] + [str(a) for a in args], capture_output=True, text=True)
    return res.returncode, res.stdout, res.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def one_line_error(rc, out, err, code, needle, what):
    lines = err.strip().splitlines()
    check(rc == code, "%s: exit %d, expected %d (%s)" % (what, rc, code, err.strip()))
    check(len(lines) == 1 and lines[0].startswith("crun: error: ") and needle in lines[0],
          "%s: stderr %r should be one line mentioning %r" % (what, err, needle))


def save(model, name):
    path = os.path.join(TMP, name)
    onnx.save(model, path)
    return path


def model_identity():
    """y = Identity(x) for a float input with a symbolic batch, plus a Gather on an int64
    input whose out-of-range index is a failure while running."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("out/put:0", TensorProto.FLOAT, None)
    g = helper.make_tensor_value_info("g", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["out/put:0"]),
             helper.make_node("Gather", ["x", "idx"], ["g"], axis=1)]
    graph = helper.make_graph(nodes, "t", [x, idx], [y, g])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_usage():
    rc, out, err = crun()
    check(rc == 2 and "usage" in out, "no arguments: usage and exit 2")
    rc, out, _ = crun("--help")
    check(rc == 0 and "crun info" in out, "--help exits 0")
    rc, out, _ = crun("--version")
    check(rc == 0 and out.startswith("crun "), "--version")
    path = save(model_identity(), "m.onnx")
    one_line_error(*crun(path, "--bogus"), 2, "--bogus", "unknown option")
    one_line_error(*crun(path, "--threads", "many"), 2, "--threads", "bad --threads")
    one_line_error(*crun(path, "--input", "nope"), 2, "NAME=FILE", "--input without '='")
    one_line_error(*crun(path, "--input", "zzz=/dev/null"), 2, "no input named 'zzz'", "unknown input name")


def test_bad_files():
    one_line_error(*crun(os.path.join(TMP, "missing.onnx")), 2, "missing.onnx", "missing model file")
    garbage = os.path.join(TMP, "garbage.onnx")
    with open(garbage, "wb") as f:
        f.write(os.urandom(3000))
    one_line_error(*crun(garbage), 2, "garbage.onnx", "random bytes")
    good = save(model_identity(), "m.onnx")
    data = open(good, "rb").read()
    trunc = os.path.join(TMP, "trunc.onnx")
    with open(trunc, "wb") as f:
        f.write(data[: len(data) // 2])
    one_line_error(*crun(trunc), 2, "trunc.onnx", "truncated model")
    bad_npy = os.path.join(TMP, "bad.npy")
    with open(bad_npy, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00garbage")
    one_line_error(*crun(good, "--input", "x=" + bad_npy), 2, "bad.npy", "malformed .npy")
    wrong = os.path.join(TMP, "wrong.npy")
    np.save(wrong, np.zeros((2, 4), np.float32))
    one_line_error(*crun(good, "--input", "x=" + wrong), 2, "'x'", "wrong input shape")
    np.save(wrong, np.zeros((2, 3), np.int32))
    one_line_error(*crun(good, "--input", "x=" + wrong), 2, "int32", "wrong input dtype")
    # An op crun does not know: named in one line, exit 2.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"]),
                               helper.make_node("AlsoMissing", ["y"], ["z"])], "t", [x],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    one_line_error(*crun(save(m, "unknown.onnx")), 2, "NoSuchOp, AlsoMissing", "unsupported ops")


def test_runtime_failure_exits_1():
    path = save(model_identity(), "m.onnx")
    idx = os.path.join(TMP, "idx.npy")
    np.save(idx, np.array([0, 7], np.int64))
    one_line_error(*crun(path, "--input", "idx=" + idx), 1, "index 7 is out of range", "runtime failure")


def test_run_prints_and_writes_outputs():
    path = save(model_identity(), "m.onnx")
    xin = os.path.join(TMP, "x.npy")
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.save(xin, x)
    outdir = os.path.join(TMP, "out")
    os.makedirs(outdir, exist_ok=True)
    rc, out, err = crun(path, "--input", "x=" + xin, "--output-dir", outdir)
    check(rc == 0, "run with inputs: " + err)
    lines = out.strip().splitlines()
    check(lines[0] == "out/put:0: float32 [2,3] [0, 2, 0, 4, 0, 6]", "first output line: %r" % lines[0])
    check(lines[1].startswith("g: float32 [2,2] [-1, -1, 4, 4]"), "second output line: %r" % lines[1])
    saved = np.load(os.path.join(outdir, "out_put_0.npy"))
    check(np.array_equal(saved, np.maximum(x, 0)), "output .npy content and sanitised name")
    # A TensorProto .pb input works the same.
    pb = os.path.join(TMP, "x.pb")
    with open(pb, "wb") as f:
        f.write(numpy_helper.from_array(x, "x").SerializeToString())
    rc, out2, _ = crun(path, "--input", "x=" + pb)
    check(rc == 0 and out2 == out, ".pb input gives the same result")


def test_generated_inputs_and_dims():
    path = save(model_identity(), "m.onnx")
    outdir = os.path.join(TMP, "gen")
    os.makedirs(outdir, exist_ok=True)
    rc, out, err = crun(path, "--dim", "batch=4", "--output-dir", outdir)
    check(rc == 0, "generated inputs: " + err)
    y = np.load(os.path.join(outdir, "out_put_0.npy"))
    check(y.shape == (4, 3) and (y >= 0).all() and (y < 1).all() and len(np.unique(y)) == 12,
          "generated floats are uniform in [0,1) with --dim batch=4: %s" % y)
    g = np.load(os.path.join(outdir, "g.npy"))
    check(np.array_equal(g, np.repeat(y[:, :1], 2, axis=1)), "generated int64 indices are 0")
    rc2, out2, _ = crun(path, "--dim", "batch=4")
    check(out2 == out, "generated inputs are the same on every run (fixed seed)")
    rc, out, _ = crun(path)
    check(rc == 0 and "[1,3]" in out, "symbolic dims default to 1")


def test_threads_identical():
    path = save(model_identity(), "m.onnx")
    outs = set()
    for t in (1, 2, 3):
        rc, out, _ = crun(path, "--dim", "batch=64", "--threads", t)
        outs.add(out)
    check(len(outs) == 1, "outputs identical for --threads 1, 2, 3")


def test_info():
    path = save(model_identity(), "m.onnx")
    rc, out, err = crun("info", path, "--dim", "batch=2")
    check(rc == 0, "info: " + err)
    for needle in ["inputs:", "x: float32 [batch,3]", "outputs:", "ops (2 nodes): Relu 1, Gather 1",
                   "parameters:", "flops:", "memory: arena", "lower bound", "naive"]:
        check(needle in out, "info mentions %r" % needle)
    rc, out, _ = crun("info", "--nodes", path)
    check(rc == 0 and "steps:" in out and "kernel" in out and "offset" in out, "info --nodes lists steps")
    step_lines = [l for l in out.splitlines() if l.strip().startswith(("0 ", "1 "))]
    isas = ("scalar", "avx2", "avx512", "neon")
    check(len(step_lines) == 2 and "Relu" in step_lines[0] and any(i in step_lines[0].split() for i in isas),
          "one line per step with op and isa: %s" % step_lines)


def test_bench_json():
    path = save(model_identity(), "m.onnx")
    rc, out, err = crun("bench", path, "--runs", 5, "--warmup", 1, "--json")
    check(rc == 0, "bench: " + err)
    try:
        obj = json.loads(out)
    except ValueError:
        obj = {}
        check(False, "bench --json prints one JSON object: %r" % out)
    for key in ["load_ms", "first_run_ms", "median_ms", "p90_ms", "min_ms", "peak_rss_kb", "arena_bytes"]:
        check(isinstance(obj.get(key), (int, float)), "bench JSON has numeric %s" % key)
    if obj:
        check(obj["min_ms"] <= obj["median_ms"] <= obj["p90_ms"], "min <= median <= p90")
    rc, out, _ = crun("bench", path, "--runs", 3)
    check(rc == 0 and "median" in out, "bench human output")


def test_plan_svg():
    import xml.etree.ElementTree as ET
    path = save(model_conv_relu(), "svgconv.onnx")
    svg = os.path.join(TMP, "plan.svg")
    rc, out, err = crun("info", path, "--plan-svg", svg)
    check(rc == 0 and "plan picture" in out, "info --plan-svg: " + err)
    try:
        root = ET.parse(svg).getroot()
    except (OSError, ET.ParseError) as e:
        check(False, "plan SVG is well-formed XML: %s" % e)
        return
    ns = "{http://www.w3.org/2000/svg}"
    check(root.tag == ns + "svg", "plan SVG root is <svg>: %r" % root.tag)
    boxes = [r for r in root.iter(ns + "rect") if r.find(ns + "title") is not None]
    titles = [r.find(ns + "title").text for r in boxes]
    check(len(boxes) >= 2 and any("Conv" in t for t in titles), "one box per arena tensor: %r" % titles)
    check(all(float(r.get("width")) > 0 and float(r.get("height")) > 0 for r in boxes), "boxes have a size")
    check(any("peak" in (l.findtext(ns + "title") or "") for l in root.iter(ns + "line")), "the peak is marked")
    one_line_error(*crun("info", path, "--plan-svg", os.path.join(TMP, "no", "dir", "p.svg")), 2, "p.svg",
                   "plan SVG to an unwritable path")


def test_profile_table_and_trace():
    path = save(model_identity(), "m.onnx")
    trace = os.path.join(TMP, "trace.json")
    rc, out, err = crun("profile", path, "--runs", 4, "--warmup", 1, "--trace", trace)
    check(rc == 0, "profile: " + err)
    rows = [l.split() for l in out.splitlines() if l.strip()[:1].isdigit()]
    check(len(rows) == 2, "profile prints one row per step: %r" % out)
    check(all(r[2] in ("Relu", "Gather") for r in rows), "profile rows name the op: %r" % rows)
    ms = [float(r[-4]) for r in rows]
    check(ms == sorted(ms, reverse=True), "profile rows are sorted slowest first: %r" % ms)
    try:
        events = json.load(open(trace))["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        events = []
        check(False, "trace is trace-event JSON: %s" % e)
    check(len(events) == 2 and all(e["ph"] == "X" and e["dur"] >= 0 and "kernel" in e["args"] for e in events),
          "trace has one complete event per step: %r" % events)
    if len(events) == 2:
        check(events[1]["ts"] >= events[0]["ts"], "trace events in run order")
    one_line_error(*crun("profile", os.path.join(TMP, "none.onnx")), 2, "none.onnx", "profile of a missing model")
    one_line_error(*crun("profile", path, "--trace", os.path.join(TMP, "no", "dir", "t.json")), 2, "t.json",
                   "profile trace to an unwritable path")


def model_conv_relu():
    """x [1,2,6,6] -> Conv 3x3 (4 channels, bias) -> Relu -> MaxPool 2x2 -> Sigmoid -> y."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Sigmoid", ["p"], ["y"])]
    graph = helper.make_graph(nodes, "q", [x], [y], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_quantize():
    path = save(model_conv_relu(), "conv.onnx")
    out = os.path.join(TMP, "conv.int8.onnx")
    calib = os.path.join(TMP, "calib")
    os.makedirs(calib, exist_ok=True)
    rng = np.random.default_rng(4)
    for i in range(8):
        np.save(os.path.join(calib, "%d.npy" % i), rng.standard_normal((1, 2, 6, 6)).astype(np.float32))
    for method in ("minmax", "percentile", "entropy"):
        rc, o, err = crun("quantize", path, "-o", out, "--calib", calib, "--method", method)
        check(rc == 0 and "wrote" in o, "quantize --method %s: %s" % (method, err))
        q = onnx.load(out)
        ops = [n.op_type for n in q.graph.node]
        check(ops.count("QuantizeLinear") >= 2 and "DequantizeLinear" in ops,
              "quantize --method %s writes QDQ nodes: %r" % (method, ops))
        inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
        check(inits.get("w_quantized") is not None and inits["w_quantized"].dtype == np.int8 and
              inits["w_scale"].shape == (4,), "per-channel int8 weights: %r" % sorted(inits))
        check(inits.get("b_quantized") is not None and inits["b_quantized"].dtype == np.int32, "int32 bias")
        rc, o, err = crun("profile", out, "--runs", 1)
        check(rc == 0 and "QLinearConv+Relu" in o and "maxpool_u8" in o,
              "the QDQ model runs as integer ops (%s): %s" % (method, o + err))
    rc, _, err = crun("quantize", path, "-o", out, "--calib-random", 4, "--per-tensor")
    check(rc == 0 and numpy_helper.to_array(
        [i for i in onnx.load(out).graph.initializer if i.name == "w_scale"][0]).shape == (),
          "--per-tensor gives one weight scale: " + err)
    rc, _, err = crun("quantize", path, "-o", out, "--calib-random", 2, "--exclude", [n.name for n in
                      onnx.load(path).graph.node][0] or "none")
    check(rc == 0, "--exclude: " + err)
    one_line_error(*crun("quantize", os.path.join(TMP, "none.onnx"), "-o", out), 2, "none.onnx",
                   "quantize of a missing model")
    one_line_error(*crun("quantize", path, "-o", out, "--method", "best"), 2, "best", "quantize with a bad method")
    one_line_error(*crun("quantize", path), 2, "-o", "quantize without -o")
    one_line_error(*crun("quantize", path, "-o", out, "--calib", os.path.join(TMP, "nodir")), 2, "nodir",
                   "quantize with a missing calibration directory")
    one_line_error(*crun("quantize", path, "-o", os.path.join(TMP, "no", "dir", "q.onnx"), "--calib-random", 1),
                   2, "q.onnx", "quantize to an unwritable path")


def run_y(model, x):
    """Runs model on input x (named "x") and returns its output "y", or None after a failed check."""
    return run_y_named(model, {"x": x}, "y")


def test_quantize_folds_batchnorm_and_constant_weights():
    """Weights held by a Constant node, a BatchNormalization after the Conv: the quantizer
    folds the BN into the Conv and quantizes the weights; outputs stay near float."""
    rng = np.random.default_rng(6)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    bn = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in (
        (rng.uniform(0.5, 2, 8), "g"), (rng.standard_normal(8), "beta"), (rng.standard_normal(8), "mean"),
        (rng.uniform(0.5, 2, 8), "var"))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w)),
             helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["n"]),
             helper.make_node("Relu", ["n"], ["r"]), helper.make_node("Sigmoid", ["r"], ["y"])]
    path = save(helper.make_model(helper.make_graph(nodes, "bn", [x], [y], bn),
                                  opset_imports=[helper.make_opsetid("", 13)]), "bn.onnx")
    out = os.path.join(TMP, "bn.int8.onnx")
    rc, _, err = crun("quantize", path, "-o", out, "--calib-random", 8)
    check(rc == 0, "quantize with BN: " + err)
    q = onnx.load(out)
    ops = [n.op_type for n in q.graph.node]
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    check("BatchNormalization" not in ops and "Constant" not in ops, "BN folded, Constant hoisted: %r" % ops)
    check(inits.get("w_quantized") is not None and inits["w_quantized"].dtype == np.int8, "int8 weights: %r" % list(inits))
    xs = np.random.default_rng(7).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    got = [run_y(model, xs) for model in (path, out)]
    if got[0] is not None and got[1] is not None:
        check(np.abs(got[0] - got[1]).max() < 0.05, "int8 near float: %g" % np.abs(got[0] - got[1]).max())


def test_convert_fp16():
    path = save(model_conv_relu(), "conv32.onnx")
    out = os.path.join(TMP, "conv16.onnx")
    rc, o, err = crun("convert", "--fp16", path, "-o", out)
    check(rc == 0 and "wrote" in o, "convert --fp16: " + err)
    m = onnx.load(out)
    types = {i.name: i.data_type for i in m.graph.initializer}
    check(types.get("w_fp16") == TensorProto.FLOAT16 and "w" not in types, "weights stored as float16: %r" % types)
    check(types.get("b") == TensorProto.FLOAT, "a 4-value bias stays float32: %r" % types)
    x = np.random.default_rng(5).standard_normal((1, 2, 6, 6)).astype(np.float32)
    outs = [run_y(model, x) for model in (path, out)]
    if outs[0] is not None and outs[1] is not None:
        check(np.allclose(outs[0], outs[1], rtol=2e-3, atol=2e-3), "float16 weights give float32's outputs")
    one_line_error(*crun("convert", path, "-o", out), 2, "--fp16", "convert without a format")
    one_line_error(*crun("convert", "--fp16", os.path.join(TMP, "none.onnx"), "-o", out), 2, "none.onnx",
                   "convert of a missing model")
    bad = os.path.join(TMP, "bad.onnx")
    open(bad, "wb").write(b"\x08\x01garbage")
    one_line_error(*crun("convert", "--fp16", bad, "-o", out), 2, "bad.onnx", "convert of a malformed model")


def make_case(root, name, x, y_expected):
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))
    yi = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape))
    m = helper.make_model(helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], name, [xi], [yi]),
                          opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, os.path.join(d, "model.onnx"))
    for fname, arr, n in [("input_0.pb", x, "x"), ("output_0.pb", y_expected, "y")]:
        with open(os.path.join(d, "test_data_set_0", fname), "wb") as f:
            f.write(numpy_helper.from_array(arr, n).SerializeToString())


def test_conformance_runner():
    root = os.path.join(TMP, "cases")
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    good = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    make_case(root, "test_good", x, good)
    make_case(root, "test_bad", x, good + 0.01)
    os.makedirs(os.path.join(root, "test_nodata"), exist_ok=True)
    onnx.save(onnx.load(os.path.join(root, "test_good", "model.onnx")), os.path.join(root, "test_nodata", "model.onnx"))
    rc, out, err = crun("test", root)
    lines = out.strip().splitlines()
    check(rc == 1, "crun test exits 1 when a case fails")
    check("PASS test_good" in lines, "PASS line: %s" % lines)
    check(any(l.startswith("FAIL test_bad output 'y'") for l in lines), "FAIL line names the output")
    check(any(l.startswith("SKIP test_nodata ") for l in lines), "SKIP line with a reason")
    check(lines[-1] == "1 passed, 1 failed, 1 skipped", "summary line: %r" % lines[-1])
    rc, out, _ = crun("test", os.path.join(root, "test_good"))
    check(rc == 0 and out.strip().splitlines()[-1] == "1 passed, 0 failed, 0 skipped", "single case folder")
    one_line_error(*crun("test", os.path.join(TMP, "nowhere")), 2, "nowhere", "test on a missing folder")


def squares_data(n, rng):
    """8x8 images with a bright 3x3 square in one of three places (the class) plus noise."""
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.15, (n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = [(0, 0), (4, 1), (2, 5)][c]
        x[i, 0, r:r + 3, col:col + 3] += 1.0
    return x, y.astype(np.int64)


TRAIN_SPEC = """# a tiny CNN
input 1 8 8
conv 4 3 pad=1
bn
relu
maxpool 2
flatten
linear 3
"""


def result_line(out):
    lines = [l for l in out.splitlines() if l.startswith("result: ")]
    return dict(kv.split("=") for kv in lines[-1][8:].split()) if lines else {}


def test_train():
    rng = np.random.default_rng(8)
    files = {}
    for part, n in (("train", 600), ("test", 150)):
        x, y = squares_data(n, rng)
        for k, v in (("x", x), ("y", y)):
            files[part + k] = os.path.join(TMP, "%s_%s.npy" % (part, k))
            np.save(files[part + k], v)
    spec = os.path.join(TMP, "tiny.spec")
    with open(spec, "w") as f:
        f.write(TRAIN_SPEC)
    data = ["--train-npy", files["trainx"], files["trainy"], "--test-npy", files["testx"], files["testy"]]
    fp, q8 = os.path.join(TMP, "tiny.onnx"), os.path.join(TMP, "tiny.int8.onnx")
    rc, out, err = crun("train", spec, *data, "--epochs", 3, "--lr", 0.05, "--qat", 1, "--ptq", 4,
                        "--export-float", fp, "--export-int8", q8, "--check", "--threads", 2)
    r = result_line(out)
    check(rc == 0 and r, "crun train runs: " + err)
    if not r:
        return
    check(float(r["fp32_acc"]) >= 0.9 and float(r["qat_int8_acc"]) >= 0.9 and float(r["ptq_int8_acc"]) >= 0.8,
          "the tiny CNN learns the squares: " + out)
    check(r["agree"] == "150/150" and r["max_step"] == "0", "crun runs the int8 export as trained: " + out)
    check(out.count("float epoch") == 3 and "qat int8 epoch 1/1" in out, "one line per epoch: " + out)
    for path in (fp, q8):
        onnx.checker.check_model(onnx.load(path))
    ops = [n.op_type for n in onnx.load(q8).graph.node]
    check(ops.count("QuantizeLinear") >= 3 and "BatchNormalization" not in ops,
          "the int8 export is QDQ with BatchNorm folded: %r" % ops)
    check("BatchNormalization" in [n.op_type for n in onnx.load(fp).graph.node], "the float export keeps BatchNorm")
    rc, o, err = crun("profile", q8, "--runs", 1)
    check(rc == 0 and "QLinearConv+Relu" in o and "QLinearMatMul" in o, "the int8 export runs in integers: " + o)
    # a resumed run ends where an uninterrupted one does
    ck = os.path.join(TMP, "tiny.ckpt")
    base = [*data, "--lr", 0.05, "--seed", 3]
    rc1, full, err1 = crun("train", spec, *base, "--epochs", 2)
    rc2, _, err2 = crun("train", spec, *base, "--epochs", 1, "--checkpoint", ck)
    rc3, resumed, err3 = crun("train", "--resume", ck, *base, "--epochs", 2)
    check(rc1 == 0 and rc2 == 0 and rc3 == 0 and result_line(full)["fp32_acc"] == result_line(resumed)["fp32_acc"]
          and "float epoch 2/2" in resumed and "float epoch 1/2" not in resumed,
          "resume continues the run: %s | %s | %s" % (err1, err2, err3))
    # bad input: exit 2 and one line naming the problem
    one_line_error(*crun("train", os.path.join(TMP, "nospec.txt"), *data), 2, "nospec.txt", "train: missing spec")
    bad = os.path.join(TMP, "bad.spec")
    with open(bad, "w") as f:
        f.write("input 1 8 8\nconvolution 4 3\n")
    one_line_error(*crun("train", bad, *data), 2, "line 2: unknown layer 'convolution'", "train: bad spec")
    with open(bad, "w") as f:
        f.write("input 3 8 8\nconv 4 3\nflatten\nlinear 3\n")
    one_line_error(*crun("train", bad, *data), 2, "the spec's input is 3x8x8", "train: data of another shape")
    one_line_error(*crun("train", spec, *data, "--check"), 2, "--export-int8", "train: --check alone")
    # a bare --qat is one epoch, and --export then writes the int8 model
    q1 = os.path.join(TMP, "tiny.qat.onnx")
    rc, out, err = crun("train", spec, *data, "--epochs", 1, "--qat", "--export", q1, "--check")
    check(rc == 0 and "qat int8 epoch 1/1" in out and "QuantizeLinear" in [n.op_type for n in onnx.load(q1).graph.node]
          and result_line(out).get("max_step") == "0", "--qat --export writes the QAT model: " + out + err)
    one_line_error(*crun("train", spec, *data, "--qat", "--export", q1, "--export-int8", q1), 2, "same model",
                   "train: --export and --export-int8 both after --qat")
    one_line_error(*crun("train", spec, *data, "--optim", "lion"), 2, "--optim", "train: unknown optimizer")
    one_line_error(*crun("train", spec, "--train-npy", files["trainx"], os.path.join(TMP, "no.npy")), 2, "no.npy",
                   "train: missing labels")
    one_line_error(*crun("train", "--resume", spec, *data), 2, "not a crun training checkpoint",
                   "train: resume from a file that is no checkpoint")


def nbits_pack(codes, bits):
    """Codes [rows, n] packed low bits first into bytes [rows, n * bits / 8]."""
    per = 8 // bits
    rows, n = codes.shape
    codes = np.pad(codes, ((0, 0), (0, -n % per))).reshape(rows, -1, per).astype(np.uint16)
    return sum(codes[:, :, i] << (i * bits) for i in range(per)).astype(np.uint8)


def nbits_unpack(packed, bits, n):
    per = 8 // bits
    parts = [(packed >> (i * bits)) & ((1 << bits) - 1) for i in range(per)]
    return np.stack(parts, -1).reshape(packed.shape[0], -1)[:, :n]


def nbits_dequant(codes, scales, zps, bits, block, K):
    """The MatMulNBits weights [N, K]: (code - zero point) * scale per block."""
    N = codes.shape[0]
    q = nbits_unpack(codes.reshape(N, -1), bits, K).astype(np.float32)
    kb = scales.reshape(N, -1).shape[1]
    z = np.full((N, kb), 2.0 ** (bits - 1), np.float32) if zps is None else (
        zps.reshape(N, kb).astype(np.float32) if zps.dtype == np.float32 else
        nbits_unpack(zps.reshape(N, -1), bits, kb).astype(np.float32))
    rep = lambda a: np.repeat(a, block, axis=1)[:, :K]
    return (q - rep(z)) * rep(scales.reshape(N, kb).astype(np.float32))


def test_quantize_int4():
    rng = np.random.default_rng(12)
    w1 = rng.standard_normal((70, 96)).astype(np.float32)   # MatMul [K, N]; K not a multiple of 32
    w2 = rng.standard_normal((10, 96)).astype(np.float32)   # Gemm transB [N, K]
    b2 = rng.standard_normal((1, 10)).astype(np.float32)    # a [1, N] bias
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm"), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1, name="gemm")]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 70])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 10])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
                               numpy_helper.from_array(b2, "b2")])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), "mlp.onnx")
    out = os.path.join(TMP, "mlp.int4.onnx")
    rc, _, err = crun("quantize", path, "-o", out, "--int4")
    check(rc == 0, "quantize --int4: " + err)
    if rc:
        return
    q = onnx.load(out)
    check([n.op_type for n in q.graph.node].count("MatMulNBits") == 2 and
          any(o.domain == "com.microsoft" for o in q.opset_import), "MatMul and Gemm become MatMulNBits")
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    check(inits["w1_nbits"].shape == (96, 3, 16) and inits["w1_nbits_scale16"].dtype == np.float16 and
          inits["w1_nbits_zero_point"].shape == (96, 2) and "w1" not in inits,
          "4-bit codes in blocks of 32, float16 scales, packed zero points, the float weight gone: %r" %
          {k: (v.dtype, v.shape) for k, v in inits.items()})
    x = rng.standard_normal((5, 70)).astype(np.float32)
    dq = lambda base, K: nbits_dequant(inits[base + "_nbits"], inits[base + "_nbits_scale16"],
                                       inits[base + "_nbits_zero_point"], 4, 32, K)
    w1q, w2q = dq("w1", 70), dq("w2", 96)
    want = np.maximum(x @ w1q.T, 0) @ w2q.T + b2
    got = run_y_named(out, {"x": x}, "y")
    check(got is not None and np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max()),
          "crun computes MatMulNBits as its spec says")
    err_w = np.abs(w1q - w1.T).max() / np.abs(w1).max()
    check(err_w < 0.1, "4-bit weights stay within a step of the float ones (%.3f)" % err_w)
    one_line_error(*crun("quantize", path, "-o", out, "--int4", "--block-size", 20), 2, "power of 2",
                   "--block-size that is no power of 2")
    conv = save(model_conv_relu(), "conv_only.onnx")
    one_line_error(*crun("quantize", conv, "-o", out, "--int4"), 2, "no MatMul or Gemm", "--int4 without MatMul")


def test_matmul_nbits_bits_and_zero_points():
    """MatMulNBits from other tools: 2, 4 and 8 bits, packed, float and default zero points,
    a bias, a rank-3 A, and weights given as inputs (dequantized per run)."""
    rng = np.random.default_rng(13)
    K, N, block = 40, 6, 16
    kb = (K + block - 1) // block
    for bits, zkind, as_input in ((4, "packed", False), (2, "float", True), (8, None, False), (4, None, True)):
        codes = rng.integers(0, 1 << bits, (N, kb * block))
        packed = nbits_pack(codes, bits).reshape(N, kb, block * bits // 8)
        scales = rng.uniform(0.01, 0.2, (N * kb,)).astype(np.float32)
        zps = {"packed": nbits_pack(rng.integers(0, 1 << bits, (N, kb)), bits),
               "float": rng.uniform(0, (1 << bits) - 1, (N * kb,)).astype(np.float32), None: None}[zkind]
        bias = rng.standard_normal(N).astype(np.float32)
        a = rng.standard_normal((2, 3, K)).astype(np.float32)
        consts = {"B": packed, "scales": scales, "bias": bias}
        if zps is not None:
            consts["zp"] = zps
        names = ["a", "B", "scales", "zp" if zps is not None else "", "", "bias"]
        node = helper.make_node("MatMulNBits", names, ["y"], domain="com.microsoft", K=K, N=N, bits=bits,
                                block_size=block)
        dt = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.float32): TensorProto.FLOAT}
        inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, list(a.shape))]
        inits = []
        for k, v in consts.items():
            if as_input and k != "bias":
                inputs.append(helper.make_tensor_value_info(k, dt[v.dtype], list(v.shape)))
            else:
                inits.append(numpy_helper.from_array(v, k))
        graph = helper.make_graph([node], "t", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                        helper.make_opsetid("com.microsoft", 1)])
        path = save(model, "nbits_%d.onnx" % bits)
        feed = {"a": a}
        if as_input:
            feed.update({k: v for k, v in consts.items() if k != "bias"})
        w = nbits_dequant(packed, scales, zps, bits, block, K)
        want = a @ w.T + bias
        got = run_y_named(path, feed, "y")
        check(got is not None and got.shape == (2, 3, N) and np.allclose(got, want, rtol=1e-4, atol=1e-4),
              "MatMulNBits bits=%d zero points %s%s" % (bits, zkind, " as inputs" if as_input else ""))
    bad = helper.make_node("MatMulNBits", ["a", "B", "scales"], ["y"], domain="com.microsoft", K=K, N=N, bits=3,
                           block_size=block)
    graph = helper.make_graph([bad], "t", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, K])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(packed, "B"), numpy_helper.from_array(scales, "scales")])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                        helper.make_opsetid("com.microsoft", 1)]), "nbits_bad.onnx")
    one_line_error(*crun(path), 2, "bits 3", "MatMulNBits with 3 bits")


def run_y_named(model, feed, out_name, extra=()):
    """Runs model on the named .npy inputs; returns output out_name or None after a failed check."""
    base = os.path.join(TMP, "run_" + os.path.basename(model))
    os.makedirs(base, exist_ok=True)
    args = []
    for k, v in feed.items():
        np.save(os.path.join(base, k + ".npy"), v)
        args += ["--input", "%s=%s" % (k, os.path.join(base, k + ".npy"))]
    rc, _, err = crun(model, *args, "--output-dir", base, *extra)
    check(rc == 0, "running %s: %s" % (model, err))
    return np.load(os.path.join(base, out_name + ".npy")) if rc == 0 else None


def test_qlinear_unary_ops():
    """QLinearSigmoid, QLinearLeakyRelu and QLinearGlobalAveragePool (com.microsoft) against
    their definitions computed in float32 (models.qoperator holds them to ONNX Runtime)."""
    rng = np.random.default_rng(21)
    sx, sy, zx, zy = np.float32(0.05), np.float32(0.02), 120, 100
    for op, attrs, shape in (("QLinearSigmoid", {}, [2, 3, 40]), ("QLinearLeakyRelu", {"alpha": 0.25}, [5, 60]),
                             ("QLinearGlobalAveragePool", {}, [2, 16, 5, 7]),
                             ("QLinearGlobalAveragePool", {"channels_last": 1}, [2, 5, 7, 16])):
        inits = [numpy_helper.from_array(np.array(v, d), n) for v, d, n in
                 ((sx, np.float32, "sx"), (zx, np.uint8, "zx"), (sy, np.float32, "sy"), (zy, np.uint8, "zy"))]
        node = helper.make_node(op, ["x", "sx", "zx", "sy", "zy"], ["y"], domain="com.microsoft", **attrs)
        graph = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
        path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                            helper.make_opsetid("com.microsoft", 1)]), op + ".onnx")
        x = rng.integers(0, 256, shape).astype(np.uint8)
        got = run_y_named(path, {"x": x}, "y")
        if got is None:
            continue
        v = (x.astype(np.float32) - np.float32(zx)) * sx
        if op == "QLinearGlobalAveragePool":
            axes = (1, 2) if attrs else (2, 3)
            count = np.float32(np.prod([shape[a] for a in axes]))
            acc = (x.astype(np.int64) - zx).sum(axis=axes, keepdims=True).astype(np.float32)
            want = np.clip(np.rint(acc * (sx / (sy * count))) + zy, 0, 255)
        else:
            f = 1 / (1 + np.exp(-v)) if op == "QLinearSigmoid" else np.where(v >= 0, v, np.float32(0.25) * v)
            want = np.clip(np.rint(f.astype(np.float32) / sy) + zy, 0, 255)
        diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
        check(got.shape == want.shape and diff.max() <= 1 and (diff > 0).mean() <= 0.01,
              "%s %s: %d of %d codes differ" % (op, attrs, int((diff > 0).sum()), diff.size))


M64 = (1 << 64) - 1
P1, P2 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F


def crun_checksum(b):
    """The .crun checksum (loaders/crun_file.c), to forge headers a reader must refuse."""
    rotl = lambda x, r: ((x << r) | (x >> (64 - r))) & M64
    lane = [(P1 + P2) & M64, P2, 0, (-P1) & M64]
    whole = len(b) // 32 * 32
    blocks = [b[i:i + 32] for i in range(0, whole, 32)]
    if len(b) > whole:
        blocks.append(b[whole:] + bytes(32 - (len(b) - whole)))
    for blk in blocks:
        for i in range(4):
            w = int.from_bytes(blk[8 * i:8 * i + 8], "little")
            lane[i] = (rotl((lane[i] + w * P2) & M64, 31) * P1) & M64
    h = (len(b) * P1) & M64
    for i in range(4):
        h = (rotl(h ^ ((lane[i] * P2) & M64), 27) * P1 + P2) & M64
    h ^= h >> 33
    h = (h * P2) & M64
    return h ^ (h >> 29)


def forge_header(path, out, offset, value):
    """path with the header bytes at offset replaced by value and the header's checksum fixed."""
    b = bytearray(open(path, "rb").read())
    b[offset:offset + len(value)] = value
    b[248:256] = crun_checksum(bytes(b[:248])).to_bytes(8, "little")
    open(out, "wb").write(bytes(b))
    return out


def model_conv_gemm():
    """x [batch,2,6,6] -> Conv 3x3 + Relu -> Flatten -> Gemm (weights transposed) -> y [batch,5]."""
    rng = np.random.default_rng(21)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((5, 4 * 36)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]), helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "cg", [x], [y], [numpy_helper.from_array(w, "w"),
                                                      numpy_helper.from_array(fc, "fc")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), w, fc


def test_compile():
    model, w, fc = model_conv_gemm()
    path = save(model, "cg.onnx")
    out = os.path.join(TMP, "cg.crun")
    rc, o, err = crun("compile", path, "-o", out, "--dim", "batch=3")
    check(rc == 0 and "wrote" in o and "planned for 1 thread" in o, "compile: " + o + err)
    arena = int(o.split("arena: ")[1].split()[0]) if "arena: " in o else -1
    rc, info, err = crun("info", path, "--dim", "batch=3", "--threads", 1)
    check("memory: arena %d bytes" % arena in info, "compile's arena %d is the plan's: %s" % (arena, info))
    data = open(out, "rb").read()
    check(w.tobytes() not in data and fc.tobytes() not in data,
          "the compiled file keeps the packed weights only, not a raw copy")
    rc, info, err = crun("info", out)
    check(rc == 0 and "compiled: for " in info and "arena %d bytes" % arena in info and "checksum ok" in info and
          "x: float32 [3,2,6,6]" in info, "info of a compiled model: " + info + err)
    x = np.random.default_rng(22).standard_normal((3, 2, 6, 6)).astype(np.float32)
    want = run_y(path, x)
    got = run_y(out, x)
    check(want is not None and got is not None and want.tobytes() == got.tobytes(),
          "compiled and ONNX outputs are bit-identical")
    pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((3, 4, 6, 6), np.float64)
    for i in range(3):
        for j in range(3):
            conv += np.einsum("nchw,mc->nmhw", pad[:, :, i:i + 6, j:j + 6], w[:, :, i, j])
    ref = np.maximum(conv, 0).reshape(3, -1) @ fc.T.astype(np.float64)
    check(got is not None and np.allclose(got, ref, rtol=1e-4, atol=1e-4), "compiled model computes the model")
    np.save(os.path.join(TMP, "x4.npy"), np.zeros((4, 2, 6, 6), np.float32))
    one_line_error(*crun(out, "--input", "x=" + os.path.join(TMP, "x4.npy")), 2, "expects 3",
                   "a compiled model takes its compiled shapes only")
    rc, o, err = crun("compile", path, "-o", os.path.join(TMP, "cg2.crun"), "--threads", 2, "--isa", "scalar")
    check(rc == 0 and "2 threads on scalar" in o, "compile --threads 2 --isa scalar: " + o + err)
    rc, prof, err = crun("profile", os.path.join(TMP, "cg2.crun"), "--runs", 1)
    check(rc == 0 and "avx" not in prof and "neon" not in prof, "an --isa scalar model runs scalar kernels: " + prof)
    scalar = run_y(os.path.join(TMP, "cg2.crun"), x[:1])
    check(scalar is not None and np.allclose(scalar, ref[:1], rtol=1e-4, atol=1e-4), "the scalar compiled model")
    rc, o, err = crun("compile", path, "-o", os.path.join(TMP, "cg8.crun"), "--int8", "--calib-random", 4)
    rc2, prof, err2 = crun("profile", os.path.join(TMP, "cg8.crun"), "--runs", 1)
    check(rc == 0 and rc2 == 0 and "QLinearConv" in prof, "compile --int8 compiles the quantized model: " + prof +
          err + err2)
    rc, ops, err = crun("ops", path)
    check(rc == 0 and ops.split() == ["Conv", "Flatten", "Gemm", "Relu"] + sorted(
        l for l in ops.split() if l.startswith("kernel:")) and "kernel:conv_im2col_gemm" in ops,
          "crun ops lists the ops and the planned kernels: " + ops + err)
    one_line_error(*crun("ops", os.path.join(TMP, "none.onnx")), 2, "none.onnx", "crun ops of a missing model")
    # Damaged and foreign files: one line, exit 2, never a wrong result.
    bad = os.path.join(TMP, "bad.crun")
    open(bad, "wb").write(data[:len(data) // 2])
    one_line_error(*crun(bad), 2, "truncated", "a truncated compiled model")
    flip = bytearray(data)
    flip[300] ^= 0x40
    open(bad, "wb").write(bytes(flip))
    one_line_error(*crun(bad), 2, "corrupt", "damaged tables")
    flip = bytearray(data)
    flip[-100] ^= 0x40
    open(bad, "wb").write(bytes(flip))
    one_line_error(*crun("info", bad), 2, "weights checksum", "damaged weights are found by crun info")
    one_line_error(*crun(forge_header(out, bad, 96, b"0.0.1+other\0")), 2, "compiled by crun 0.0.1+other",
                   "a file of another crun build")
    one_line_error(*crun(forge_header(out, bad, 144, b"sparc\0")), 2, "compiled for sparc", "another architecture")
    neon = 4 if "x86_64" in data[144:160].decode("latin1") else 2
    one_line_error(*crun(forge_header(out, bad, 16, neon.to_bytes(4, "little"))), 2, "which this CPU lacks",
                   "an ISA this CPU lacks")
    one_line_error(*crun("compile", out, "-o", bad), 2, "already a compiled model", "compiling a compiled model")
    one_line_error(*crun("compile", path, "-o", bad, "--dim", "bacth=2"), 2, "bacth", "a --dim typo")
    one_line_error(*crun("compile", path, "-o", bad, "--isa", "mmx"), 2, "mmx", "an unknown ISA")
    one_line_error(*crun("compile", path), 2, "-o", "compile without -o")
    one_line_error(*crun("compile", os.path.join(TMP, "none.onnx"), "-o", bad), 2, "none.onnx", "a missing model")
    one_line_error(*crun("compile", path, "-o", os.path.join(TMP, "no", "dir", "m.crun")), 2, "m.crun",
                   "an unwritable output")


EMIT_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
static int counting, allocations;
void *__wrap_malloc(size_t n) { allocations += counting; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocations += counting; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocations += counting; return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { allocations += counting; return __real_aligned_alloc(a, n); }
static float x[model_INPUT0_ELEMENTS], y[model_OUTPUT0_ELEMENTS];
int main(int argc, char **argv)
{
    FILE *f = argc == 3 ? fopen(argv[1], "rb") : NULL;
    if (!f || fread(x, sizeof x, 1, f) != 1)
        return 3;
    fclose(f);
    const void *in[1] = {x};
    void *out[1] = {y};
    counting = 1;
    int st = 0;
    for (int i = 0; i < 3 && !st; i++)
        st = model_run(in, out);
    counting = 0;
    if (st)
        return 4;
    f = fopen(argv[2], "wb");
    fwrite(y, sizeof y, 1, f);
    fclose(f);
    printf("allocations %d\n", allocations);
    return 0;
}
"""


def test_compile_emit_c():
    """--emit-c: C files that a host compiler builds against libcrun.a; the program gives the
    portable kernels' results and allocates nothing."""
    if "emulated" in CRUN:
        return  # a cross build: the host compiler cannot build for the target here
    model, w, fc = model_conv_gemm()
    path = save(model, "cg_emit.onnx")
    out_dir = os.path.join(TMP, "emit")
    os.makedirs(out_dir, exist_ok=True)
    rc, o, err = crun("compile", path, "--emit-c", out_dir, "--dim", "batch=2")
    check(rc == 0 and os.path.exists(os.path.join(out_dir, "model.c")) and not os.path.exists(
        os.path.join(out_dir, "model.crun")), "compile --emit-c: " + o + err)
    header = open(os.path.join(out_dir, "model.h")).read() if rc == 0 else ""
    check("model_WORKSPACE_BYTES" in header and "model_INPUT0_ELEMENTS 144" in header, "model.h: " + header)
    build = os.path.dirname(os.path.abspath(CRUN))
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(out_dir, "main.c"), "w") as f:
        f.write(EMIT_MAIN)
    exe = os.path.join(out_dir, "prog")
    # The build's own compiler, with its sanitizers when the library has them.
    cache = open(os.path.join(build, "CMakeCache.txt")).read()
    cc = re.search(r"^CMAKE_C_COMPILER:\w+=(.*)$", cache, re.M)
    sanitize = re.search(r"^CRUN_SANITIZE:\w+=ON$", cache, re.M)
    cmd = [cc.group(1) if cc else "cc"] + (["-fsanitize=address,undefined"] if sanitize else [])
    cmd += ["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-I", out_dir, "-I", os.path.join(src, "include"),
            os.path.join(out_dir, "main.c"), os.path.join(out_dir, "model.c"), os.path.join(build, "libcrun.a"),
            "-o", exe, "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc",
            "-lprotobuf-c", "-lcpuinfo", "-lpthread", "-lm", "-lz"]
    # A library with the XNNPACK backend links it (pkg-config --static says so too).
    xnn = re.search(r"^XNNPACK_LIB:\w+=(.*)$", cache, re.M)
    if xnn and os.path.exists(xnn.group(1)) and not re.search(r"^CRUN_XNNPACK:\w+=OFF$", cache, re.M):
        cmd += ["-lXNNPACK", "-lpthreadpool"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    check(res.returncode == 0, "the emitted C builds with the host compiler: " + res.stderr[-2000:].replace("\n", " "))
    if res.returncode != 0:
        return
    x = np.random.default_rng(23).standard_normal((2, 2, 6, 6)).astype(np.float32)
    x.tofile(os.path.join(out_dir, "x.bin"))
    res = subprocess.run([exe, os.path.join(out_dir, "x.bin"), os.path.join(out_dir, "y.bin")], capture_output=True,
                         text=True)
    check(res.returncode == 0 and "allocations 0" in res.stdout,
          "the emitted model runs without allocating: rc %d %s" % (res.returncode, res.stdout + res.stderr))
    if res.returncode != 0:
        return
    got = np.fromfile(os.path.join(out_dir, "y.bin"), np.float32).reshape(2, 5)
    scalar = run_y_named(path, {"x": x}, "y", extra=("--isa", "scalar"))
    best = run_y(path, x)
    check(scalar is not None and got.tobytes() == scalar.tobytes(),
          "the C build gives the portable kernels' exact results")
    check(best is not None and np.allclose(got, best, rtol=1e-5, atol=1e-5), "and the normal runtime's, to rounding")
    one_line_error(*crun("compile", path, "--emit-c", out_dir, "--isa", "avx2"), 2, "portable", "--emit-c with an ISA")
    one_line_error(*crun("compile", path, "--emit-c", out_dir, "--name", "my-model"), 2, "C identifier",
                   "--emit-c with a bad name")


def main():
    global CRUN, TMP
    CRUN = sys.argv[sys.argv.index("--crun") + 1]
    with tempfile.TemporaryDirectory() as tmp:
        TMP = tmp
        for name, fn in sorted(globals().items()):
            if name.startswith("test_") and callable(fn):
                fn()
                print("ok" if not failures else "..", name)
    if failures:
        print("%d CLI checks failed" % len(failures))
        sys.exit(1)
    print("all CLI checks passed")


if __name__ == "__main__":
    main()
