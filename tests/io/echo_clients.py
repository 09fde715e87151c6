#!/usr/bin/env python3
"""Drives examples/echo with real sockets: simple echoes, 5,000 and then
10,000 concurrent connections (all open at once, on one server thread),
half-closes, and a client that resets the connection mid-write.

usage: echo_clients.py ECHO_BINARY epoll|uring
"""
import asyncio
import os
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import time


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def start_server(binary, backend):
    proc = subprocess.Popen([binary, "--port", "0", "--backend", backend],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if len(line) < 2 or line[0] != "READY":
        proc.kill()
        fail("server did not start: %r" % line)
    return proc, int(line[1])


async def one_client(port, rng, rounds, opened, release):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.append(1)
    await release.wait()  # every connection is open before any talks
    for _ in range(rounds):
        msg = os.urandom(rng.randint(1, 3000))
        writer.write(msg)
        await writer.drain()
        got = await reader.readexactly(len(msg))
        if got != msg:
            raise AssertionError("echo differs")
    writer.close()
    await writer.wait_closed()


async def concurrent(port, n, rounds=3):
    rng = random.Random(n)
    opened = []
    release = asyncio.Event()
    sem = asyncio.Semaphore(500)  # connect in waves: the backlog is finite

    async def guarded():
        async with sem:
            pass
        await one_client(port, rng, rounds, opened, release)

    tasks = [asyncio.create_task(guarded()) for _ in range(n)]
    deadline = time.monotonic() + 60
    while len(opened) < n:
        if time.monotonic() > deadline:
            fail("only %d of %d connections opened" % (len(opened), n))
        if any(t.done() and t.exception() for t in tasks):
            break
        await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        fail("%d of %d clients failed, first: %r" % (len(errors), n, errors[0]))
    print("ok: %d concurrent connections, %d echoes each" % (n, rounds), flush=True)


def half_close(port):
    s = socket.create_connection(("127.0.0.1", port))
    data = os.urandom(100000)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    if got != data:
        fail("half-close: got %d of %d bytes back" % (len(got), len(data)))
    print("ok: half-close returns everything, then EOF", flush=True)


def reset_mid_write(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    sent = 0
    blob = os.urandom(65536)
    end = time.monotonic() + 2
    while time.monotonic() < end and sent < 8 * 1024 * 1024:
        try:
            sent += s.send(blob)
        except BlockingIOError:
            time.sleep(0.01)  # the server is blocked writing back to us
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST while the server is mid-write
    print("ok: reset after %d bytes" % sent, flush=True)


def still_serves(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"still there?")
    if s.recv(100) != b"still there?":
        fail("server stopped answering")
    s.close()


def main():
    binary, backend = sys.argv[1], sys.argv[2]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc, port = start_server(binary, backend)
    try:
        still_serves(port)
        half_close(port)
        reset_mid_write(port)
        still_serves(port)
        want = 10000 if hard >= 10100 else hard - 100
        asyncio.run(concurrent(port, 5000))
        asyncio.run(concurrent(port, want, rounds=2))
        still_serves(port)
        if proc.poll() is not None:
            fail("server exited with %s" % proc.returncode)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail("server did not stop on SIGTERM")
    if rc != 0:
        fail("server exited with %d" % rc)
    print("3 passed, 0 failed")


if __name__ == "__main__":
    main()
