#!/usr/bin/env python3
"""Runs the guides' code blocks so the docs cannot rot: in each guide, in order, every
```sh block (bash -e), ```python block and ```c FILE block (written to FILE), in one
scratch directory per guide where demo/ is the repository's demo folder, the build's
crun is on PATH, the build is installed into a scratch prefix (pkg-config, the linker and
the loader find it) and the Python package finds the build's libcrun. ```text blocks are
not run.

    docs/check.py --build build
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BLOCK = re.compile(r"^```(\w+)[ \t]*(\S*)\n(.*?)^```", re.S | re.M)


def environment(build, prefix):
    libdir = os.path.dirname(glob.glob(os.path.join(prefix, "**", "libcrun.so"), recursive=True)[0])
    pc = os.path.dirname(glob.glob(os.path.join(prefix, "**", "crun.pc"), recursive=True)[0])
    env = dict(os.environ)
    env["PATH"] = build + os.pathsep + env.get("PATH", "")
    env["PKG_CONFIG_PATH"] = pc
    env["LD_LIBRARY_PATH"] = libdir
    env["CRUN_LIBRARY"] = os.path.join(build, "libcrun.so")
    env["PYTHONPATH"] = os.path.join(ROOT, "python")
    return env


def run_guide(path, env):
    failures, ran = [], 0
    text = open(path).read()
    with tempfile.TemporaryDirectory() as work:
        os.symlink(os.path.join(ROOT, "demo"), os.path.join(work, "demo"))
        for m in BLOCK.finditer(text):
            lang, arg, code = m.group(1), m.group(2), m.group(3)
            line = text[:m.start()].count("\n") + 1
            if lang == "c" and arg:
                with open(os.path.join(work, arg), "w") as f:
                    f.write(code)
                continue
            if lang == "sh":
                cmd = ["bash", "-e", "-o", "pipefail", "-c", code]
            elif lang == "python":
                cmd = [sys.executable, "-c", code]
            else:
                continue
            ran += 1
            res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                failures.append("%s:%d (%s block) exited %d:\n%s%s" % (
                    os.path.basename(path), line, lang, res.returncode, res.stdout[-1500:], res.stderr[-1500:]))
    return failures, ran


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    args = p.parse_args()
    build = os.path.abspath(args.build)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "prefix")
        subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True, capture_output=True)
        env = environment(build, prefix)
        for guide in sorted(glob.glob(os.path.join(HERE, "*.md"))):
            f, ran = run_guide(guide, env)
            print("%s %s (%d blocks run)" % ("ok  " if not f else "FAIL", os.path.basename(guide), ran))
            failures += f
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
