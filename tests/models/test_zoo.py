"""The architecture zoo: small and classic networks built with PyTorch (fixed seeds, random
weights, BatchNorm statistics set from random batches), exported to ONNX at opsets 7 to
17, with PyTorch's outputs on fixed inputs saved beside them. crun must reproduce the
outputs within rtol 1e-4 / atol 1e-5 (scaled by the outputs' magnitude).

Models and references are made once and cached (CRUN_CACHE, default ~/.cache/crun).

    test_zoo.py --crun build/crun [--only NAME ...] [--list]
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

ZOO_VERSION = "zoo-v1"  # bump to rebuild every cached model


# ---------------------------------------------------------------- small models

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.Tanh(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2),
                               nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2))
        self.c = nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
                               nn.Linear(84, 10))

    def forward(self, x):
        return self.c(self.f(x))


class LSTM2(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(16, 32, num_layers=2, batch_first=True)
        self.out = nn.Linear(32, 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out(y)


class BiGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(12, 24, bidirectional=True)
        self.out = nn.Linear(48, 4)

    def forward(self, x):
        y, h = self.rnn(x)
        return self.out(y), h


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x, bias):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)
        att = q @ k.transpose(-2, -1) / math.sqrt(self.dk) + bias
        y = att.softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d, heads, pre_norm):
        super().__init__()
        self.pre = pre_norm
        self.att, self.n1, self.n2 = Attention(d, heads), nn.LayerNorm(d), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, bias):
        if self.pre:
            x = x + self.att(self.n1(x), bias)
            return x + self.mlp(self.n2(x))
        x = self.n1(x + self.att(x, bias))
        return self.n2(x + self.mlp(x))


class BertEncoder(nn.Module):
    """Token + position embeddings, post-norm blocks, a padding mask from the input."""

    def __init__(self, vocab=100, d=64, heads=4, layers=2, seq=16):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Parameter(torch.randn(1, seq, d) * 0.1)
        self.blocks = nn.ModuleList(Block(d, heads, False) for _ in range(layers))

    def forward(self, ids, mask):
        x = self.tok(ids) + self.pos[:, : ids.shape[1]]
        bias = (1.0 - mask[:, None, None, :].float()) * -1e4  # padded keys get no attention
        for b in self.blocks:
            x = b(x, bias)
        return x


class GptDecoder(nn.Module):
    """Pre-norm blocks with a causal mask and a tied language-model head."""

    def __init__(self, vocab=100, d=64, heads=4, layers=2, seq=16):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads, True) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(t))
        causal = torch.triu(torch.full((t, t), -1e4), diagonal=1)
        for b in self.blocks:
            x = b(x, causal)
        return self.norm(x) @ self.tok.weight.t()


class ViT(nn.Module):
    def __init__(self, img=32, patch=8, d=64, heads=4, layers=2, classes=10):
        super().__init__()
        n = (img // patch) ** 2
        self.embed = nn.Conv2d(3, d, patch, stride=patch)
        self.cls, self.pos = nn.Parameter(torch.randn(1, 1, d) * 0.1), nn.Parameter(torch.randn(1, n + 1, d) * 0.1)
        self.blocks = nn.ModuleList(Block(d, heads, True) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for b in self.blocks:
            x = b(x, 0.0)
        return self.head(self.norm(x[:, 0]))


class DCGAN(nn.Module):
    def __init__(self, z=32, c=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z, c * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(c * 4), nn.ReLU(),
            nn.ConvTranspose2d(c * 4, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.ReLU(),
            nn.ConvTranspose2d(c * 2, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
            nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.net(z)


def conv_block(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())


class UNet(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.d1, self.d2, self.d3 = conv_block(3, c), conv_block(c, 2 * c), conv_block(2 * c, 4 * c)
        self.u2, self.u1 = conv_block(6 * c, 2 * c), conv_block(3 * c, c)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.out = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        a = self.d1(x)
        b = self.d2(F.max_pool2d(a, 2))
        c = self.d3(F.max_pool2d(b, 2))
        b = self.u2(torch.cat([self.up(c), b], 1))
        return self.out(self.u1(torch.cat([self.up(b), a], 1)))


class VAEDecoder(nn.Module):
    def __init__(self, z=16):
        super().__init__()
        self.fc = nn.Linear(z, 32 * 4 * 4)
        self.net = nn.Sequential(nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Sigmoid())

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 32, 4, 4))


class WaveNet(nn.Module):
    """Dilated causal 1-D convolutions with gated activations and residual/skip sums."""

    def __init__(self, c=16, layers=6):
        super().__init__()
        self.inp = nn.Conv1d(1, c, 1)
        self.filt = nn.ModuleList(nn.Conv1d(c, c, 2, dilation=2 ** i) for i in range(layers))
        self.gate = nn.ModuleList(nn.Conv1d(c, c, 2, dilation=2 ** i) for i in range(layers))
        self.res = nn.ModuleList(nn.Conv1d(c, c, 1) for _ in range(layers))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(c, 8, 1))

    def forward(self, x):
        x = self.inp(x)
        skip = 0
        for i, (f, g, r) in enumerate(zip(self.filt, self.gate, self.res)):
            p = F.pad(x, (2 ** i, 0))  # causal: pad on the left only
            h = torch.tanh(f(p)) * torch.sigmoid(g(p))
            x = x + r(h)
            skip = skip + h
        return self.out(skip)


class Video3D(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.MaxPool3d(2),
                                 nn.Conv3d(8, 16, 3, padding=1), nn.BatchNorm3d(16), nn.ReLU(),
                                 nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(16, 5))

    def forward(self, x):
        return self.net(x)


def tv(name, **kw):
    return lambda: getattr(torchvision.models, name)(weights=None, **kw)


def small_head(name, features):
    """AlexNet and VGG keep their convolutional stacks; their 4096-wide classifiers (over
    100M parameters, a 500 MB file) are replaced by a small one so the cache stays small."""
    def make():
        m = getattr(torchvision.models, name)(weights=None)
        m.avgpool = nn.AdaptiveAvgPool2d(1)
        m.classifier = nn.Sequential(nn.Dropout(), nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, 10))
        return m
    return make


def img(n=1, c=3, s=64):
    return lambda g: torch.rand(n, c, s, s, generator=g)


# name: (constructor, input makers, opset, input names)
ZOO = {
    "mlp": (MLP, [lambda g: torch.randn(2, 64, generator=g)], 9, ["x"]),
    "lenet5": (LeNet5, [img(2, 1, 28)], 7, ["x"]),
    "alexnet": (small_head("alexnet", 256), [img(1, 3, 96)], 10, ["x"]),
    "vgg11": (small_head("vgg11", 512), [img(1, 3, 32)], 11, ["x"]),
    "resnet18": (tv("resnet18"), [img(1, 3, 64)], 12, ["x"]),
    "resnet50": (tv("resnet50"), [img(1, 3, 64)], 13, ["x"]),
    "googlenet": (tv("googlenet", aux_logits=False, init_weights=True), [img(1, 3, 64)], 13, ["x"]),
    "densenet121": (tv("densenet121"), [img(1, 3, 64)], 14, ["x"]),
    "mobilenet_v2": (tv("mobilenet_v2"), [img(1, 3, 64)], 15, ["x"]),
    "mobilenet_v3_small": (tv("mobilenet_v3_small"), [img(1, 3, 64)], 16, ["x"]),
    "shufflenet_v2": (tv("shufflenet_v2_x1_0"), [img(1, 3, 64)], 17, ["x"]),
    "squeezenet1_1": (tv("squeezenet1_1"), [img(1, 3, 64)], 8, ["x"]),
    "efficientnet_b0": (tv("efficientnet_b0"), [img(1, 3, 64)], 13, ["x"]),
    "lstm2": (LSTM2, [lambda g: torch.randn(2, 10, 16, generator=g)], 14, ["x"]),
    "bigru": (BiGRU, [lambda g: torch.randn(7, 3, 12, generator=g)], 11, ["x"]),
    "bert_encoder": (BertEncoder, [lambda g: torch.randint(0, 100, (2, 16), generator=g),
                                   lambda g: torch.tensor([[1] * 16, [1] * 11 + [0] * 5])], 13, ["ids", "mask"]),
    "gpt_decoder": (GptDecoder, [lambda g: torch.randint(0, 100, (2, 12), generator=g)], 14, ["ids"]),
    "vit": (ViT, [img(2, 3, 32)], 15, ["x"]),
    "dcgan": (DCGAN, [lambda g: torch.randn(2, 32, 1, 1, generator=g)], 11, ["z"]),
    "unet": (UNet, [img(1, 3, 32)], 11, ["x"]),
    "vae_decoder": (VAEDecoder, [lambda g: torch.randn(3, 16, generator=g)], 12, ["z"]),
    "wavenet": (WaveNet, [lambda g: torch.randn(1, 1, 200, generator=g)], 13, ["x"]),
    "video3d": (Video3D, [lambda g: torch.rand(1, 3, 8, 24, 24, generator=g)], 12, ["x"]),
}


def set_batchnorm_statistics(model, inputs):
    """Random weights would make BatchNorm's running statistics meaningless and deep
    outputs collapse toward zero: run a few random batches in train mode first."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    model.train()
    with torch.no_grad():
        for i in range(3):
            g = torch.Generator().manual_seed(100 + i)
            batch = [torch.rand_like(x.float(), dtype=torch.float32) if x.is_floating_point() else x for x in inputs]
            if batch[0].shape[0] == 1 and batch[0].dim() >= 3:  # BN needs more than one value per channel
                batch = [torch.cat([b, torch.rand(b.shape, generator=g)]) for b in batch]
            model(*batch)


def build(name):
    d = mt.cache_dir("models", ZOO_VERSION)
    onnx_path, io_path = os.path.join(d, name + ".onnx"), os.path.join(d, name + ".npz")
    if os.path.exists(onnx_path) and os.path.exists(io_path):
        return onnx_path, dict(np.load(io_path))
    mt.progress("exporting %s ..." % name)
    ctor, makers, opset, in_names = ZOO[name]
    torch.manual_seed(0)
    model = ctor()
    g = torch.Generator().manual_seed(1)
    inputs = [m(g) for m in makers]
    set_batchnorm_statistics(model, inputs)
    model.eval()
    with torch.no_grad():
        outs = model(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    out_names = ["y%d" % i for i in range(len(outs))]
    torch.onnx.export(model, tuple(inputs), onnx_path + ".tmp", opset_version=opset, input_names=in_names,
                      output_names=out_names)
    os.replace(onnx_path + ".tmp", onnx_path)
    io = {"in_" + n: t.numpy() for n, t in zip(in_names, inputs)}
    io.update({"out_" + n: t.numpy() for n, t in zip(out_names, outs)})
    np.savez(io_path, **io)
    return onnx_path, io


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    p.add_argument("--only", nargs="*")
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    if args.list:
        print("\n".join(ZOO))
        return
    failed = []
    for name in args.only or ZOO:
        t0 = time.time()
        try:
            try:
                path, io = build(name)
            except Exception as e:  # an export problem is a failure of this model only
                raise AssertionError("export failed: %s" % str(e).splitlines()[0])
            inputs = {k[3:]: v for k, v in io.items() if k.startswith("in_")}
            got = mt.run_crun(args.crun, path, inputs)
            worst = 0.0
            for k, want in io.items():
                if k.startswith("out_"):
                    worst = max(worst, mt.compare(name + " " + k[4:], got[k[4:]], want))
            print("%-20s ok (max abs diff %.2g, %.1f s)" % (name, worst, time.time() - t0), flush=True)
        except AssertionError as e:
            print("%-20s FAILED: %s" % (name, e), flush=True)
            failed.append(name)
    if failed:
        sys.exit("zoo: %d of %d failed: %s" % (len(failed), len(args.only or ZOO), ", ".join(failed)))
    print("zoo: all %d models match PyTorch" % len(args.only or ZOO))


if __name__ == "__main__":
    main()
