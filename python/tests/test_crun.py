"""Tests of the crun Python package against libcrun (CRUN_LIBRARY) on the demo model."""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import crun  # noqa: E402

MODEL = os.path.join(ROOT, "demo", "fashion_mnist.onnx")
IMAGES = sorted(glob.glob(os.path.join(ROOT, "demo", "images", "*.npy")))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what)


def raises(fn, status, needle, what):
    try:
        fn()
    except crun.Error as e:
        check(e.status == status and needle in str(e), "%s: status %d %r" % (what, e.status, str(e)))
        return
    check(False, "%s: no error" % what)


def test_model_info():
    m = crun.Model(MODEL)
    check(crun.version().count(".") >= 1, "version: %r" % crun.version())
    ins, outs = m.inputs, m.outputs
    check(len(ins) == 1 and ins[0].name == "image" and ins[0].dtype == np.float32 and
          ins[0].shape == ("batch", 1, 28, 28), "inputs: %r" % ins)
    check(len(outs) == 1 and outs[0].name == "scores", "outputs: %r" % outs)
    check(m.metadata("labels").splitlines()[0] == "T-shirt/top" and m.metadata("nope") is None, "metadata")
    with open(MODEL, "rb") as f:
        check(crun.Model(f.read()).inputs[0].name == "image", "a model from bytes")


def test_classifies_demo_images():
    s = crun.Session(crun.Model(MODEL), threads=2)
    check(s.threads == 2, "threads")
    singles = []
    for path in IMAGES:
        out = s.run({"image": np.load(path)})["scores"]
        singles.append(out[0])
        want = int(os.path.basename(path).split("_")[0])
        check(out.shape == (1, 10) and int(out.argmax()) == want, "%s: class %d, want %d" % (path, out.argmax(), want))
        check(abs(float(out.sum()) - 1) < 1e-4, "softmax sums to 1")
    batch = np.concatenate([np.load(p) for p in IMAGES])
    out = crun.Session(MODEL, dims={"batch": len(IMAGES)}).run([batch])["scores"]
    check(out.shape == (len(IMAGES), 10) and np.allclose(out, np.stack(singles), rtol=1e-5, atol=1e-6),
          "a batch gives the single runs' scores")
    # Every backend this build has gives the same scores.
    for backend in ("xnnpack", "auto"):
        try:
            got = crun.Session(MODEL, dims={"batch": len(IMAGES)}, backend=backend).run([batch])["scores"]
        except crun.Error as e:
            check(backend == "xnnpack" and "XNNPACK" in str(e), "backend %s: %s" % (backend, e))
            continue
        check(np.allclose(got, out, rtol=1e-4, atol=1e-6), "backend %s gives the native scores" % backend)
    try:
        crun.Session(MODEL, backend="gpu")
        check(False, "an unknown backend is refused")
    except ValueError:
        pass


def test_errors():
    raises(lambda: crun.Model(os.path.join(HERE, "none.onnx")), 2, "none.onnx", "missing model")
    raises(lambda: crun.Model(b"\x08\x01junk"), 3, "", "malformed model bytes")
    s = crun.Session(MODEL)
    raises(lambda: s.run({"img": np.zeros((1, 1, 28, 28), np.float32)}), 1, "img", "wrong input name")
    raises(lambda: s.run({"image": np.zeros((1, 1, 27, 28), np.float32)}), 1, "28", "wrong shape")
    raises(lambda: s.run({"image": np.zeros((1, 1, 28, 28), np.float64)}), 1, "", "wrong dtype")
    raises(lambda: crun.quantize(MODEL, "/tmp/x.onnx", method="best"), 1, "best", "bad quantize method")


def test_quantize_and_convert():
    batch = np.concatenate([np.load(p) for p in IMAGES])
    want = crun.Session(MODEL).run([batch])["scores"].argmax(1)
    with tempfile.TemporaryDirectory() as tmp:
        q, h, q4 = os.path.join(tmp, "q.onnx"), os.path.join(tmp, "h.onnx"), os.path.join(tmp, "q4.onnx")
        crun.quantize(MODEL, q, calib_random=8)
        crun.quantize(MODEL, q4, int4=True, block_size=64)
        crun.convert_fp16(MODEL, h)
        check(os.path.getsize(q4) < 0.25 * os.path.getsize(MODEL), "int4 file size")
        for path, what in ((q, "int8"), (h, "fp16"), (q4, "int4")):
            got = crun.Session(path).run([batch])["scores"].argmax(1)
            check((got == want).mean() >= 0.9, "%s predictions: %r vs %r" % (what, got, want))
        check(os.path.getsize(q) < 0.3 * os.path.getsize(MODEL), "int8 file size")


def test_compile():
    batch = np.load(IMAGES[0])
    want = crun.Session(MODEL).run([batch])["scores"]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.crun")
        info = crun.compile(MODEL, out, dims={"batch": 1})
        check(info["arena_bytes"] > 0 and info["workspace_bytes"] > info["arena_bytes"] and
              info["file_bytes"] == os.path.getsize(out), "compile figures: %r" % info)
        got = crun.Session(crun.Model(out), threads=1).run([batch])["scores"]
        check(np.array_equal(got, crun.Session(MODEL, threads=1).run([batch])["scores"]) and
              np.allclose(got, want, atol=1e-5), "a compiled model's outputs")
        raises(lambda: crun.compile(MODEL, out, dims={"bacth": 1}), 1, "bacth", "compile with a dim typo")


def test_example_script():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    res = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "examples", "classify.py"), MODEL]
                         + IMAGES, capture_output=True, text=True, env=env)
    lines = res.stdout.strip().splitlines()
    check(res.returncode == 0 and len(lines) == len(IMAGES), "example: %s %s" % (res.stdout, res.stderr))
    labels = crun.Model(MODEL).metadata("labels").splitlines()
    for path, line in zip(IMAGES, lines):
        want = labels[int(os.path.basename(path).split("_")[0])]
        check(line.startswith(path + ": " + want + " ("), "example line %r, want %s" % (line, want))


def main():
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok" if not failures else "..", name)
    if failures:
        print("%d Python checks failed" % len(failures))
        return 1
    print("all Python checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
