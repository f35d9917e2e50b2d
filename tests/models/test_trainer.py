"""`crun train` on real data, checked by ONNX Runtime: the Fashion-MNIST CNN of the
trainer benchmark trained for one float and one QAT epoch on 12,000 training images;
ONNX Runtime must load both exports and give crun's float logits (within float
tolerance) and crun's int8 predictions (at least 99% the same class; the two runtimes
round a few values differently) on 2,000 test images, and crun must run the int8 export
exactly as the trainer computed it (`--check`)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import modeltest as mt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, "trainer", "specs", "fashion_cnn.txt")


def main():
    args = mt.main_args()
    x = (mt.fashion_mnist("t10k-images-idx3-ubyte.gz")[:2000].astype(np.float32) / 255)[:, None]
    with tempfile.TemporaryDirectory() as tmp:
        fp, q8 = os.path.join(tmp, "f.onnx"), os.path.join(tmp, "q.onnx")
        mt.progress("training 1 + 1 QAT epochs on 12,000 images ...")
        res = subprocess.run([args.crun, "train", SPEC, "--epochs", "1", "--qat", "1", "--limit", "12000",
                              "--test-limit", "2000", "--lr", "0.03", "--threads", "2", "--export-float", fp,
                              "--export", q8, "--check"], capture_output=True, text=True)
        print(res.stdout, end="")
        assert res.returncode == 0, res.stderr
        result = dict(kv.split("=") for kv in res.stdout.splitlines()[-1][8:].split())
        assert result["agree"] == "2000/2000" and result["max_step"] == "0", result
        assert float(result["qat_int8_acc"]) > 0.8, result
        for model, exact in ((fp, True), (q8, False)):
            ours = mt.run_crun(args.crun, model, {"input": x}, threads=2)["output"]
            theirs = mt.run_ort(model, {"input": x})["output"]
            if exact:
                mt.compare("float export vs ONNX Runtime", ours, theirs)
            else:
                same = float((ours.argmax(1) == theirs.argmax(1)).mean())
                print("int8 export: crun and ONNX Runtime agree on %.2f%% of 2,000 images" % (100 * same))
                assert same >= 0.99, same
    print("ok")


if __name__ == "__main__":
    main()
