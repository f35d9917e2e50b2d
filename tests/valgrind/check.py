"""Runs the crun command line under valgrind memcheck over a set of models and inputs and
fails on any invalid access, use of uninitialised memory or leak (definite or indirect).

The set covers each subsystem a run goes through: the demo model (load, fold, plan, run,
--output-dir, --top), `crun info --nodes`, conformance cases of control flow, sequences,
strings, RNNs, quantized ops, resize, NMS and random ops, and malformed models (error
paths must free what they took).

    check.py --crun build/crun [--data /usr/share/libonnx-testdata/data]"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = ["test_if", "test_loop11", "test_scan9_sum", "test_sequence_map_*", "test_sequence_insert_at_back",
         "test_strnormalizer_*", "test_lstm_with_peepholes", "test_gru_seq_length", "test_qlinearconv",
         "test_qlinearmatmul_3D", "test_resize_downsample_scales_cubic", "test_nonmaxsuppression_two_batches",
         "test_training_dropout_mask", "test_convtranspose_3d", "test_einsum_batch_matmul", "test_topk",
         "test_unique_sorted_with_axis", "test_nonzero_example", "test_stft", "test_optional_get_element_sequence"]
MALFORMED = ["empty_file", "init_bad_dtype", "cycle_two_nodes", "dim_product_overflow", "external_parent_dir",
             "external_too_short", "if_missing_branch", "init_data_short", "conv_huge_pads", "duplicate_output"]


def memcheck(cmd, ok_codes):
    vg = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
          "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect"]
    res = subprocess.run(vg + cmd, capture_output=True, text=True)
    if res.returncode not in ok_codes:
        print("FAIL (exit %d): %s\n%s" % (res.returncode, " ".join(cmd), res.stderr[-3000:]))
        return False
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    p.add_argument("--data", default="/usr/share/libonnx-testdata/data")
    args = p.parse_args()
    crun = args.crun
    demo = os.path.join(ROOT, "demo", "fashion_mnist.onnx")
    image = sorted(glob.glob(os.path.join(ROOT, "demo", "images", "*")))[0]
    ok = True
    with tempfile.TemporaryDirectory() as out:
        runs = [
            ([crun, demo, "--input", "image=" + image, "--top", "3", "--output-dir", out, "--threads", "2"], (0,)),
            ([crun, "info", "--nodes", demo], (0,)),
            ([crun, "bench", demo, "--runs", "3", "--warmup", "1", "--json"], (0,)),
        ]
        cases = sorted(set(c for pat in CASES for c in glob.glob(os.path.join(args.data, "node", pat))))
        if len(cases) < len(CASES):
            sys.exit("valgrind check: conformance data missing under %s" % args.data)
        runs.append(([crun, "test"] + cases, (0,)))
        for name in MALFORMED:
            model = os.path.join(ROOT, "tests", "malformed", "cases", name, "model.onnx")
            if os.path.exists(model):
                runs.append(([crun, model], (2,)))
        for cmd, codes in runs:
            ok = memcheck(cmd, codes) and ok
    print("valgrind: %d runs, %s" % (len(runs), "clean" if ok else "ERRORS"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
