#!/usr/bin/env python3
"""PyTorch training throughput on the trainer benchmark's Fashion-MNIST CNN (the peer
for bench/trainer.sh): the same layers, batch size and optimizer as
trainer/specs/fashion_cnn.txt with `crun train` defaults. Prints `torch_sps=N`.

usage: bench/torch_train.py --threads N [--batch 64] [--samples 19200]
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def images(name, n):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = np.frombuffer(f.read(), np.uint8, offset=16)
    return torch.tensor(raw[: n * 784].reshape(n, 1, 28, 28), dtype=torch.float32) / 255


def labels(name, n):
    with gzip.open(os.path.join(DATA, name)) as f:
        return torch.tensor(np.frombuffer(f.read(), np.uint8, offset=8)[:n].astype(np.int64))


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--samples", type=int, default=19200)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x, y = images("train-images-idx3-ubyte.gz", a.samples), labels("train-labels-idx1-ubyte.gz", a.samples)
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    net.train()

    def epoch():
        order = torch.randperm(a.samples)
        for s in range(0, a.samples, a.batch):
            idx = order[s:s + a.batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()

    # a short warm-up, then the timed pass (the same work crun's samples/s counts:
    # batching, forward, backward, the update)
    warm = a.samples // 10
    order = torch.randperm(a.samples)[:warm]
    for s in range(0, warm, a.batch):
        idx = order[s:s + a.batch]
        opt.zero_grad()
        loss_fn(net(x[idx]), y[idx]).backward()
        opt.step()
    t0 = time.perf_counter()
    epoch()
    dt = time.perf_counter() - t0
    print(f"torch_sps={a.samples / dt:.0f}")


if __name__ == "__main__":
    main()
