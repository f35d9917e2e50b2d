"""Classifies the demo's Fashion-MNIST images with crun from Python.

    CRUN_LIBRARY=build/libcrun.so PYTHONPATH=python python3 python/examples/classify.py \
        demo/fashion_mnist.onnx demo/images/*.npy
"""
import sys

import numpy as np

import crun


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip())
        return 2
    model = crun.Model(argv[1])
    labels = (model.metadata("labels") or "").splitlines()
    session = crun.Session(model, threads=2)
    name = model.inputs[0].name
    for path in argv[2:]:
        scores = next(iter(session.run({name: np.load(path)}).values()))[0]
        best = int(scores.argmax())
        label = labels[best] if best < len(labels) else str(best)
        print("%s: %s (%.3f)" % (path, label, scores[best]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
