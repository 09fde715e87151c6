#!/usr/bin/env python3
"""Runs tests/hook/blocking_echo (a plain thread-per-connection server that
knows nothing of spindle) under `spindle run --hook` and drives it with
real sockets.

  coroutines N   --threads-as-coroutines: N connections open at once, every
                 one served (one echo each) before any talks further, then
                 random-size echoes on all of them.  While all N are open the
                 server's /proc/<pid>/task must list one thread, at most
                 1 + the offload pool: the pool's helpers start only when
                 getaddrinfo or file calls need them, and blocking_echo makes
                 neither (it binds with inet_pton).
  threads N      real threads (the default): the sockets the main coroutine
                 accepted are non-blocking underneath, and each thread's
                 blocking reads and writes must still behave as blocking
                 ones; 1 + N threads while they are open.

usage: hook_echo_clients.py SPINDLE BLOCKING_ECHO coroutines|threads N
"""
import asyncio
import os
import random
import resource
import subprocess
import sys
import time

OFFLOAD_POOL = int(os.environ.get("SPINDLE_OFFLOAD_THREADS", "4"))


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def start(spindle, echo, mode):
    cmd = [spindle, "run", "--hook", "--stats"]
    if mode == "coroutines":
        cmd.append("--threads-as-coroutines")
    cmd += ["--", echo, "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if len(line) < 2 or line[0] != "READY":
        proc.kill()
        fail("server did not start: %r %s" % (line, proc.stderr.read()))
    return proc, int(line[1])


def task_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


async def client(port, rng, opened, release, rounds):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    first = b"hello %d" % rng.randint(0, 1 << 30)
    writer.write(first)
    await writer.drain()
    if await reader.readexactly(len(first)) != first:
        raise AssertionError("first echo differs")
    opened.append(1)  # the server has accepted it and serves it
    await release.wait()
    for _ in range(rounds):
        msg = os.urandom(rng.randint(1, 20000))
        writer.write(msg)
        await writer.drain()
        if await reader.readexactly(len(msg)) != msg:
            raise AssertionError("echo differs")
    writer.close()
    await writer.wait_closed()


async def run(port, pid, n, mode):
    rng = random.Random(n)
    opened = []
    release = asyncio.Event()
    sem = asyncio.Semaphore(500)  # connect in waves: the backlog is finite

    async def guarded():
        async with sem:
            pass
        await client(port, rng, opened, release, 3)

    tasks = [asyncio.create_task(guarded()) for _ in range(n)]
    deadline = time.monotonic() + 90
    while len(opened) < n:
        if time.monotonic() > deadline:
            fail("only %d of %d connections served" % (len(opened), n))
        bad = [t for t in tasks if t.done() and t.exception()]
        if bad:
            fail("a client failed while connecting: %r" % bad[0].exception())
        await asyncio.sleep(0.05)
    threads = task_count(pid)
    if mode == "coroutines":
        print("ok: %d connections open and served; server threads: %d "
              "(1 expected; at most 1 + %d offload helpers)" % (n, threads, OFFLOAD_POOL),
              flush=True)
        if threads > 1 + OFFLOAD_POOL:
            fail("%d threads serve %d connections: pthread_create made real threads"
                 % (threads, n))
    else:
        print("ok: %d connections open and served; server threads: %d (1 + %d expected)"
              % (n, threads, n), flush=True)
        if threads != 1 + n:
            fail("expected one real thread a connection, saw %d threads" % threads)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        fail("%d of %d clients failed, first: %r" % (len(errors), n, errors[0]))
    print("ok: %d x 3 echoes of up to 20000 bytes, all correct" % n, flush=True)


def main():
    spindle, echo, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 100:
        print("SKIP: RLIMIT_NOFILE hard limit %d is below %d connections" % (hard, n))
        sys.exit(77)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc, port = start(spindle, echo, mode)
    try:
        asyncio.run(run(port, proc.pid, n, mode))
        if proc.poll() is not None:
            fail("the server died: %s" % proc.stderr.read())
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
