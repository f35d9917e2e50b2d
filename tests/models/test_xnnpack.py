"""The XNNPACK backend against crun's own kernels: small models covering every node kind
the backend translates (convolutions with groups, depth multipliers, dilations, strides,
asymmetric pads and each fused activation; pooling; broadcasting arithmetic with constant
and computed operands; the Flatten + Gemm/MatMul head) must give the native outputs to
float rounding, at 1 and 2 threads, with the planned steps showing which ran as XNNPACK
regions. Models with an op XNNPACK lacks in the middle split into two regions; a region's
inner value that is also a graph output is returned. --backend auto and CRUN_BACKEND pick
a backend and give the same outputs; a bad CRUN_BACKEND is refused with exit code 2."""
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

RNG = np.random.default_rng(7)


def w(name, *shape, scale=0.3):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def model(nodes, x_shape, inits, outputs=("y",), opset=13):
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def conv(x, y, wname, bias=None, **attrs):
    return helper.make_node("Conv", [x, wname] + ([bias] if bias else []), [y], **attrs)


def cases():
    """(name, model, input shape, xnnpack steps expected)"""
    out = []
    out.append(("conv3x3_relu", model([conv("x", "c", "w", "b", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
                                      [2, 5, 11, 9], [w("w", 7, 5, 3, 3), w("b", 7)]), [2, 5, 11, 9], 1))
    out.append(("conv_stride_dilation_asym_pads",
                model([conv("x", "y", "w", strides=[2, 1], dilations=[2, 2], pads=[0, 1, 1, 0])],
                      [1, 4, 13, 10], [w("w", 6, 4, 3, 3)]), [1, 4, 13, 10], 1))
    out.append(("group_conv", model([conv("x", "y", "w", "b", group=2, pads=[1, 0, 1, 0], kernel_shape=[3, 1])],
                                    [1, 6, 8, 7], [w("w", 4, 3, 3, 1), w("b", 4)]), [1, 6, 8, 7], 1))
    clip = [numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
            numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    out.append(("depthwise_multiplier_clip",
                model([conv("x", "c", "w", "b", group=3, pads=[2, 2, 2, 2], strides=[2, 2]),
                       helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
                      [1, 3, 15, 12], [w("w", 6, 1, 5, 5, scale=2.0), w("b", 6)] + clip), [1, 3, 15, 12], 1))
    for act in ["HardSwish", "Sigmoid", "LeakyRelu", "SiLU"]:
        nodes = [conv("x", "c", "w", "b", pads=[1, 1, 1, 1])]
        if act == "SiLU":
            nodes += [helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["c", "s"], ["y"])]
        else:
            nodes += [helper.make_node(act, ["c"], ["y"], **({"alpha": 0.2} if act == "LeakyRelu" else {}))]
        out.append(("conv_" + act.lower(), model(nodes, [1, 3, 7, 7], [w("w", 5, 3, 3, 3, scale=1.0), w("b", 5)]),
                    [1, 3, 7, 7], 1))
    # Activations XNNPACK has no node for: HardSigmoid (a scale, a shift and a clamp) and the
    # scale-and-shift layer fused after an activation (Relu then Mul; HardSwish then Mul, Add).
    sc = [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in (("s", 0.5), ("t", 0.25), ("u", -2.0))]
    post = [conv("x", "c", "w", "b", pads=[1, 1, 1, 1]), helper.make_node("HardSigmoid", ["c"], ["h"], alpha=0.3, beta=0.4),
            conv("h", "c2", "w2", "b2"), helper.make_node("HardSwish", ["c2"], ["h2"]),
            helper.make_node("Mul", ["h2", "s"], ["m"]), helper.make_node("Add", ["m", "t"], ["a"]),
            conv("a", "c3", "w3"), helper.make_node("Relu", ["c3"], ["r"]), helper.make_node("Mul", ["r", "u"], ["y"])]
    out.append(("hardsigmoid_and_post_affine", model(post, [1, 3, 9, 8], [w("w", 6, 3, 3, 3, scale=1.0), w("b", 6),
                                                                         w("w2", 5, 6, 1, 1, scale=1.0), w("b2", 5),
                                                                         w("w3", 4, 5, 1, 1)] + sc),
                [1, 3, 9, 8], 1))
    out.append(("pools", model([conv("x", "c", "w"),
                                helper.make_node("MaxPool", ["c"], ["m1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                                helper.make_node("MaxPool", ["m1"], ["m2"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
                                helper.make_node("AveragePool", ["m2"], ["y"], kernel_shape=[2, 2], strides=[1, 1])],
                               [1, 3, 23, 21], [w("w", 8, 3, 1, 1)]), [1, 3, 23, 21], 1))
    # Squeeze-and-excitation with a residual: GAP -> 1x1 -> Relu -> 1x1 -> Sigmoid -> Mul
    # broadcast [N,C,1,1] over [N,C,H,W]; constants [C,1,1] and [1,C,H,W] (re-laid out).
    se = [conv("x", "a", "w0", "b0", pads=[1, 1, 1, 1]),
          helper.make_node("GlobalAveragePool", ["a"], ["g"]),
          conv("g", "g1", "w1", "b1"), helper.make_node("Relu", ["g1"], ["g2"]),
          conv("g2", "g3", "w2", "b2"), helper.make_node("Sigmoid", ["g3"], ["g4"]),
          helper.make_node("Mul", ["a", "g4"], ["m"]),
          helper.make_node("Add", ["m", "a"], ["r"]),
          helper.make_node("Sub", ["r", "k1"], ["r2"]),
          helper.make_node("Div", ["r2", "k2"], ["r3"]),
          helper.make_node("Add", ["k3", "r3"], ["y"])]
    k2 = numpy_helper.from_array((RNG.random((8, 1, 1)) + 0.5).astype(np.float32), "k2")
    out.append(("se_block_residual", model(se, [2, 4, 6, 5], [w("w0", 8, 4, 3, 3), w("b0", 8), w("w1", 3, 8, 1, 1),
                                                                w("b1", 3), w("w2", 8, 3, 1, 1), w("b2", 8),
                                                                w("k1", 8, 1, 1), k2, w("k3", 1, 8, 6, 5)]),
                [2, 4, 6, 5], 1))
    head = [conv("x", "c", "w", "b"), helper.make_node("GlobalAveragePool", ["c"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("Gemm", ["f", "fc1", "fb1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["h2"]),
            helper.make_node("Gemm", ["h2", "fc2", "fb2"], ["h3"], beta=0.5),
            helper.make_node("MatMul", ["h3", "fc3"], ["y"])]
    out.append(("classifier_head", model(head, [3, 4, 9, 9], [w("w", 16, 4, 3, 3), w("b", 16), w("fc1", 10, 16),
                                                               w("fb1", 10), w("fc2", 10, 7), w("fb2", 1, 7),
                                                               w("fc3", 7, 5)]), [3, 4, 9, 9], 1))
    # Concat (zero padding and adds inside the region): SqueezeNet's fire module along the
    # channels, and three inputs along the height.
    fire = [conv("x", "s", "ws", "bs"), helper.make_node("Relu", ["s"], ["s1"]),
            conv("s1", "e1", "we1", "be1"), conv("s1", "e3", "we3", "be3", pads=[1, 1, 1, 1]),
            helper.make_node("Concat", ["e1", "e3"], ["cat"], axis=1),
            helper.make_node("Concat", ["cat", "cat", "cat"], ["cat2"], axis=2), conv("cat2", "y", "wo")]
    out.append(("concat_channels_and_height", model(fire, [1, 6, 7, 9], [w("ws", 4, 6, 1, 1), w("bs", 4),
                                                                         w("we1", 5, 4, 1, 1), w("be1", 5),
                                                                         w("we3", 3, 4, 3, 3), w("be3", 3),
                                                                         w("wo", 2, 8, 1, 1)]),
                [1, 6, 7, 9], 1))
    # Softmax over channels is not XNNPACK's here: two regions around it; "c1" is both an
    # inner value of the first region and a graph output.
    split = [conv("x", "c1", "w1", "b1", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c1"], ["r1"]),
             conv("r1", "c2", "w2"), helper.make_node("Softmax", ["c2"], ["s"], axis=1),
             conv("s", "c3", "w3", "b3", pads=[1, 1, 1, 1]), helper.make_node("Add", ["c3", "s"], ["y"])]
    out.append(("split_by_softmax", model(split, [1, 3, 10, 10], [w("w1", 6, 3, 3, 3), w("b1", 6), w("w2", 6, 6, 1, 1),
                                                                   w("w3", 6, 6, 3, 3), w("b3", 6)],
                                          outputs=("y", "c1")), [1, 3, 10, 10], 2))
    return out


def xnnpack_steps(crun, path, threads):
    res = subprocess.run([crun, "info", path, "--nodes", "--backend", "xnnpack", "--threads", str(threads)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return sum(1 for line in res.stdout.splitlines() if " xnnpack " in line)


def main():
    args = mt.main_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, m, shape, regions in cases():
            path = os.path.join(tmp, name + ".onnx")
            with open(path, "wb") as f:
                f.write(m.SerializeToString())
            x = {"x": RNG.standard_normal(shape).astype(np.float32)}
            try:
                want = mt.run_crun(args.crun, path, x, threads=1)
                for threads in (1, 2):
                    got = mt.run_crun(args.crun, path, x, threads=threads, extra=["--backend", "xnnpack"])
                    assert sorted(got) == sorted(want), "%s: outputs %s, expected %s" % (name, sorted(got), sorted(want))
                    for out in want:
                        mt.compare("%s/%s (%d threads)" % (name, out, threads), got[out], want[out], rtol=1e-4, atol=1e-5)
                    n = xnnpack_steps(args.crun, path, threads)
                    assert n == regions, "%s: %d XNNPACK steps planned, expected %d" % (name, n, regions)
                print("ok   %s (%d region%s)" % (name, regions, "s" if regions > 1 else ""))
            except AssertionError as e:
                failures.append(str(e))
                print("FAIL %s" % e)
        # auto and the environment variable, on the SE model.
        path = os.path.join(tmp, "se_block_residual.onnx")
        x = {"x": RNG.standard_normal([2, 4, 6, 5]).astype(np.float32)}
        want = mt.run_crun(args.crun, path, x, threads=1)
        got = mt.run_crun(args.crun, path, x, threads=1, extra=["--backend", "auto"])
        mt.compare("auto", got["y"], want["y"], rtol=1e-4, atol=1e-5)
        env = dict(os.environ, CRUN_BACKEND="xnnpack")
        res = subprocess.run([args.crun, "info", path, "--nodes"], capture_output=True, text=True, env=env)
        if res.returncode != 0 or " xnnpack " not in res.stdout:
            failures.append("CRUN_BACKEND=xnnpack did not plan an XNNPACK region: %s" % res.stderr)
        env["CRUN_BACKEND"] = "gpu"
        res = subprocess.run([args.crun, path], capture_output=True, text=True, env=env)
        if res.returncode != 2 or "CRUN_BACKEND" not in res.stderr:
            failures.append("CRUN_BACKEND=gpu: exit %d, %s" % (res.returncode, res.stderr.strip()))
        res = subprocess.run([args.crun, path, "--backend", "gpu"], capture_output=True, text=True)
        if res.returncode != 2 or "unknown backend" not in res.stderr:
            failures.append("--backend gpu: exit %d, %s" % (res.returncode, res.stderr.strip()))
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("all XNNPACK cases match the native kernels")


if __name__ == "__main__":
    main()
