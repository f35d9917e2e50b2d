#!/usr/bin/env python3
"""Start-up time: a compiled model (.crun) against ONNX Runtime's session creation, in one
run on the same machine and models (the compile issue's bar: crun <= 0.05x ORT on
MobileNetV2, ResNet-18 and PaddleOCR det).

Each round starts fresh processes: `crun bench MODEL.crun --json` reports load_ms (open:
map the file, check it, build the graph) and session_ms (plan, with the packed weights
found in the file), ready = their sum; the same for the .onnx file (parse, optimise, pack);
ONNX Runtime's InferenceSession.create (npm onnxruntime-node, all graph optimisations) is
timed by bench/ort_bench.js. Medians over --rounds rounds, alternating the three.

    bench/load_time.py --crun build/crun [--models mobilenet_v2,resnet18,paddleocr_det] [--rounds 7]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

DEFAULT_MODELS = "mobilenet_v2,resnet18,paddleocr_det"
BAR = 0.05


def crun_ready(crun, model, specs):
    args = [crun, "bench", model, "--threads", "1", "--warmup", "0", "--runs", "1", "--json"]
    for s in specs:
        args += ["--input", s]
    r = compare.run_json(args)
    return r["load_ms"] + r["session_ms"], r["first_run_ms"] - r["session_ms"]


def ort_ready(model, specs):
    r = compare.run_json(["node", os.path.join(compare.HERE, "ort_bench.js"), compare.mt.ort_dir(), model, "1", "0",
                          "1"] + specs)
    return r["load_ms"], r["first_run_ms"]


def measure(crun, name, rounds, tmp):
    model, inputs = compare.MODELS[name]()
    specs = compare.write_inputs(inputs)
    compiled = os.path.join(tmp, name + ".crun")
    import test_compiled  # the model tests' helper: --dim values from the inputs' shapes
    dims = [a for d in test_compiled.symbolic_dims(model, inputs) for a in ("--dim", "%s=%d" % d)]
    subprocess.run([crun, "compile", model, "-o", compiled, "--threads", "1"] + dims, check=True, capture_output=True)
    t = {"crun": [], "onnx": [], "ort": [], "crun_first": [], "ort_first": []}
    for _ in range(rounds):
        ready, first = crun_ready(crun, compiled, specs)
        t["crun"].append(ready)
        t["crun_first"].append(first)
        t["onnx"].append(crun_ready(crun, model, specs)[0])
        ready, first = ort_ready(model, specs)
        t["ort"].append(ready)
        t["ort_first"].append(first)
    med = {k: float(np.median(v)) for k, v in t.items()}
    med["model"] = name
    med["file_mb"] = os.path.getsize(compiled) / 1e6
    med["onnx_mb"] = os.path.getsize(model) / 1e6
    return med


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    p.add_argument("--models", default=DEFAULT_MODELS)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rows.append(measure(args.crun, name, args.rounds, tmp))
            r = rows[-1]
            print("%s: .crun ready %.2f ms, .onnx ready %.2f ms, ORT session %.1f ms" % (
                name, r["crun"], r["onnx"], r["ort"]), file=sys.stderr, flush=True)
    print("machine: %s" % compare.machine())
    print("| model | .crun ready ms | .onnx ready ms | ORT session ms | .crun / ORT | bar | first run ms (crun / ORT) "
          "| file MB (.crun / .onnx) |")
    print("|---|---|---|---|---|---|---|---|")
    failed = []
    for r in rows:
        ratio = r["crun"] / r["ort"]
        ok = ratio <= BAR
        failed += [] if ok else [r["model"]]
        print("| %s | %.2f | %.1f | %.1f | %.4f | %s | %.1f / %.1f | %.1f / %.1f |" % (
            r["model"], r["crun"], r["onnx"], r["ort"], ratio, "met" if ok else "MISSED", r["crun_first"],
            r["ort_first"], r["file_mb"], r["onnx_mb"]))
    if failed:
        sys.exit("load time bar (<= %.2fx ONNX Runtime) missed on: %s" % (BAR, ", ".join(failed)))


if __name__ == "__main__":
    main()
