"""spindle load against wrk (keep-alive) and ab (-n, a connection per
request) where the server is the bottleneck: `spindle serve --model coro`
answering /sleep?ms=50, so 20 connections can make at most 400 requests/s
whoever drives them.  Every tool should then measure the same rate, so ours
must be within 10% of each peer's.  This checks that we count and time
requests as they do; it is not a benchmark.

The server is ours but the clients compared are not: a coroutine server's
sleep costs it no CPU, so a busy CI machine moves every client alike.  (A
threaded Python server was tried first: its thread wake-ups moved one
client's figure by 6% against the other's on the same machine.)  The
delay is long so that what the machine adds to each request is a few
percent of it; a pair that still differs is measured once more (both
tools again) before it fails, because one stall of the machine moves one
run, while a counting or timing error moves both.  Hard bounds come first:
no tool can beat 20 / 50 ms, and no request is faster than 50 ms.  Skipped
(77) when wrk and ab are both missing; one missing peer is skipped with a
line."""
import re
import shutil
import subprocess
import sys

from loadlib import Serve, expect, run_load, skip

spindle = sys.argv[1]
DELAY = 0.050
CONNS = 20
CEILING = CONNS / DELAY   # 400 requests/s


def agree(pair, what):
    """pair() -> (ours, theirs); within 10%, trying a second time."""
    for attempt in (1, 2):
        ours, theirs = pair()
        ratio = ours / theirs if theirs else 0
        if 0.9 <= ratio <= 1.1 or attempt == 2:
            break
        print(f"note: {what}: {ours:.1f}/s vs {theirs:.1f}/s ({ratio:.3f}); measuring again")
    expect(0.9 <= ratio <= 1.1,
           f"{what}: spindle load {ours:.1f}/s vs {theirs:.1f}/s, ratio {ratio:.3f} within 10%")


wrk = shutil.which("wrk")
ab = shutil.which("ab")
if not wrk and not ab:
    skip("neither wrk nor ab is installed (apt-get install wrk apache2-utils)")

with Serve(spindle) as srv:
    url = srv.url(f"/sleep?ms={int(DELAY * 1000)}")
    if wrk:
        def keepalive():
            out = subprocess.run([wrk, "-t1", f"-c{CONNS}", "-d3s", url], capture_output=True,
                                 text=True, timeout=60).stdout
            m = re.search(r"Requests/sec:\s+([\d.]+)", out)
            expect(m is not None, f"wrk printed a rate ({out.strip()[-200:]!r})")
            rc, r, err = run_load(spindle, url, "-c", str(CONNS), "-d", "3s")
            expect(rc == 0 and r["errors"] == 0, f"keep-alive run without errors ({err.strip()})")
            expect(r["rps"] <= CEILING * 1.01 and r["p50_us"] >= DELAY * 1e6 * 0.99,
                   f"keep-alive: under the server's ceiling ({r['rps']:.1f}/s) and no "
                   f"request faster than its delay (p50 {r['p50_us']} us)")
            return r["rps"], float(m.group(1))
        agree(keepalive, "keep-alive vs wrk")
    else:
        print("SKIP: wrk is not installed (apt-get install wrk)")
    if ab:
        n = 800
        def per_request():
            out = subprocess.run([ab, "-q", "-c", str(CONNS), "-n", str(n), url],
                                 capture_output=True, text=True, timeout=60).stdout
            m = re.search(r"Requests per second:\s+([\d.]+)", out)
            expect(m is not None, f"ab printed a rate ({out.strip()[-200:]!r})")
            rc, r, err = run_load(spindle, url, "-c", str(CONNS), "-n", str(n), "--no-keepalive")
            expect(rc == 0 and r["errors"] == 0 and r["requests"] == n,
                   f"a connection per request: {n} requests, no errors ({err.strip()})")
            expect(r["rps"] <= CEILING * 1.01 and r["p50_us"] >= DELAY * 1e6 * 0.99,
                   f"a connection per request: under the ceiling ({r['rps']:.1f}/s), "
                   f"p50 {r['p50_us']} us")
            return r["rps"], float(m.group(1))
        agree(per_request, "a connection per request vs ab -n")
    else:
        print("SKIP: ab is not installed (apt-get install apache2-utils)")
print("PASS")
