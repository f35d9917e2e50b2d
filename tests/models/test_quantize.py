"""`crun quantize` and `crun convert --fp16` on a trained model and real data: the demo's
Fashion-MNIST CNN (trained by demo/train_fashion.py on Debian's dataset-fashion-mnist),
calibrated on 200 training images, must keep its test accuracy within one point of float
on all 10,000 test images with minmax and with entropy calibration; the int8 file must be
at most 0.3x the float one; the integer kernels must be what runs; and ONNX Runtime must
run the same QDQ file and agree with crun's predictions. The float16 file must be at most
0.55x the float one and keep the accuracy within 0.2 points. Weight-only 4-bit (--int4)
must keep it within a point at most 0.25x the file, with ONNX Runtime's scores."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "demo", "fashion_mnist.onnx")


def accuracy(crun, model, x, y):
    scores = mt.run_crun(crun, model, {"image": x}, threads=2)["scores"]
    return float((scores.argmax(1) == y).mean()), scores.argmax(1)


def check_int4(args, tmp, x_test, y_test, float_acc, failures):
    """Weight-only 4-bit (--int4): the fully connected layers' weights become MatMulNBits
    blocks; the accuracy stays within a point, the weights shrink to ~4.6 bits, and ONNX
    Runtime computes the same scores."""
    out = os.path.join(tmp, "fm.int4.onnx")
    res = subprocess.run([args.crun, "quantize", MODEL, "-o", out, "--int4"], capture_output=True, text=True)
    if res.returncode != 0:
        failures.append("quantize --int4 failed: " + res.stderr.strip())
        return
    ratio = os.path.getsize(out) / os.path.getsize(MODEL)
    acc, pred = accuracy(args.crun, out, x_test, y_test)
    ours = mt.run_crun(args.crun, out, {"image": x_test[:2000]}, threads=2)["scores"]
    theirs = mt.run_ort(out, {"image": x_test[:2000]})["scores"]
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    print("int4 weights: test accuracy %.4f (float %.4f), file %.2fx, ONNX Runtime agrees on %.2f%%"
          % (acc, float_acc, ratio, 100 * agree))
    if abs(acc - float_acc) > 0.01 or ratio > 0.25 or agree < 0.999:
        failures.append("int4: accuracy %.4f, file %.2fx, ORT agreement %.4f" % (acc, ratio, agree))
    try:
        mt.compare("int4 scores vs ONNX Runtime", ours, theirs)
    except AssertionError as e:
        failures.append(str(e))


def main():
    args = mt.main_args()
    x_test = (mt.fashion_mnist("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255)[:, None]
    y_test = mt.fashion_mnist("t10k-labels-idx1-ubyte.gz")
    x_train = (mt.fashion_mnist("train-images-idx3-ubyte.gz")[:200].astype(np.float32) / 255)[:, None]
    float_acc, _ = accuracy(args.crun, MODEL, x_test, y_test)
    print("float: test accuracy %.4f" % float_acc)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        calib = os.path.join(tmp, "calib")
        os.makedirs(calib)
        for i, img in enumerate(x_train):
            np.save(os.path.join(calib, "%04d.npy" % i), img[None])
        for method in ("minmax", "entropy"):
            out = os.path.join(tmp, "fm.%s.onnx" % method)
            res = subprocess.run([args.crun, "quantize", MODEL, "-o", out, "--calib", calib, "--method", method],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                failures.append("quantize --method %s failed: %s" % (method, res.stderr.strip()))
                continue
            ratio = os.path.getsize(out) / os.path.getsize(MODEL)
            acc, pred = accuracy(args.crun, out, x_test, y_test)
            prof = subprocess.run([args.crun, "profile", out, "--runs", "1"], capture_output=True, text=True).stdout
            n_int = prof.count("QLinearConv") + prof.count("QLinearMatMul")
            print("%s: test accuracy %.4f (float %.4f), file %.2fx, %d integer conv/matmul steps"
                  % (method, acc, float_acc, ratio, n_int))
            if abs(acc - float_acc) > 0.01:
                failures.append("%s: accuracy %.4f vs float %.4f" % (method, acc, float_acc))
            if ratio > 0.3:
                failures.append("%s: file %.2fx the float one" % (method, ratio))
            if n_int < 4:
                failures.append("%s: only %d integer conv/matmul steps:\n%s" % (method, n_int, prof))
            if method == "minmax":
                ort = mt.run_ort(out, {"image": x_test[:2000]})["scores"].argmax(1)
                agree = float((ort == pred[:2000]).mean())
                ort_acc = float((ort == y_test[:2000]).mean())
                our_acc = float((pred[:2000] == y_test[:2000]).mean())
                # crun's sums are exact everywhere; ONNX Runtime's saturate on x86 without VNNI
                bar = 0.97 if mt.ort_int8_saturates() else 0.99
                print("minmax: ONNX Runtime agrees with crun on %.2f%% of 2000 images (bar %.0f%%), "
                      "accuracy %.4f vs crun's %.4f" % (100 * agree, 100 * bar, ort_acc, our_acc))
                if agree < bar or abs(ort_acc - our_acc) > 0.01:
                    failures.append("ONNX Runtime agrees on only %.4f (accuracy %.4f)" % (agree, ort_acc))
        out = os.path.join(tmp, "fm.fp16.onnx")
        res = subprocess.run([args.crun, "convert", "--fp16", MODEL, "-o", out], capture_output=True, text=True)
        if res.returncode != 0:
            failures.append("convert --fp16 failed: " + res.stderr.strip())
        else:
            ratio = os.path.getsize(out) / os.path.getsize(MODEL)
            acc, pred = accuracy(args.crun, out, x_test, y_test)
            ort = mt.run_ort(out, {"image": x_test[:2000]})["scores"].argmax(1)
            agree = float((ort == pred[:2000]).mean())
            print("fp16: test accuracy %.4f (float %.4f), file %.2fx, ONNX Runtime agrees on %.2f%%"
                  % (acc, float_acc, ratio, 100 * agree))
            if abs(acc - float_acc) > 0.002 or ratio > 0.55 or agree < 0.995:
                failures.append("fp16: accuracy %.4f, file %.2fx, ORT agreement %.4f" % (acc, ratio, agree))
        check_int4(args, tmp, x_test, y_test, float_acc, failures)
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
