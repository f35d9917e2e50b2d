"""Trains the demo model: a small CNN on Fashion-MNIST (Debian's dataset-fashion-mnist),
exported to ONNX with its class names in the model's metadata, plus one test image per
class as .npy files. PyTorch makes the demo's data only; crun never needs it.

    /usr/bin/python3 demo/train_fashion.py        (about two minutes on two cores)
"""
import gzip
import os

import numpy as np
import onnx
import torch
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Net(nn.Module):
    """conv(1->16,3x3)+BN+ReLU+maxpool, conv(16->32,3x3)+BN+ReLU+maxpool, FC 1568->128+ReLU,
    FC 128->10, softmax: the CNN the trainer issue names too."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    torch.manual_seed(0)
    x_train = torch.tensor(idx("train-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
    y_train = torch.tensor(idx("train-labels-idx1-ubyte.gz"), dtype=torch.long)
    x_test = torch.tensor(idx("t10k-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
    y_test = idx("t10k-labels-idx1-ubyte.gz")
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(3):
        net.train()
        perm = torch.randperm(len(x_train))
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss_fn(net(x_train[b]), y_train[b]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(x_test).argmax(1).numpy() == y_test).mean()
        print("epoch %d: test accuracy %.4f" % (epoch + 1, acc))

    model = nn.Sequential(net, nn.Softmax(dim=1)).eval()
    path = os.path.join(HERE, "fashion_mnist.onnx")
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, opset_version=13, input_names=["image"],
                      output_names=["scores"], dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}})
    m = onnx.load(path)
    m.metadata_props.add(key="labels", value="\n".join(LABELS))
    m.metadata_props.add(key="test_accuracy", value="%.4f" % acc)
    onnx.save(m, path)

    # One test image per class, the first the trained model gets right, so the demo and
    # the example test can check crun's answer against the file name.
    os.makedirs(os.path.join(HERE, "images"), exist_ok=True)
    with torch.no_grad():
        pred = net(x_test).argmax(1).numpy()
    for c in range(10):
        i = int(np.nonzero((y_test == c) & (pred == c))[0][0])
        name = "%d_%s.npy" % (c, LABELS[c].lower().replace("/", "_").replace(" ", "_"))
        np.save(os.path.join(HERE, "images", name), x_test[i:i + 1].numpy())
    print("wrote", path, "and", len(os.listdir(os.path.join(HERE, "images"))), "images")


if __name__ == "__main__":
    main()
