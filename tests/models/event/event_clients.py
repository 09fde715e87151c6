#!/usr/bin/env python3
"""Clients for the event-loop models (epoll edge and level, callback,
stackless), one behaviour per run: each starts the model with evm_serve,
drives it with plain sockets and fails with a message naming what was
expected.

usage: event_clients.py EVM_SERVE MODEL edge|level CASE

CASES (what each one proves):
  pipelined    64 mixed requests in one write, and the same bytes cut at
               random points: every answer, complete and in order
  slow_client  a head and a body trickled byte by byte (within the header
               timeout) are answered
  slowloris    the header timer is armed once a request: trickling does not
               extend it (408, then close, on time); a silent new
               connection is closed after it too
  idle         an idle keep-alive connection is closed after the idle
               timeout, a busy one is not
  bodies       Content-Length and chunked bodies (to a CGI echo), Expect:
               100-continue, 413 over the body limit, 400 for bad chunks
  cgi          CGI env, chunked output on HTTP/1.1, close-framed output on
               HTTP/1.0, Status:, bad output (502), missing (404) and not
               executable (403) scripts, keep-alive after a CGI answer
  static       a large file (sendfile in pieces) byte-exact, a range, HEAD,
               304, 404, 403 for a way out of the root
  errors       400, 431, 501, 505 answered then closed
  half_close   a request then shutdown(SHUT_WR): the answer, then EOF
  shutdown     SIGTERM: an idle connection is closed, new connections are
               refused, the request in flight (a CGI script held until the
               test lets it go) is answered (Connection: close), exit
               status 0
  concurrency  2,000 connections at once, three requests each
  emfile       out of descriptors (RLIMIT_NOFILE 64, a flood of 300
               connections): the loop neither spins nor dies, and serves
               again once descriptors are free
"""
import asyncio
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HEADER_TIMEOUT_MS = 800
MAX_BODY = 65536
NOFILE = 64  # the emfile case's descriptor limit

# (header, idle) timeouts.  Short ones only where a case tests that timer:
# elsewhere a busy machine could meet them by accident (a client late
# between the accept and a request or between two requests, a byte every
# few ms that comes late, 2,000 Python clients), and the emfile case keeps
# its flood at the limit.  The idle case's busy phase sleeps a third of its
# idle timeout between requests.
LONG_TIMEOUT_MS = 20000
CASE_TIMEOUTS_MS = {
    "slowloris": (HEADER_TIMEOUT_MS, LONG_TIMEOUT_MS),
    "idle": (HEADER_TIMEOUT_MS, 3000),
}


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- the server ---------------------------------------------------------

class Server:
    def __init__(self, binary, model, trigger, tmp, timeouts_ms, extra=()):
        self.root = os.path.join(tmp, "root")
        self.cgi = os.path.join(tmp, "cgi")
        self.marks = os.path.join(tmp, "marks")
        self.header_ms, self.idle_ms = timeouts_ms
        os.makedirs(self.root)
        os.makedirs(self.cgi)
        os.makedirs(self.marks)
        make_files(self.root, self.cgi, self.marks)
        self.proc = subprocess.Popen(
            [binary, model, "--trigger", trigger, "--root", self.root,
             "--cgi-dir", self.cgi,
             "--header-timeout-ms", str(timeouts_ms[0]),
             "--idle-timeout-ms", str(timeouts_ms[1]),
             "--max-body-bytes", str(MAX_BODY)] + list(extra),
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) < 3 or line[0] != "READY" or line[2] != model:
            self.proc.kill()
            fail("expected 'READY <port> %s', got %r" % (model, line))
        self.port = int(line[1])

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def started(self, name):
        """Whether hold.sh?NAME has started (so its request is in flight)."""
        return os.path.exists(os.path.join(self.marks, "started." + name))

    def release(self):
        """Lets every hold.sh answer."""
        open(os.path.join(self.marks, "go"), "w").close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("the server did not exit within 10 s of SIGTERM")


def make_files(root, cgi, marks):
    with open(os.path.join(root, "a.txt"), "w") as f:
        f.write("static hello\n")
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(random.Random(5).randbytes(3 * 1024 * 1024 + 17))
    scripts = {
        # echoes the body and a few variables
        "echo.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                   "echo \"m=$REQUEST_METHOD l=$CONTENT_LENGTH q=$QUERY_STRING"
                   " x=$HTTP_X_TEST\"\ncat\n",
        "status.sh": "#!/bin/sh\nprintf 'Status: 201 Created\\nContent-Type: text/plain\\n"
                     "Content-Length: 3\\n\\nok\\n'\n",
        "bad.sh": "#!/bin/sh\necho 'this is not a header'\n",
        "big.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n"
                  "i=0; while [ $i -lt 2000 ]; do echo \"line $i of the output\"; "
                  "i=$((i+1)); done\n",
        # in flight until the test lets it go (20 s at most, if it never does)
        "hold.sh": "#!/bin/sh\ntouch '%s/started.'\"$QUERY_STRING\"\n"
                   "i=0; while [ ! -e '%s/go' ] && [ $i -lt 400 ]; do sleep 0.05; "
                   "i=$((i+1)); done\nprintf 'Content-Type: text/plain\\n\\nreleased\\n'\n"
                   % (marks, marks),
    }
    for name, text in scripts.items():
        p = os.path.join(cgi, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o755)
    with open(os.path.join(cgi, "noexec.sh"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")


# ---- reading answers ----------------------------------------------------

class Reader:
    """Buffered reads of HTTP answers from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._more()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exact(self, n):
        while len(self.buf) < n:
            self._more()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def rest(self):
        try:
            while True:
                self._more()
        except (EOFError, ConnectionResetError):
            pass
        d, self.buf = self.buf, b""
        return d

    def at_eof(self, timeout=3.0):
        """True when the peer closes (EOF or reset) with nothing more sent."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def response(self, head_request=False):
        """(status, headers dict (lower-case names), body)."""
        status_line = self.line().decode()
        parts = status_line.split(" ", 2)
        if not parts[0].startswith("HTTP/1."):
            raise AssertionError("bad status line %r" % status_line)
        status = int(parts[1])
        headers = {}
        while True:
            ln = self.line()
            if not ln:
                break
            k, v = ln.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if status == 100:
            return status, headers, b""
        if head_request or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, self.exact(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    return status, headers, body
                body += self.exact(size)
                check(self.exact(2) == b"\r\n", "chunk data must end in CRLF")
        return status, headers, self.rest()


def wait_for(cond, seconds, what):
    """Polls cond until it holds; fails naming what after `seconds`."""
    deadline = time.monotonic() + seconds
    while not cond():
        check(time.monotonic() < deadline, "%s: not within %d s" % (what, seconds))
        time.sleep(0.02)


def get(path, extra="", method="GET", version="1.1"):
    return ("%s %s HTTP/%s\r\nHost: t\r\n%s\r\n" % (method, path, version, extra)).encode()


def one(srv, raw, head_request=False):
    s = srv.connect()
    s.sendall(raw)
    r = Reader(s)
    res = r.response(head_request)
    s.close()
    return res


# ---- the cases ----------------------------------------------------------

def case_pipelined(srv):
    reqs, want = [], []
    kinds = [
        (get("/"), 200, b"Hello, World!\n", False),
        (get("/static/a.txt"), 200, b"static hello\n", False),
        (get("/sleep?ms=5"), 200, b"Hello, World!\n", False),
        (get("/cgi-bin/echo.sh?p=1"), 200, None, False),
        (get("/nope"), 404, None, False),
        (get("/", method="HEAD"), 200, b"", True),
        (get("/", method="DELETE"), 405, None, False),
    ]
    rng = random.Random(1)
    for i in range(64):
        k = kinds[i % len(kinds)] if i < 56 else kinds[rng.randrange(len(kinds))]
        reqs.append(k[0])
        want.append(k)
    raw = b"".join(reqs)
    for attempt in range(3):
        s = srv.connect()
        if attempt == 0:
            s.sendall(raw)  # all at once
        else:
            cuts = sorted(rng.sample(range(1, len(raw)), 20))
            last = 0
            for c in cuts + [len(raw)]:
                s.sendall(raw[last:c])
                last = c
                time.sleep(0.001)
        r = Reader(s)
        for i, (req, status, body, is_head) in enumerate(want):
            try:
                st, hd, got = r.response(is_head)
            except EOFError:
                fail("pipelined answer %d of %d missing (attempt %d)" % (i, len(want), attempt))
            check(st == status, "pipelined answer %d: status %d, expected %d" % (i, st, status))
            if body is not None:
                check(got == body, "pipelined answer %d: body %r, expected %r" % (i, got, body))
            if req.startswith(b"GET /cgi-bin"):
                check(got.startswith(b"m=GET l= q=p=1"), "CGI answer in a batch: %r" % got)
        s.sendall(get("/"))
        check(r.response()[0] == 200, "the connection is kept after the batch")
        s.close()


def case_slow_client(srv):
    s = srv.connect()
    r = Reader(s)
    for _ in range(2):  # twice on one connection: the timers start afresh
        for b in get("/", "X-Pad: " + "p" * 40 + "\r\n"):
            s.sendall(bytes([b]))
            time.sleep(0.002)
        st, _, body = r.response()
        check(st == 200 and body == b"Hello, World!\n", "slow head answered: %d %r" % (st, body))
    body = b"slow-body-" * 8
    s.sendall(get("/cgi-bin/echo.sh", "Content-Length: %d\r\n" % len(body), "POST"))
    for b in body:
        s.sendall(bytes([b]))
        time.sleep(0.003)
    st, _, got = r.response()
    check(st == 200 and got.endswith(body), "slow body echoed: %d %r" % (st, got[-40:]))
    s.close()


def case_slowloris(srv):
    s = srv.connect()
    r = Reader(s)
    s.sendall(get("/"))
    check(r.response()[0] == 200, "first request answered")
    time.sleep(0.1)
    head = get("/", "X-Slow: " + "s" * 200 + "\r\n")
    # A byte every 50 ms, so some 12 s in all: the 0.8 s timer, if trickling
    # does not extend it, fires long before the trickle ends.
    answered = False
    for b in head[:-2]:  # never the final CRLF
        if select.select([s], [], [], 0)[0]:
            answered = True  # the 408, or the close
            break
        try:
            s.sendall(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            answered = True  # closed
            break
        time.sleep(0.05)
    check(answered, "trickled bytes must not extend the header timer: no answer during "
          "%.1f s of trickling" % ((len(head) - 2) * 0.05))
    s.settimeout(10)
    st, hd, _ = r.response()
    check(st == 408, "a head past the header timeout gets 408, got %d" % st)
    check(r.at_eof(1.0), "the connection closes after the 408, without lingering")
    s.close()
    # A connection that sends nothing at all is closed on the header timer.
    # The clock starts before the connect: the server's timer cannot start
    # earlier, so the lower bound holds however late this client looks.
    t0 = time.monotonic()
    s = srv.connect()
    check(Reader(s).at_eof(30), "a silent connection is closed")
    took = time.monotonic() - t0
    check(took > HEADER_TIMEOUT_MS / 1000 - 0.2,
          "silent connection closed after %.2f s, before the %.1f s header timeout" %
          (took, HEADER_TIMEOUT_MS / 1000))
    s.close()


def case_idle(srv):
    idle = srv.idle_ms / 1000
    s = srv.connect()
    r = Reader(s)
    # Busy: a request every third of the idle timeout, for longer than the
    # timeout in all (a timer that requests do not reset would fire).
    for i in range(5):
        if i:
            time.sleep(idle / 3)
        t0 = time.monotonic()  # the idle timer starts after this answer
        s.sendall(get("/"))
        try:
            st = r.response()[0]
        except EOFError:
            fail("a busy keep-alive connection was closed before request %d" % i)
        check(st == 200, "keep-alive request %d answered: %d" % (i, st))
    check(r.at_eof(30), "an idle keep-alive connection is closed")
    took = time.monotonic() - t0
    check(took > idle - 0.2,
          "idle close %.2f s after the last request, before the %.1f s idle timeout" %
          (took, idle))
    s.close()


def case_bodies(srv):
    s = srv.connect()
    r = Reader(s)
    body = os.urandom(20000).hex().encode()[:30000]
    s.sendall(get("/cgi-bin/echo.sh?cl", "Content-Length: %d\r\nX-Test: yes\r\n" % len(body),
                  "POST") + body)
    st, _, got = r.response()
    check(st == 200, "POST with Content-Length: %d" % st)
    check(got == ("m=POST l=%d q=cl x=yes\n" % len(body)).encode() + body,
          "CGI echo of a Content-Length body")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"abc", b"x" * 5000, b"end"))
    s.sendall(get("/cgi-bin/echo.sh", "Transfer-Encoding: chunked\r\n", "POST") +
              chunks + b"0\r\nTrailer-Field: 1\r\n\r\n")
    st, _, got = r.response()
    check(st == 200 and got == b"m=POST l=5006 q= x=\nabc" + b"x" * 5000 + b"end",
          "CGI echo of a chunked body (CONTENT_LENGTH is its decoded size): %r" % got[:40])
    # a body to a route that does not take one is read and dropped
    s.sendall(get("/", "Content-Length: 5\r\n", "GET") + b"hello")
    st, _, got = r.response()
    check(st == 200 and got == b"Hello, World!\n", "body dropped, request answered")
    # Expect: 100-continue, body sent only after the interim answer
    s.sendall(get("/cgi-bin/echo.sh", "Content-Length: 4\r\nExpect: 100-continue\r\n", "POST"))
    st, _, _ = r.response()
    check(st == 100, "Expect: 100-continue gets 100 before the body, got %d" % st)
    s.sendall(b"ping")
    st, _, got = r.response()
    check(st == 200 and got.endswith(b"ping"), "body after 100 Continue")
    s.close()
    st, hd, _ = one(srv, get("/cgi-bin/echo.sh", "Content-Length: %d\r\n" % (MAX_BODY + 1), "POST"))
    check(st == 413, "Content-Length over the limit: 413, got %d" % st)
    s = srv.connect()
    s.sendall(get("/cgi-bin/echo.sh", "Transfer-Encoding: chunked\r\n", "POST") + b"zz\r\n")
    r = Reader(s)
    st, _, _ = r.response()
    check(st == 400, "a bad chunk size: 400, got %d" % st)
    check(r.at_eof(), "closed after a framing error")
    s.close()


def case_cgi(srv):
    s = srv.connect()
    r = Reader(s)
    s.sendall(get("/cgi-bin/big.sh"))
    st, hd, got = r.response()
    check(st == 200, "CGI: %d" % st)
    check(hd.get("transfer-encoding") == "chunked", "HTTP/1.1 CGI output without a length is chunked")
    lines = got.decode().splitlines()
    check(len(lines) == 2000 and lines[-1] == "line 1999 of the output", "CGI output complete")
    s.sendall(get("/cgi-bin/status.sh"))
    st, hd, got = r.response()
    check(st == 201 and got == b"ok\n", "Status: from the script: %d %r" % (st, got))
    s.sendall(get("/cgi-bin/bad.sh"))
    st, _, _ = r.response()
    check(st == 502, "output that is not a CGI response: 502, got %d" % st)
    s.sendall(get("/cgi-bin/missing.sh"))
    check(r.response()[0] == 404, "no such script: 404")
    s.sendall(get("/cgi-bin/noexec.sh"))
    check(r.response()[0] == 403, "not executable: 403")
    s.sendall(get("/cgi-bin/echo.sh", method="HEAD"))
    st, hd, _ = r.response(head_request=True)
    check(st == 200, "HEAD on a script: %d" % st)
    s.sendall(get("/"))
    check(r.response()[1] is not None, "keep-alive after CGI answers")
    s.close()
    st, hd, got = one(srv, get("/cgi-bin/big.sh", version="1.0"))
    check(st == 200 and len(got.decode().splitlines()) == 2000,
          "HTTP/1.0 CGI output framed by the close")


def case_static(srv):
    with open(os.path.join(srv.root, "big.bin"), "rb") as f:
        big = f.read()
    s = srv.connect()
    r = Reader(s)
    s.sendall(get("/static/big.bin"))
    st, hd, got = r.response()
    check(st == 200 and got == big, "a large file byte-exact (%d of %d bytes)" % (len(got), len(big)))
    s.sendall(get("/static/big.bin", "Range: bytes=1000-1999\r\n"))
    st, hd, got = r.response()
    check(st == 206 and got == big[1000:2000], "a range: %d, %d bytes" % (st, len(got)))
    s.sendall(get("/static/a.txt", method="HEAD"))
    st, hd, got = r.response(head_request=True)
    check(st == 200 and hd.get("content-length") == "13", "HEAD of a file")
    s.sendall(get("/static/a.txt", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n"))
    check(r.response()[0] == 304, "not modified: 304")
    s.sendall(get("/static/none.txt"))
    check(r.response()[0] == 404, "missing file: 404")
    s.sendall(get("/static/%2e%2e/cgi/echo.sh"))
    check(r.response()[0] in (403, 404), "no way out of the root")
    s.close()
    # a client that reads the file slowly still gets all of it
    s = srv.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.sendall(get("/static/big.bin"))
    time.sleep(0.3)
    r = Reader(s)
    st, hd, got = r.response()
    check(got == big, "a slow reader gets the whole file")
    s.close()


def case_errors(srv):
    for raw, status in [
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\nHost: t\n\n", 400),
        (get("/", "X-Big: " + "b" * 9000 + "\r\n"), 431),
        (b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ]:
        s = srv.connect()
        s.sendall(raw + get("/"))  # a pipelined request after it is not answered
        r = Reader(s)
        st, hd, _ = r.response()
        check(st == status, "%r...: %d, expected %d" % (raw[:20], st, status))
        check(hd.get("connection") == "close", "error answers say Connection: close")
        check(r.at_eof(), "the connection closes after %d" % status)
        s.close()


def case_half_close(srv):
    s = srv.connect()
    s.sendall(get("/") + get("/static/a.txt"))
    s.shutdown(socket.SHUT_WR)
    r = Reader(s)
    check(r.response()[0] == 200, "first answer after a half-close")
    st, _, got = r.response()
    check(st == 200 and got == b"static hello\n", "second answer after a half-close")
    check(r.at_eof(), "EOF after the answers")
    s.close()


def case_shutdown(srv):
    idle = srv.connect()
    ri = Reader(idle)
    idle.sendall(get("/"))
    check(ri.response()[0] == 200, "idle connection's request")
    busy = srv.connect()
    # In flight for sure, however slow the machine: its script has started,
    # and it answers only once released, after the stop is under way.
    busy.sendall(get("/cgi-bin/hold.sh?busy"))
    wait_for(lambda: srv.started("busy"), 10, "the held request's script started")
    srv.proc.send_signal(signal.SIGTERM)
    check(ri.at_eof(10), "an idle keep-alive connection is closed at the stop")
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=10).close()
        except ConnectionRefusedError:
            break
        check(time.monotonic() < deadline,
              "the listener still accepts 10 s after SIGTERM (a request in flight)")
        time.sleep(0.05)
    srv.release()
    rb = Reader(busy)
    st, hd, body = rb.response()
    check(st == 200 and body == b"released\n",
          "the request in flight is answered: %d %r" % (st, body[:40]))
    check(hd.get("connection") == "close", "its answer says Connection: close")
    rc = srv.stop()
    check(rc == 0, "exit status 0 after SIGTERM, got %d" % rc)


async def conc_client(port, n):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(n):
        w.write(get("/"))
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise AssertionError("bad answer %r" % head[:40])
        await r.readexactly(14)
    w.close()
    await w.wait_closed()


async def conc_all(port):
    sem = asyncio.Semaphore(2000)

    async def one_client():
        async with sem:
            await conc_client(port, 3)
    await asyncio.gather(*(one_client() for _ in range(2000)))


def case_concurrency(srv):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4500), hard))
    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(conc_all(srv.port), 60))
    check(time.monotonic() - t0 < 60, "2,000 connections served in time")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def case_emfile(srv):
    flood = []
    for _ in range(300):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", srv.port))
        flood.append(c)
    # At the limit once every descriptor is in use; the flood's connections
    # stay open (long timers in this case), so it stays there.
    wait_for(lambda: open_fds(srv.proc.pid) >= NOFILE, 10,
             "the server reaches its %d descriptors" % NOFILE)
    # Spinning, the loop would use about all the CPU time it gets; waiting,
    # next to none.  Half the wall time is far from both.
    cpu0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
    time.sleep(2)
    used, wall = cpu_seconds(srv.proc.pid) - cpu0, time.monotonic() - t0
    check(used < wall / 2, "out of descriptors the loop must not spin: %.2f s of CPU in %.2f s"
          % (used, wall))
    check(srv.proc.poll() is None, "the server survives running out of descriptors")
    for c in flood:
        c.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            st, _, body = one(srv, get("/"))
            if st == 200:
                break
        except (OSError, EOFError):
            pass
        check(time.monotonic() < deadline, "service resumes once descriptors are free")
        time.sleep(0.1)


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        sys.exit(2)
    binary, model, trigger, case = sys.argv[1:]
    fn = globals().get("case_" + case)
    if not fn:
        fail("unknown case %r" % case)
    tmp = tempfile.mkdtemp(prefix="evm-")
    srv = Server(binary, model, trigger, tmp,
                 CASE_TIMEOUTS_MS.get(case, (LONG_TIMEOUT_MS, LONG_TIMEOUT_MS)),
                 ("--nofile", str(NOFILE)) if case == "emfile" else ())
    try:
        fn(srv)
        if case != "shutdown":
            rc = srv.stop()
            check(rc == 0, "exit status 0 after SIGTERM, got %d" % rc)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok: %s on %s (%s)" % (case, model, trigger))


if __name__ == "__main__":
    main()
