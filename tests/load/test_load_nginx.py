"""End to end against nginx-light: spindle load completes with no errors
with and without keep-alive, -n counts exactly, --rate never runs ahead
of its schedule, several threads work.  Skipped (77) when nginx is not installed."""
import sys

from loadlib import Nginx, expect, run_load

spindle = sys.argv[1]

with Nginx() as ng:
    url = ng.url()

    rc, r, err = run_load(spindle, url, "-c", "20", "-d", "2s")
    expect(rc == 0 and r["errors"] == 0 and r["requests"] > 0,
           f"keep-alive, 20 connections, 2 s: no errors ({r and r['requests']} requests, "
           f"rc {rc}, {err.strip()})")
    expect(r["keepalive"] is True and r["bytes"] > 0 and r["p50_us"] > 0
           and r["p50_us"] <= r["p99_us"] <= r["max_us"],
           f"the JSON has the fields BENCH.md names, in order (p50 {r['p50_us']}, "
           f"p99 {r['p99_us']}, max {r['max_us']})")

    rc, r, err = run_load(spindle, url, "-c", "10", "-d", "2s", "--no-keepalive")
    expect(rc == 0 and r["errors"] == 0 and r["requests"] > 0 and r["keepalive"] is False,
           f"a connection per request, 10 connections, 2 s: no errors "
           f"({r and r['requests']} requests, {err.strip()})")

    for extra in ([], ["--no-keepalive"], ["-t", "2"]):
        rc, r, err = run_load(spindle, url, "-c", "13", "-n", "5001", *extra)
        expect(rc == 0 and r["requests"] == 5001 and r["errors"] == 0,
               f"-n 5001 {' '.join(extra)}: exactly 5001 requests "
               f"(got {r and r['requests']}, {r and r['errors']} errors)")

    # The schedule bounds the open loop from above whatever the machine does
    # (slot s is due at s / rate, never earlier); a stall only makes the
    # late requests go at once, so the lower bounds are loose on purpose: a
    # busy CI machine must not fail a correct rate limiter.
    rc, r, err = run_load(spindle, url, "-c", "10", "-R", "2000", "-d", "3s")
    expect(rc == 0 and r["errors"] == 0 and r["requests"] <= 3 * 2000 + 10
           and r["rps"] >= 1000,
           f"--rate 2000 for 3 s: at most the 6,000 scheduled requests, and some "
           f"(got {r and r['requests']}, {r and r['rps']:.0f}/s)")

    rc, r, err = run_load(spindle, url, "-c", "10", "-R", "1000", "-n", "1500",
                          "--no-keepalive")
    expect(rc == 0 and r["requests"] == 1500 and 1.49 <= r["duration_s"] <= 10,
           f"--rate 1000 -n 1500: 1500 requests, not sooner than their schedule "
           f"(1.5 s; got {r and r['requests']} in {r and r['duration_s']} s)")

    for extra in ([], ["--no-keepalive"]):
        rc, r, err = run_load(spindle, url, "-c", "8", "-n", "2000", "--src-addrs", "4", *extra)
        expect(rc == 0 and r["errors"] == 0 and r["requests"] == 2000 and r["src_addrs"] == 4
               and "127.0.0.4" in err,
               f"--src-addrs 4 {' '.join(extra)}: bound sources work and are reported "
               f"({r and r['errors']} errors, {err.strip()})")

    rc, r, err = run_load(spindle, url, "-c", "4", "-t", "2", "-d", "1s", "-m", "HEAD")
    expect(rc == 0 and r["errors"] == 0 and r["threads"] == 2,
           "two threads, HEAD requests: no errors")
print("PASS")
