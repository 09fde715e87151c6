"""spindle load against wrk (keep-alive) and ab (-n, a connection per
request) where the server is the bottleneck: a deliberately slow threaded
Python server that answers each request after 10 ms.  Every tool should then
measure the same rate, so ours must be within 10% of each peer's.  This
checks that we count and time requests as they do; it is not a benchmark
(the server, not the clients, sets the figure).  Skipped (77) when wrk and
ab are both missing; one missing peer is skipped with a line."""
import re
import shutil
import subprocess
import sys
import time

from loadlib import RawServer, expect, response, run_load, skip

spindle = sys.argv[1]
DELAY = 0.010
CONNS = 20   # 20 / 10 ms = at most 2,000 requests/s: light for Python


def slow(path, hdrs):
    time.sleep(DELAY)
    return response(b"Hello, World!\n")


def close_to(ours, theirs, what):
    ratio = ours / theirs if theirs else 0
    expect(0.9 <= ratio <= 1.1,
           f"{what}: spindle load {ours:.0f}/s vs {theirs:.0f}/s, ratio {ratio:.3f} "
           f"within 10%")


wrk = shutil.which("wrk")
ab = shutil.which("ab")
if not wrk and not ab:
    skip("neither wrk nor ab is installed (apt-get install wrk apache2-utils)")

with RawServer(slow) as srv:
    url = srv.url("/")
    if wrk:
        out = subprocess.run([wrk, "-t1", f"-c{CONNS}", "-d3s", url], capture_output=True,
                             text=True, timeout=60).stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        expect(m is not None, f"wrk printed a rate ({out.strip()[-200:]!r})")
        theirs = float(m.group(1))
        rc, r, err = run_load(spindle, url, "-c", str(CONNS), "-d", "3s")
        expect(rc == 0 and r["errors"] == 0, f"keep-alive run without errors ({err.strip()})")
        close_to(r["rps"], theirs, "keep-alive vs wrk")
    else:
        print("SKIP: wrk is not installed (apt-get install wrk)")
    if ab:
        n = 3000
        out = subprocess.run([ab, "-q", "-c", str(CONNS), "-n", str(n), url],
                             capture_output=True, text=True, timeout=60).stdout
        m = re.search(r"Requests per second:\s+([\d.]+)", out)
        expect(m is not None, f"ab printed a rate ({out.strip()[-200:]!r})")
        theirs = float(m.group(1))
        rc, r, err = run_load(spindle, url, "-c", str(CONNS), "-n", str(n), "--no-keepalive")
        expect(rc == 0 and r["errors"] == 0 and r["requests"] == n,
               f"a connection per request: {n} requests, no errors ({err.strip()})")
        close_to(r["rps"], theirs, "a connection per request vs ab -n")
    else:
        print("SKIP: ab is not installed (apt-get install apache2-utils)")
print("PASS")
