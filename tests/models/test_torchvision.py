"""ResNet-18 and MobileNetV2 from torchvision, exported to ONNX with random weights
(fixed seeds; BatchNorm statistics set from random batches so activations stay alive),
run by crun and compared with PyTorch's own outputs from this run."""
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None),
}


def build(name):
    """Exports the model once and caches it with its input and torch's output."""
    d = mt.cache_dir("models", "torchvision-v1")
    onnx_path, io_path = os.path.join(d, name + ".onnx"), os.path.join(d, name + ".npz")
    if os.path.exists(onnx_path) and os.path.exists(io_path):
        return onnx_path, np.load(io_path)
    mt.progress("exporting %s ..." % name)
    torch.manual_seed(0)
    model = MODELS[name]()
    model.train()
    with torch.no_grad():  # running statistics from a few random batches
        for _ in range(4):
            model(torch.rand(8, 3, 224, 224))
    model.eval()
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).numpy()
    torch.onnx.export(model, x, onnx_path + ".tmp", opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(onnx_path + ".tmp", onnx_path)
    np.savez(io_path, x=x.numpy(), y=y)
    return onnx_path, np.load(io_path)


def main():
    args = mt.main_args()
    for name in MODELS:
        path, io = build(name)
        outs = {}
        for threads in (1, 2):
            outs[threads] = mt.run_crun(args.crun, path, {"input": io["x"]}, threads=threads)["logits"]
            worst = mt.compare(name, outs[threads], io["y"])
        assert np.array_equal(outs[1], outs[2]), name + ": 1 and 2 threads differ"
        ratio = mt.arena_ratio(mt.crun_info(args.crun, path))
        assert ratio <= 1.15, "%s: arena is %.3f x the lower bound" % (name, ratio)
        print("%s: ok (max abs diff %.2g, threads agree, arena %.3f x lower bound)" % (name, worst, ratio))


if __name__ == "__main__":
    main()
