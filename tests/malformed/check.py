#!/usr/bin/env python3
"""Runs `crun` on every case of the malformed corpus (made by make_corpus.py) and checks it
ends with exit code 2 and ONE line `crun: error: ...` mentioning what the manifest says,
within a time limit and a memory cap, with no sanitizer report. A crash, a hang, exit 0/1
or a vague message fails the check.

    check.py --crun build/crun
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def cases():
    with open(os.path.join(HERE, "cases.txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, expect, args = [p.strip() for p in line.rstrip("\n").split("|")]
            yield name, expect, args.split()


def rewrite_checks(args, name, d):
    """`crun quantize` and `crun convert --fp16` read the same hostile models: they must
    end with 0, 1 or 2 (never a crash or a hang) and, when they fail, say so in one line."""
    out = []
    for sub in (["quantize", "--calib-random", "1"], ["convert", "--fp16"]):
        target = os.path.join(d, "rewritten.onnx")
        cmd = [args.crun, sub[0], os.path.join(d, "model.onnx"), "-o", target] + sub[1:]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=d)
        except subprocess.TimeoutExpired:
            out.append("%s: %s gave no answer within %.0f s" % (name, sub[0], args.timeout))
            continue
        finally:
            if os.path.exists(target):
                os.remove(target)
        lines = res.stderr.strip().splitlines()
        if res.returncode not in (0, 1, 2):
            out.append("%s: %s ended with %d: %s" % (name, sub[0], res.returncode, res.stderr.strip()[:300]))
        elif res.returncode and (len(lines) != 1 or not lines[0].startswith("crun: error: ")):
            out.append("%s: %s stderr is not one 'crun: error:' line: %r" % (name, sub[0], res.stderr[:300]))
        if "Sanitizer" in res.stderr or "runtime error" in res.stderr:
            out.append("%s: %s sanitizer report: %s" % (name, sub[0], res.stderr[:300]))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--crun", required=True)
    p.add_argument("--timeout", type=float, default=30)
    args = p.parse_args()
    args.crun = os.path.abspath(args.crun)
    failures, n = [], 0
    for name, expect, extra in cases():
        n += 1
        d = os.path.join(HERE, "cases", name)
        allow_success = "--allow-success" in extra
        extra = [a for a in extra if a != "--allow-success"]
        inp = [f for f in os.listdir(d) if f.startswith("in.")]
        extra = [a.replace("INPUT", os.path.join(d, inp[0]) if inp else "INPUT") for a in extra]
        if "--max-memory" not in extra:
            extra += ["--max-memory", "512M"]
        cmd = [args.crun, os.path.join(d, "model.onnx")] + extra
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=d)
        except subprocess.TimeoutExpired:
            failures.append("%s: no answer within %.0f s (a hang)" % (name, args.timeout))
            continue
        lines = res.stderr.strip().splitlines()
        if res.returncode == 0 and allow_success:
            continue
        if res.returncode != 2:
            failures.append("%s: exit %d, expected 2: %s" % (name, res.returncode, res.stderr.strip()[:300]))
        elif len(lines) != 1 or not lines[0].startswith("crun: error: "):
            failures.append("%s: stderr is not one 'crun: error:' line: %r" % (name, res.stderr[:300]))
        elif expect and expect not in lines[0]:
            failures.append("%s: message %r does not mention %r" % (name, lines[0], expect))
        if "Sanitizer" in res.stderr or "runtime error" in res.stderr:
            failures.append("%s: sanitizer report: %s" % (name, res.stderr[:300]))
        failures += rewrite_checks(args, name, d)
    for f in failures:
        print("FAIL", f)
    print("malformed corpus: %d of %d cases handled as expected" % (n - len(failures), n))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
