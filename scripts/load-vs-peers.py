#!/usr/bin/env python3
"""spindle load against ApacheBench and wrk on one nginx, in one run.

usage: scripts/load-vs-peers.py [--spindle PATH] [--floor PATH] [--rounds N]
                                [--requests N] [--conc N] [--duration S]

nginx (one worker, `return 200`) runs on CPU 0 and every client on CPU 1,
in interleaved rounds:
  ab -c C -n N                      against  spindle load --no-keepalive
  wrk -c C -d S (keep-alive)        against  spindle load (keep-alive)
  conn_floor -c C -n N              the least a connection-per-request
                                    client can do (bench/conn_floor.c)
For each client it prints the median requests/s, its ratio to the peer's
median, the client's CPU (user and system, as a share of the wall time),
the client's CPU per request and nginx's CPU per request.  The last line says what one nginx worker could
serve at most without keep-alive: 1 / (its CPU seconds per request), the
ceiling every client meets on this set-up.

A connection per request costs the connecting side most of the kernel's
TCP work on loopback (the handshake and the teardown run in the sender's
softirq), so the client's system time, not its own code, is what limits
it; the figures say how much.
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "load"))
import loadlib  # noqa: E402  (nginx on a free port, one worker)


def die(msg):
    print("load-vs-peers: " + msg, file=sys.stderr)
    sys.exit(2)


def proc_cpu(pid):
    """User + system CPU seconds of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate_of(out):
    m = (re.search(r"Requests per second:\s+([\d.]+)", out)
         or re.search(r"Requests/sec:\s+([\d.]+)", out))
    return float(m.group(1)) if m else None


def run_client(cmd, worker):
    """(requests/s, client user share, client system share, nginx CPU s per
    request) of one client run."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    n0 = proc_cpu(worker)
    t0 = time.monotonic()
    p = subprocess.run(["taskset", "-c", "1"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    n1 = proc_cpu(worker)
    rps = rate_of(p.stdout)
    if p.returncode != 0 or rps is None:
        die("%s failed (status %d):\n%s%s" % (cmd[0], p.returncode, p.stdout[-1500:],
                                              p.stderr[-1500:]))
    served = rps * wall
    return (rps, (r1.ru_utime - r0.ru_utime) / wall, (r1.ru_stime - r0.ru_stime) / wall,
            (n1 - n0) / served if served else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spindle", default=os.path.join(HERE, "..", "build", "tools", "spindle"))
    ap.add_argument("--floor", default=os.path.join(HERE, "..", "build", "bench", "conn_floor"),
                    help="the conn_floor binary (skipped if absent)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=20000,
                    help="requests a run without keep-alive (ab -n)")
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--duration", type=int, default=3, help="seconds a keep-alive run")
    a = ap.parse_args()
    if a.rounds < 1 or a.requests < a.conc or a.conc < 1 or a.duration < 1:
        die("rounds, conc and duration must be at least 1, requests at least conc")
    for tool, pkg in (("ab", "apache2-utils"), ("wrk", "wrk"), ("taskset", "util-linux")):
        if not shutil.which(tool):
            die("%s is not installed (apt-get install %s)" % (tool, pkg))
    if not os.access(a.spindle, os.X_OK):
        die("no spindle binary at %s (build it: scripts/build.sh build)" % a.spindle)

    with loadlib.Nginx(cpu=0) as ng:
        kids = []
        for _ in range(50):  # the master forks its worker just after it listens
            kids = subprocess.run(["pgrep", "-P", str(ng.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
            if kids:
                break
            time.sleep(0.1)
        if not kids:
            die("nginx started no worker")
        worker = int(kids[0])
        url = ng.url("/")
        c, n, d = str(a.conc), str(a.requests), "%ds" % a.duration
        clients = [
            ("ab -n", ["ab", "-q", "-c", c, "-n", n, url]),
            ("spindle --no-keepalive", [a.spindle, "load", "-c", c, "-n", n, "--no-keepalive", url]),
            ("wrk", ["wrk", "-t", "1", "-c", c, "-d", d, url]),
            ("spindle keep-alive", [a.spindle, "load", "-c", c, "-d", d, url]),
        ]
        if os.access(a.floor, os.X_OK):
            clients.insert(2, ("conn_floor", [a.floor, str(ng.port), n, c]))
        runs = {name: [] for name, _ in clients}
        for r in range(a.rounds):
            for name, cmd in clients:
                runs[name].append(run_client(cmd, worker))
                time.sleep(1)  # let the loopback's TIME_WAIT sockets age a little
            print("round %d of %d done" % (r + 1, a.rounds), file=sys.stderr)

    med = {name: [statistics.median(x[i] for x in v) for i in range(4)]
           for name, v in runs.items()}
    peer = {"spindle --no-keepalive": "ab -n", "spindle keep-alive": "wrk"}
    print("%d rounds, %d connections, nginx on CPU 0, clients on CPU 1 (medians)"
          % (a.rounds, a.conc))
    print("%-24s %10s %9s %7s %7s %15s %14s" % ("client", "req/s", "vs peer", "user",
                                               "system", "client us/req", "nginx us/req"))
    for name, (rps, us, sy, ng_cpu) in med.items():
        ratio = "%.2fx" % (rps / med[peer[name]][0]) if name in peer else "-"
        print("%-24s %10.0f %9s %7.2f %7.2f %15.1f %14.1f"
              % (name, rps, ratio, us, sy, (us + sy) / rps * 1e6, ng_cpu * 1e6))
    closing = [med["ab -n"][3], med["spindle --no-keepalive"][3]]
    per_req = statistics.median(closing)
    if per_req > 0:
        print("nginx's ceiling without keep-alive on its one CPU: about %.0f req/s "
              "(1 / %.1f us)" % (1 / per_req, per_req * 1e6))


if __name__ == "__main__":
    main()
