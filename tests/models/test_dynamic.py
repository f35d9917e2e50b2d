"""Dynamic shapes: one session runs the same model at several batch sizes, sequence lengths
and image sizes in turn (a CNN, a BERT-style encoder, an LSTM), re-planning only when a
shape changes, with outputs equal to PyTorch's and no growth in memory. The models come
from the zoo (exported with dynamic axes); the checking is done by dynamic_check (C)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402
import test_zoo as zoo  # noqa: E402

# name: (constructor, input makers for each case, dynamic axes)
CASES = {
    "resnet18": (zoo.ZOO["resnet18"][0], [zoo.img(n, 3, s) for n, s in [(1, 64), (3, 64), (1, 96), (2, 48), (1, 64)]],
                 {"x": {0: "batch", 2: "h", 3: "w"}}),
    "bert_encoder": (zoo.BertEncoder, [
        lambda g, n=n, t=t: (torch.randint(0, 100, (n, t), generator=g), torch.ones(n, t, dtype=torch.int64))
        for n, t in [(1, 16), (2, 9), (4, 3), (2, 9), (1, 16)]], {"ids": {0: "batch", 1: "seq"},
                                                                  "mask": {0: "batch", 1: "seq"}}),
    "lstm2": (zoo.LSTM2, [lambda g, n=n, t=t: torch.randn(n, t, 16, generator=g)
                          for n, t in [(1, 10), (3, 4), (2, 25), (1, 10)]], {"x": {0: "batch", 1: "seq"}}),
}


def build(name):
    ctor, makers, axes = CASES[name]
    d = mt.cache_dir("models", zoo.ZOO_VERSION + "-dynamic", name)
    path = os.path.join(d, "model.onnx")
    case_dirs = [os.path.join(d, "case%d" % i) for i in range(len(makers))]
    if os.path.exists(path) and all(os.path.isdir(c) for c in case_dirs):
        return path, case_dirs
    mt.progress("exporting %s with dynamic axes ..." % name)
    torch.manual_seed(0)
    model = ctor()
    g = torch.Generator().manual_seed(1)
    cases = [m(g) for m in makers]
    cases = [c if isinstance(c, tuple) else (c,) for c in cases]
    in_names = list(axes)
    zoo.set_batchnorm_statistics(model, list(cases[0]))
    model.eval()
    torch.onnx.export(model, cases[0], path + ".tmp", opset_version=14, input_names=in_names,
                      output_names=["y"], dynamic_axes=dict(axes, y={0: "batch"}))
    os.replace(path + ".tmp", path)
    for c, inputs in zip(case_dirs, cases):
        os.makedirs(c, exist_ok=True)
        with torch.no_grad():
            out = model(*inputs)
        for n, t in zip(in_names, inputs):
            np.save(os.path.join(c, "in_%s.npy" % n), t.numpy())
        np.save(os.path.join(c, "out_y.npy"), (out[0] if isinstance(out, tuple) else out).numpy())
    return path, case_dirs


def main():
    p = __import__("argparse").ArgumentParser()
    p.add_argument("--checker", required=True)
    args = p.parse_args()
    failed = []
    for name in CASES:
        path, case_dirs = build(name)
        res = subprocess.run([args.checker, path] + case_dirs, capture_output=True, text=True)
        print(res.stdout.strip() or res.stderr.strip())
        if res.returncode != 0:
            print(res.stderr.strip())
            failed.append(name)
    if failed:
        sys.exit("dynamic shapes failed for: " + ", ".join(failed))


if __name__ == "__main__":
    main()
