#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection: spindle's models and nginx.

usage: scripts/idle-rss.py [-n N] [-b BINARY] [SERVER ...]

SERVER is `nginx` or a model name, optionally `model@binary` to compare two
builds (default: nginx epoll stackless coro mn uring).  Each server is
started on CPU 0 (nginx: one worker, tests/load/loadlib.py's configuration;
spindle: `serve --model M` with a 10-minute idle timeout), then N
connections each send one keep-alive request, read its answer and stay
open.  It prints the growth of the resident set of the server's processes
(all of them: nginx's master and worker, a reuseport parent and its shards)
divided by N: what an idle connection costs the server, buffers, stacks
and kernel-visible user memory included.
"""
import argparse
import os
import resource
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "load"))
import loadlib  # noqa: E402

REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BODY = b"Hello, World!\n"


def die(msg):
    print("idle-rss: " + msg, file=sys.stderr)
    sys.exit(2)


def tree_rss_kib(pid):
    """VmRSS of pid and its descendants, KiB."""
    total = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
        kids = []
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                kids += [int(x) for x in f.read().split()]
    except (OSError, StopIteration):
        return total
    return total + sum(tree_rss_kib(k) for k in kids)


def hold(port, n):
    """n connections, each served one request, left open."""
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(REQ)
        got = b""
        while not got.endswith(BODY):
            chunk = s.recv(4096)
            if not chunk:
                die("the server closed a connection after %d" % len(conns))
            got += chunk
        conns.append(s)
    return conns


def measure(pid, port, n):
    time.sleep(0.3)
    before = tree_rss_kib(pid)
    conns = hold(port, n)
    time.sleep(0.5)
    after = tree_rss_kib(pid)
    for s in conns:
        s.close()
    return (after - before) * 1024.0 / n


def spindle(binary, model, n):
    with loadlib.Serve(binary, model, args=["--idle-timeout-ms", "600000"], cpu=0) as sv:
        return measure(sv.proc.pid, sv.port, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10000, help="idle connections (default 10000)")
    ap.add_argument("-b", default=os.path.join(HERE, "..", "build", "tools", "spindle"))
    ap.add_argument("servers", nargs="*",
                    default=["nginx", "epoll", "stackless", "coro", "mn", "uring"])
    a = ap.parse_args()
    if a.n < 1:
        die("-n must be at least 1")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < a.n + 100:
        die("-n %d needs %d descriptors; the hard limit is %d" % (a.n, a.n + 100, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print("%-28s %12s" % ("server (%d idle connections)" % a.n, "bytes/conn"))
    for spec in a.servers:
        if spec == "nginx":
            with loadlib.Nginx(cpu=0) as ng:
                per = measure(ng.proc.pid, ng.port, a.n)
        else:
            model, _, binary = spec.partition("@")
            binary = binary or a.b
            if not os.access(binary, os.X_OK):
                die("no spindle binary at %s (scripts/build.sh build)" % binary)
            per = spindle(binary, model, a.n)
        print("%-28s %12.0f" % (spec, per), flush=True)


if __name__ == "__main__":
    main()
