"""Runs the ONNX backend conformance suite (Debian's libonnx-testdata) through `crun test`
and holds it to tests/conformance/EXPECTED_FAILURES: a case failing that is not listed
fails the check, and so does a listed case that now passes (the list must stay true).

    check.py --crun build/crun [--data /usr/share/libonnx-testdata/data] [--update]

--update rewrites the list from this run (each failing case with crun's reason)."""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LIST = os.path.join(HERE, "EXPECTED_FAILURES")


# Cases no correct implementation can pass, with why (used by --update instead of crun's
# message). RANDOM cases compare random draws: they may pass by chance, so passing is fine.
KNOWN = {
    "test_bernoulli": "RANDOM: the reference draws from numpy's global generator and ignores the seed "
                      "(crun's seeded Bernoulli equals numpy's binomial for that seed)",
    "test_cast_FLOAT_to_BFLOAT16": "DATA: the expected bfloat16 values are truncated; ONNX specifies rounding "
                                   "to nearest even, which crun does",
    "test_castlike_BFLOAT16_to_FLOAT": "DATA: input 'like' is stored with rank 1 but the model declares rank 2",
    "test_castlike_FLOAT_to_BFLOAT16": "DATA: input 'like' is stored with rank 1 but the model declares rank 2",
    "test_adam_multiple": "DATA: the expected values were made with an epsilon the node does not set "
                          "(crun uses the node's default, as the spec says)",
    "test_gradient_of_add": "TRAINING: ai.onnx.preview.training Gradient needs autodiff; the issue excludes "
                            "the two training-domain cases",
}


def known(name):
    """KNOWN's entry for name (entries also cover _expanded and other suffixed forms)."""
    for prefix, why in KNOWN.items():
        if name == prefix or name.startswith(prefix + "_"):
            return why
    return None


def read_list():
    expected = {}
    with open(LIST) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                expected[name] = reason.strip()
    return expected


def short_reason(verdict, reason):
    """A stable one-line reason: drop the model path crun prefixes to messages."""
    if ".onnx: " in reason:
        reason = reason.split(".onnx: ", 1)[1]
    return "%s: %s" % (verdict, reason[:160])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    p.add_argument("--data", default="/usr/share/libonnx-testdata/data")
    p.add_argument("--update", action="store_true")
    args = p.parse_args()
    # The 1,072 cases of the suite; data/real (whole downloaded zoo models) is left out.
    dirs = [os.path.join(args.data, d) for d in ("node", "pytorch-converted", "pytorch-operator", "simple")]
    res = subprocess.run([args.crun, "test"] + dirs, capture_output=True, text=True)
    if res.returncode not in (0, 1):
        sys.exit("crun test failed to run: " + res.stderr)
    results = {}
    for line in res.stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        if verdict in ("PASS", "FAIL", "ERROR", "SKIP"):
            name, _, reason = rest.partition(" ")
            results[name] = (verdict, reason)
    not_passing = {n: short_reason(v, r) for n, (v, r) in results.items() if v != "PASS"}
    print(res.stdout.splitlines()[-1] if res.stdout else "no output")
    print("conformance: %d of %d cases pass" % (len(results) - len(not_passing), len(results)))
    if args.update:
        with open(LIST, "w") as f:
            f.write("# Conformance cases (libonnx-testdata) crun does not pass yet, with the reason.\n"
                    "# CI fails when a case outside this list fails, or a listed case passes.\n"
                    "# Regenerate with: tests/conformance/check.py --crun build/crun --update\n")
            for name in sorted(not_passing):
                f.write("%s %s\n" % (name, known(name) or not_passing[name]))
        print("wrote %s (%d entries)" % (LIST, len(not_passing)))
        return
    expected = read_list()
    new_failures = sorted(set(not_passing) - set(expected))
    now_passing = sorted(n for n in expected if n in results and results[n][0] == "PASS" and
                         not expected[n].startswith("RANDOM"))
    missing = sorted(n for n in expected if n not in results)
    for n in new_failures:
        print("NEW FAILURE %s %s" % (n, not_passing[n]))
    for n in now_passing:
        print("NOW PASSING %s (remove it from EXPECTED_FAILURES)" % n)
    for n in missing:
        print("NOT FOUND %s (listed but not in the suite)" % n)
    if new_failures or now_passing or missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
