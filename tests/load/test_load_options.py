"""Refused options: exit status 2 and a message that says what is wrong."""
import subprocess
import sys

from loadlib import expect

spindle = sys.argv[1]
U = "http://127.0.0.1:9/"

CASES = [
    ([], "no URL"),
    ([U, "-c"], "needs a value"),
    ([U, "-c", "0"], "-c wants"),
    ([U, "-c", "ten"], "-c wants"),
    ([U, "-c", "10x"], "-c wants"),
    ([U, "-d", "10 parsecs"], "-d wants"),
    ([U, "-d", "-5s"], "-d wants"),
    ([U, "-d", "0s"], "-d wants"),
    ([U, "-n", "0"], "-n wants"),
    ([U, "-n", "-3"], "-n wants"),
    ([U, "-t", "0"], "--threads wants"),
    ([U, "-c", "2", "-t", "4"], "each thread needs one"),
    ([U, "-R", "0"], "--rate wants"),
    ([U, "--rate=fast"], "--rate wants"),
    ([U, "--timeout", "soon"], "--timeout wants"),
    ([U, "--warmup", "x"], "--warmup wants"),
    ([U, "--src-addrs", "0"], "--src-addrs wants"),
    (["http://[::1]:9/", "--src-addrs", "3"], "IPv4"),
    ([U, "-H", "NoColon"], "-H wants"),
    ([U, "-H", "Bad Name: v"], "-H wants"),
    ([U, "-m", "GE T"], "--method wants"),
    ([U, "--frobnicate"], "unknown option '--frobnicate'"),
    ([U, U], "one URL only"),
    (["http://10.1.2.3/"], "loopback"),
    (["http://example.com/"], "loopback"),
    (["https://127.0.0.1/"], "https is not supported"),
    (["127.0.0.1:80"], "not an http:// URL"),
]

for args, want in CASES:
    p = subprocess.run([spindle, "load", *args], capture_output=True, text=True, timeout=10)
    expect(p.returncode == 2 and want in p.stderr,
           f"spindle load {' '.join(args)!s}: exit 2 and '{want}' "
           f"(got {p.returncode}: {p.stderr.strip()!r})")

p = subprocess.run([spindle, "load", "--help"], capture_output=True, text=True, timeout=10)
expect(p.returncode == 0 and "--no-keepalive" in p.stdout, "--help: exit 0 and the options")
print("PASS")
