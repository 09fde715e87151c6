#!/usr/bin/env python3
"""`spindle serve`'s command line: --help lists every model of the table
(marking those not built), and each mistake is named and exits 2; a model
that is not built says so and exits 3.

usage: serve_cli.py SPINDLE_BINARY MODELS_C
"""
import re
import subprocess
import sys


def run(binary, *args):
    p = subprocess.run([binary, "serve"] + list(args), capture_output=True, text=True,
                       timeout=10)
    return p.returncode, p.stdout + p.stderr


def main():
    binary, models_c = sys.argv[1:3]
    names = re.findall(r'^\s*\{"([a-z0-9_]+)", &sp_model_', open(models_c).read(), re.M)
    failed = 0

    def check(cond, msg):
        nonlocal failed
        print(("ok: " if cond else "FAIL: ") + msg, flush=True)
        failed += not cond

    rc, out = run(binary, "--help")
    check(rc == 0 and all(re.search(r"^\s+%s\s" % n, out, re.M) for n in names),
          "--help lists the %d models of the table" % len(names))
    for args, word in [
        (["--model", "coro", "--port", "70000"], "--port"),
        (["--model", "coro", "--port", "12x"], "--port"),
        (["--model", "coro", "--workers", "0"], "--workers"),
        (["--model", "mn", "--workers", "0"], "--workers"),
        (["--model", "mn", "--workers", "two"], "--workers"),
        (["--model", "mn", "--workers", "2000"], "--workers"),
        (["--model", "coro", "--trigger", "sideways"], "--trigger"),
        (["--model", "coro", "--stack", "huge"], "--stack"),
        (["--model", "coro", "--ctx", "magic"], "--ctx"),
        (["--model", "coro", "--root", "/nonexistent/dir"], "--root"),
        (["--model", "coro", "--max-header-bytes", "1"], "--max-header-bytes"),
        (["--model", "coro", "--header-timeout-ms", "-5"], "--header-timeout-ms"),
        (["--model", "coro", "--frobnicate"], "--frobnicate"),
        (["--model", "coro", "--port"], "--port"),
        (["--model", "nosuchmodel"], "nosuchmodel"),
        (["--port", "0"], "--model"),
    ]:
        rc, out = run(binary, *args)
        check(rc == 2 and word in out, "%s: exit %d naming %s" % (" ".join(args), rc, word))
    # Every model --help marks as not built refuses plainly, with exit 3.
    rc, helptext = run(binary, "--help")
    for name in names:
        if not re.search(r"^\s+%s\s+\(not built" % name, helptext, re.M):
            continue
        rc, out = run(binary, "--model", name, "--port", "0")
        check(rc == 3 and "not built" in out,
              "--model %s: exit %d, says it is not built and what brings it" % (name, rc))
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
