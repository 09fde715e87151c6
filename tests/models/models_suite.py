#!/usr/bin/env python3
"""The service, under one server model: `spindle serve --model NAME` on port
0, driven by clients we did not write the protocol of (Python's http.client,
raw sockets, curl, ab, wrk).

usage: models_suite.py SPINDLE_BINARY MODEL MODELS_SRC_DIR [--deny-io-uring]
                       [SERVE OPTIONS...]

--deny-io-uring runs the server under a seccomp filter that refuses
io_uring_setup (EPERM), as container runtimes do: the uring model must fall
back to epoll, say so on its READY line, and pass everything else.

A model that is not built (exit status 3, "not built") is skipped, unless
its source file exists in MODELS_SRC_DIR: then the binary should have it,
and the suite fails.  Each check prints "ok: ..." or "FAIL: ..."; the last
line is "N passed, M failed" (or "1 skipped").
"""
import hashlib
import http.client
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

READY_TIMEOUT = 15     # seconds for READY, even under ASan
HEADER_TIMEOUT_MS = 2000
# Long enough that no other case's client, however slow the machine, is
# idle that long between two requests; short enough for t_idle to wait out.
IDLE_TIMEOUT_MS = 3000
PROCESS_MODELS = ("prefork", "reuseport")  # --workers N: N child processes
THREAD_MODELS = ("pool", "mn")             # --workers N: N worker threads


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---- the server -----------------------------------------------------------

def deny_io_uring():
    """In the child before exec: io_uring_setup fails with EPERM."""
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    nr_io_uring_setup = 425  # the same number on every architecture
    insns = [(0x20, 0, 0, 0),                          # ld [nr]
             (0x15, 0, 1, nr_io_uring_setup),          # jeq -> next, else skip
             (0x06, 0, 0, 0x00050000 | 1),             # ret ERRNO(EPERM)
             (0x06, 0, 0, 0x7fff0000)]                 # ret ALLOW
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    prog = Prog(len(insns), ctypes.addressof(code))
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
        os._exit(97)  # PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP(FILTER)


class Server:
    deny_uring = False

    def __init__(self, binary, model, args, workdir):
        self.errpath = os.path.join(workdir, "server-%d.err" % time.monotonic_ns())
        self.err = open(self.errpath, "wb")
        cmd = [binary, "serve", "--model", model, "--port", "0"] + args
        # A session of its own: cleanup can kill the workers and scripts too.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err,
                                     start_new_session=True,
                                     preexec_fn=deny_io_uring if Server.deny_uring else None)
        self.port = None
        self.ready_line = None

    def wait_ready(self):
        """The READY line's port, or None if the process exited first."""
        deadline = time.monotonic() + READY_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("no READY line within %d s" % READY_TIMEOUT)
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    return None
                line += ch
        self.ready_line = line.decode().strip()
        parts = self.ready_line.split()
        check(len(parts) >= 3 and parts[0] == "READY",
              "expected 'READY <port> <model>', got %r" % self.ready_line)
        self.port = int(parts[1])
        return self.port

    def stderr_text(self):
        self.err.flush()
        with open(self.errpath, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def stop(self, timeout=15, signal_it=True):
        """SIGTERM (unless sent already); returns the exit status."""
        if signal_it:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("server did not exit within %d s of SIGTERM" % timeout)


# ---- clients ----------------------------------------------------------------

def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(f, head=False):
    """(status, headers, body) from a binary file over a socket, or None at
    end of file.  Enough HTTP/1.1 for our server's answers."""
    line = f.readline()
    if not line:
        return None
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", line)
    check(m, "bad status line %r" % line)
    status = int(m.group(1))
    headers = {}
    while True:
        line = f.readline()
        check(line, "connection closed inside a response head")
        if line == b"\r\n":
            break
        k, v = line.decode("latin-1").split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if head or status in (100, 204, 304):
        pass
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    else:
        body = f.read()
    return status, headers, body


def raw(port, data, expect_close=True, head=False):
    """Sends data on a new connection; returns the responses up to the close
    (one if the server closes after it)."""
    s = connect(port)
    try:
        s.sendall(data)
        f = s.makefile("rb")
        out = []
        while True:
            r = read_response(f, head)
            if r is None:
                break
            out.append(r)
            if not expect_close:
                break
        return out
    finally:
        s.close()


def get(port, path, method="GET", headers=None, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def wait_until(cond, seconds, what):
    """Polls cond until it holds; a Failure naming what after `seconds`."""
    deadline = time.monotonic() + seconds
    while not cond():
        check(time.monotonic() < deadline, "%s: not within %d s" % (what, seconds))
        time.sleep(0.02)


def descendants(pid):
    """pid -> (ppid, state) of every process under pid."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        procs[int(d)] = (int(rest[1]), rest[0])
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for q, (pp, state) in procs.items():
            if pp == p and q not in out:
                out[q] = (pp, state)
                todo.append(q)
    return out


# ---- the checks -------------------------------------------------------------

class Suite:
    def __init__(self, binary, model, args, tmp, srv):
        self.binary, self.model, self.args, self.tmp, self.srv = binary, model, args, tmp, srv
        self.port = srv.port
        self.root = os.path.join(tmp, "root")
        self.marks = os.path.join(tmp, "marks")

    def t_hello(self):
        st, h, body = get(self.port, "/")
        check(st == 200, "GET /: status %d" % st)
        check(body == b"Hello, World!\n", "GET /: body %r" % body)
        check(h.get("content-length") == "14", "GET /: Content-Length %r" % h.get("content-length"))
        check("date" in h and h.get("server") == "spindle", "GET /: Date and Server expected")
        return "GET / says hello"

    def t_head(self):
        st, h, body = get(self.port, "/", method="HEAD")
        check(st == 200 and body == b"", "HEAD /: %d with %d body bytes" % (st, len(body)))
        check(h.get("content-length") == "14", "HEAD /: Content-Length of the GET expected")
        return "HEAD / has the head of GET, no body"

    def t_static(self):
        st, h, body = get(self.port, "/static/a.txt")
        check(st == 200 and body == b"static file\n", "static: %d %r" % (st, body))
        check(h.get("content-type", "").startswith("text/plain"), "static: Content-Type %r" % h.get("content-type"))
        lm = h.get("last-modified")
        check(lm, "static: no Last-Modified")
        st, _, body = get(self.port, "/static/a.txt", headers={"If-Modified-Since": lm})
        check(st == 304 and body == b"", "If-Modified-Since: %d, expected 304" % st)
        st, _, body = get(self.port, "/static/big.bin")
        check(st == 200 and hashlib.sha256(body).hexdigest() == self.big_sha,
              "big static file: %d, %d bytes, content differs" % (st, len(body)))
        st, h, body = get(self.port, "/static/big.bin", headers={"Range": "bytes=10-19"})
        check(st == 206 and len(body) == 10, "Range: %d with %d bytes" % (st, len(body)))
        st, _, _ = get(self.port, "/static/missing.txt")
        check(st == 404, "missing file: %d" % st)
        for path in ("/static/../secret.txt", "/static/%2e%2e/secret.txt",
                     "/static/sub/%2E%2E/%2e%2e/secret.txt", "/static/out.txt",
                     "/static/outdir/secret.txt"):
            r = raw(self.port, b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    % path.encode())
            check(r and r[0][0] in (403, 404) and b"secret" not in r[0][2],
                  "%s: %r, expected 403/404 and no secret" % (path, r[0][:2] if r else None))
        return "static: content, type, 304, big file, range; .., %2e%2e, symlinks refused"

    def t_sleep(self):
        t0 = time.monotonic()
        st, _, _ = get(self.port, "/sleep?ms=50")
        dt = time.monotonic() - t0
        check(st == 200 and dt >= 0.05, "/sleep?ms=50: %d after %.3f s" % (st, dt))
        # A sleeping request holds up no other: GET / on another connection
        # is answered while a 4 s sleep is still outstanding.
        s = connect(self.port, timeout=30)
        try:
            s.sendall(b"GET /sleep?ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n")
            st, _, body = get(self.port, "/")
            outstanding = not select.select([s], [], [], 0)[0]
            check(st == 200 and body == b"Hello, World!\n", "GET / during a sleep: %d" % st)
            check(outstanding, "GET / was answered only once a 4 s sleep on another "
                  "connection was: the sleep held the server up")
            r = read_response(s.makefile("rb"))
            check(r and r[0] == 200, "/sleep?ms=4000: %r" % (r[:2] if r else None,))
        finally:
            s.close()
        res = []

        def one():
            try:
                res.append(get(self.port, "/sleep?ms=100")[0])
            except Exception as e:
                res.append(repr(e))
        ts = [threading.Thread(target=one) for _ in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(res == [200] * 20, "20 sleeps: %r" % res)
        return "/sleep waits; GET / answered during a 4 s sleep; 20 concurrent sleeps"

    def t_cgi(self):
        st, h, body = get(self.port, "/cgi-bin/env.sh/extra/path?a=1&b=2", method="POST",
                          body=b"posted body", headers={"X-Test": "yes", "Content-Type": "text/plain"})
        check(st == 200, "CGI POST: status %d: %r" % (st, body))
        text = body.decode()
        for want in ("REQUEST_METHOD=POST", "QUERY_STRING=a=1&b=2", "CONTENT_LENGTH=11",
                     "CONTENT_TYPE=text/plain", "REMOTE_ADDR=127.0.0.1",
                     "SERVER_PORT=%d" % self.port, "HTTP_X_TEST=yes", "PATH_INFO=/extra/path",
                     "GATEWAY_INTERFACE=CGI/1.1", "BODY=posted body"):
            check(want in text, "CGI: %r missing from %r" % (want, text))
        st, h, body = get(self.port, "/cgi-bin/status.sh")
        check(st == 404 and body == b"not here\n" and h.get("x-script") == "status",
              "CGI Status: 404 expected, got %d %r" % (st, body))
        st, _, _ = get(self.port, "/cgi-bin/nosuch.sh")
        check(st == 404, "missing script: %d" % st)
        # chunked request body: the script still gets CONTENT_LENGTH
        r = raw(self.port, b"POST /cgi-bin/env.sh HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        check(r and r[0][0] == 200 and b"CONTENT_LENGTH=11" in r[0][2]
              and b"BODY=hello world" in r[0][2], "chunked CGI POST: %r" % (r,))
        # a body larger than a pipe: the server grows the pipe, the script echoes it
        big = os.urandom(300 * 1024).hex().encode()[:300 * 1024]
        st, _, body = get(self.port, "/cgi-bin/cat.sh", method="POST", body=big)
        check(st == 200 and body == big, "300 KiB CGI echo: %d, %d bytes back" % (st, len(body)))
        # HEAD: the head a GET gets, no body
        st, h, body = get(self.port, "/cgi-bin/status.sh", method="HEAD")
        check(st == 404 and body == b"", "CGI HEAD: %d %r" % (st, body))
        # Expect: 100-continue: the interim answer comes before the body is
        # sent (this client sends none until it has it), then the answer.
        s = connect(self.port)
        try:
            s.sendall(b"POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n"
                      b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
            f = s.makefile("rb")
            try:
                r = read_response(f)
            except socket.timeout:
                r = None
            check(r and r[0] == 100, "Expect: 100-continue: %r before the body, expected 100"
                  % (r[:2] if r else "nothing in 10 s",))
            s.sendall(b"x" * 3000)
            r = read_response(f)
            check(r and r[0] == 200 and r[2] == b"x" * 3000,
                  "body after 100 Continue: %r" % ((r[0], len(r[2])) if r else None,))
        finally:
            s.close()
        # curl sends Expect: 100-continue above 1 KiB (and the body anyway
        # after 1 s without an answer): a real client gets its echo.
        if shutil.which("curl"):
            out = subprocess.run(["curl", "-s", "--max-time", "30", "--data-binary", "@-",
                                  "http://127.0.0.1:%d/cgi-bin/cat.sh" % self.port],
                                 input=b"x" * 3000, capture_output=True)
            check(out.returncode == 0 and out.stdout == b"x" * 3000,
                  "curl POST: rc %d, %d bytes" % (out.returncode, len(out.stdout)))
        # The scripts have all ended; their reaping may come a little later.
        deadline = time.monotonic() + 10
        while True:
            zombies = [p for p, (_, st) in descendants(self.srv.proc.pid).items() if st == "Z"]
            if not zombies or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check(not zombies, "zombies left after 10 s: %r" % zombies)
        return "CGI: env, POST body, Status, chunked and 300 KiB bodies, 100-continue, no zombies"

    def t_pipelining(self):
        req = (b"GET /static/a.txt HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        r = raw(self.port, req)
        check([x[0] for x in r] == [200, 404, 200], "pipelined statuses %r" % [x[0] for x in r])
        check(r[0][2] == b"static file\n" and r[2][2] == b"Hello, World!\n",
              "pipelined bodies out of order: %r" % [x[2] for x in r])
        # a request split across writes, the next one glued to its end
        s = connect(self.port)
        f = s.makefile("rb")
        s.sendall(b"GET /sleep?ms=1 HTTP/1.1\r\nHo")
        time.sleep(0.05)
        s.sendall(b"st: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        a, b = read_response(f), read_response(f)
        s.close()
        check(a[0] == 200 and b[2] == b"Hello, World!\n", "split + pipelined: %r %r" % (a[:2], b[:2]))
        return "pipelining: 3 answers in order; split heads"

    def t_buffers(self):
        # Idle connections give their I/O buffers back and busy ones borrow
        # them: a buffer must never change hands while a connection has a
        # half-read head in it, and a burst larger than one buffer must
        # come out whole and in order.
        conns = [connect(self.port) for _ in range(20)]
        try:
            files = [s.makefile("rb") for s in conns]
            for s in conns:
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            for f in files:
                r = read_response(f)
                check(r and r[0] == 200, "warm-up answer: %r" % (r[:2] if r else None,))
            # all idle now; half heads on even connections, whole requests
            # on odd ones (which borrow and return buffers meanwhile)
            for i, s in enumerate(conns):
                if i % 2 == 0:
                    s.sendall(b"GET /static/a.txt HTTP/1.1\r\nHo")
            time.sleep(0.05)
            for i, s in enumerate(conns):
                if i % 2:
                    s.sendall(b"GET /missing-%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            for i, f in enumerate(files):
                if i % 2:
                    r = read_response(f)
                    check(r and r[0] == 404, "whole request beside half heads: %r"
                          % (r[:2] if r else None,))
            for i in reversed(range(0, len(conns), 2)):
                conns[i].sendall(b"st: t\r\n\r\n")
            for i in range(0, len(conns), 2):
                r = read_response(files[i])
                check(r and r[0] == 200 and r[2] == b"static file\n",
                      "a half head finished after others were served: %r"
                      % (r[:2] if r else None,))
            # a pipelined burst of about 40 KiB on one connection, then idle,
            # then one more request
            n = 1500
            conns[1].sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * n)
            got = 0
            for _ in range(n):
                r = read_response(files[1])
                check(r and r[0] == 200 and r[2] == b"Hello, World!\n",
                      "burst answer %d of %d: %r" % (got + 1, n, r[:2] if r else None))
                got += 1
            time.sleep(0.05)
            conns[1].sendall(b"GET /static/a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            r = read_response(files[1])
            check(r and r[2] == b"static file\n", "after the burst: %r" % (r[:2] if r else None,))
        finally:
            for s in conns:
                s.close()
        return "buffers: half heads kept while others borrow; a 40 KiB burst in order"

    def t_keepalive(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.connect()
        sock = c.sock
        for i in range(5):
            c.request("GET", "/" if i % 2 else "/static/a.txt")
            r = c.getresponse()
            r.read()
            check(r.status == 200 and not r.will_close, "keep-alive request %d: %d" % (i, r.status))
        check(c.sock is sock, "the connection was not reused")
        c.close()
        return "keep-alive: 5 requests on one connection"

    def t_idle(self):
        # Busy: a request every sixth of the idle timeout, for longer than
        # the timeout, all on one connection: the deadline moves with each.
        s = connect(self.port, timeout=30)
        f = s.makefile("rb")
        req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < IDLE_TIMEOUT_MS / 1000 * 1.5:
            s.sendall(req)
            r = read_response(f)
            check(r is not None and r[0] == 200,
                  "busy keep-alive connection closed after %.1f s (request %d)"
                  % (time.monotonic() - t0, n))
            n += 1
            time.sleep(IDLE_TIMEOUT_MS / 1000 / 6)
        # Idle: closed once the timeout has passed since the last answer
        # (not before; 30 s at most, the socket's own timeout).
        s.sendall(req)
        check(read_response(f)[0] == 200, "the last request")
        last = time.monotonic()
        try:
            end = f.read()
        except socket.timeout:
            end = None
        idle_s = time.monotonic() - last
        f.close()
        s.close()
        check(end == b"", "the idle connection was not closed within 30 s (got %r)" % (end,))
        check(idle_s >= IDLE_TIMEOUT_MS / 1000 - 0.05,
              "the idle connection was closed %.2f s after its last answer, before the %.1f s "
              "idle timeout" % (idle_s, IDLE_TIMEOUT_MS / 1000))
        return "idle: %d requests over %.1f s kept one connection; closed %.2f s after the " \
               "last answer (timeout %.1f s)" % (n + 1, last - t0, idle_s, IDLE_TIMEOUT_MS / 1000)

    def t_http10(self):
        r = raw(self.port, b"GET / HTTP/1.0\r\n\r\n")
        check(len(r) == 1 and r[0][0] == 200 and r[0][1].get("connection") == "close",
              "HTTP/1.0: %r" % (r,))
        s = connect(self.port)
        f = s.makefile("rb")
        s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        a = read_response(f)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        b = read_response(f)
        end = f.read()
        s.close()
        check(a[1].get("connection", "").lower() == "keep-alive" and b[0] == 200 and end == b"",
              "HTTP/1.0 keep-alive then close: %r %r %r" % (a[1], b and b[0], end))
        return "HTTP/1.0 closes; with Connection: keep-alive it stays"

    def t_errors(self):
        cases = [
            ("bad request line", b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
            ("garbage", b"\x01\x02 nonsense\r\n\r\n", 400),
            ("no Host", b"GET / HTTP/1.1\r\n\r\n", 400),
            ("long header", b"GET / HTTP/1.1\r\nHost: t\r\nX-Long: " + b"a" * 10000 + b"\r\n\r\n", 431),
            # one field line more than the limit (100): the parsed headers
            # fill the whole array, which lives in the lent I/O block
            ("101 field lines", b"GET / HTTP/1.1\r\nHost: t\r\n"
                                + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
            ("long URI", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
            ("unknown method", b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501),
            ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            ("CL+TE", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("body too large", b"POST /cgi-bin/cat.sh HTTP/1.1\r\nHost: t\r\n"
                               b"Content-Length: 99999999\r\n\r\n", 413),
            ("bad chunk", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"zz\r\n", 400),
        ]
        for name, data, want in cases:
            r = raw(self.port, data)
            check(len(r) == 1 and r[0][0] == want,
                  "%s: expected one %d then close, got %r" % (name, want, [x[0] for x in r]))
        # exactly the limit is served
        r = raw(self.port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                + b"".join(b"X-%d: v\r\n" % i for i in range(98)) + b"\r\n")
        check(len(r) == 1 and r[0][0] == 200 and r[0][2] == b"Hello, World!\n",
              "100 field lines: expected one 200, got %r" % ([x[0] for x in r],))
        # Random bytes after a valid start, then random bytes alone: each
        # connection gets an error answer or a close, never a crash.
        rng = random.Random(5)
        for i in range(40):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
            data = (b"GET / HTTP/1.1\r\nHost: t\r\n" + junk) if i % 2 else junk
            s = connect(self.port, timeout=5)
            try:
                s.sendall(data + b"\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            except OSError:
                pass  # a reset after an error answer is fine
            finally:
                s.close()
        st, _, _ = get(self.port, "/")
        check(st == 200, "after the errors the server stopped serving")
        return ("errors: 400 414 431 (long, 101 lines) 501 505 413, each then close; 100 lines "
                "served; 40 junk requests; still serving")

    def t_slowloris(self):
        trickle_s = 30  # a byte a second: the head (56 bytes) would last longer
        # The clock starts before the connect: the server's header timer
        # cannot start earlier, so "not too early" holds however late we look.
        t0 = time.monotonic()
        s = connect(self.port, timeout=1)
        head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 40
        closed_at = None
        answered = []  # (status, when answered, since t0)

        def normal():
            while closed_at is None and time.monotonic() - t0 < trickle_s:
                try:
                    st = get(self.port, "/")[0]
                except Exception as e:
                    st = repr(e)
                answered.append((st, time.monotonic() - t0))
                time.sleep(0.2)
        th = threading.Thread(target=normal)
        th.start()
        try:
            for i in range(len(head)):
                try:
                    s.sendall(head[i:i + 1])
                    data = s.recv(4096)  # times out after 1 s unless closed
                    if data == b"" or data.startswith(b"HTTP/1.1 408"):
                        closed_at = time.monotonic() - t0
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed_at = time.monotonic() - t0
                    break
                if time.monotonic() - t0 > trickle_s:
                    break
        finally:
            if closed_at is None:
                closed_at = -1
            th.join()
            s.close()
        limit = HEADER_TIMEOUT_MS / 1000
        check(closed_at > 0, "slowloris (a byte a second) not closed by the %.0f s header "
              "timeout in %d s" % (limit, trickle_s))
        check(closed_at >= limit - 0.1, "slowloris closed too early (%.1f s)" % closed_at)
        # Served one after the other, no normal request would be answered
        # before the slow one is closed.
        check(answered and all(st == 200 for st, _ in answered),
              "normal requests meanwhile: %r" % answered)
        check(any(at < closed_at for _, at in answered),
              "no normal request was answered before the slow one was closed at %.1f s: %r"
              % (closed_at, answered))
        return "slowloris closed after %.1f s; %d normal requests served meanwhile" % (
            closed_at, sum(at < closed_at for _, at in answered))

    def t_ab(self):
        if not shutil.which("ab"):
            return "SKIP ab (apache2-utils) not installed"
        out = []
        for extra in ([], ["-k"]):
            p = subprocess.run(["ab", "-q", "-n", "2000", "-c", "50", "-s", "20"] + extra +
                               ["http://127.0.0.1:%d/" % self.port], capture_output=True, text=True,
                               timeout=60)
            text = p.stdout + p.stderr
            m_done = re.search(r"Complete requests:\s+(\d+)", text)
            m_fail = re.search(r"Failed requests:\s+(\d+)", text)
            check(p.returncode == 0 and m_done and m_fail,
                  "ab %s failed: rc %d\n%s" % (" ".join(extra), p.returncode, text[-800:]))
            check(int(m_done.group(1)) == 2000 and int(m_fail.group(1)) == 0
                  and "Non-2xx" not in text,
                  "ab %s: %s complete, %s failed\n%s" % (" ".join(extra), m_done.group(1),
                                                        m_fail.group(1), text[-800:]))
            rps = re.search(r"Requests per second:\s+([\d.]+)", text)
            out.append("%s%s rps" % ("-k " if extra else "", rps.group(1) if rps else "?"))
        return "ab -n 2000 -c 50: 0 failed (%s)" % ", ".join(out)

    def t_wrk(self):
        if not shutil.which("wrk"):
            return "SKIP wrk not installed"
        # wrk counts an answer slower than its --timeout (2 s by default) as
        # an error, as a loaded machine may make one: a minute instead.
        p = subprocess.run(["wrk", "-t", "2", "-c", "50", "-d", "2s", "--timeout", "60s",
                            "http://127.0.0.1:%d/" % self.port], capture_output=True, text=True,
                           timeout=60)
        text = p.stdout + p.stderr
        m = re.search(r"(\d+) requests in", text)
        check(p.returncode == 0 and m and int(m.group(1)) > 0, "wrk failed:\n%s" % text)
        errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        check(not errs or all(int(x) == 0 for x in errs.groups()[:3]),
              "wrk: %s" % errs.group(0) if errs else "")
        check("Non-2xx" not in text, "wrk: non-2xx answers:\n%s" % text)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
        return "wrk -c 50 -d 2s: no socket errors, all 2xx (%s rps)" % (rps.group(1) if rps else "?")

    def t_workers(self):
        if self.model not in PROCESS_MODELS + THREAD_MODELS:
            return None
        srv = Server(self.binary, self.model, self.args + ["--workers", "3"], self.tmp)
        try:
            check(srv.wait_ready(), "with --workers 3 the server did not start")
            check(get(srv.port, "/")[0] == 200, "with --workers 3: GET / failed")
            if self.model in PROCESS_MODELS:
                kids = [p for p, (pp, _) in descendants(srv.proc.pid).items() if pp == srv.proc.pid]
                check(len(kids) == 3, "--workers 3: %d child processes" % len(kids))
                what = "3 worker processes"
            else:
                # mn says READY from its first worker while sp_run may still
                # be starting the others: look again for a while.
                deadline = time.monotonic() + 5
                while True:
                    n = len(os.listdir("/proc/%d/task" % srv.proc.pid))
                    if n >= 4 or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                check(n >= 4, "--workers 3: %d threads, expected 3 workers and the main thread" % n)
                what = "%d threads for 3 workers" % n
            rc = srv.stop()
            check(rc == 0, "--workers 3: exit status %d after SIGTERM" % rc)
            return "--workers 3: " + what
        finally:
            srv.kill()

    def t_shutdown(self):
        # An idle keep-alive connection must not hold the stop up.
        idle = connect(self.port)
        idle.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        idle_f = idle.makefile("rb")
        check(read_response(idle_f)[0] == 200, "idle connection: first answer")
        results = [None] * 5

        def slow(i):
            try:
                results[i] = get(self.port, "/cgi-bin/hold.sh?%d" % i, timeout=60)[:3:2]
            except Exception as e:
                results[i] = repr(e)
        ts = [threading.Thread(target=slow, args=(i,)) for i in range(5)]
        for t in ts:
            t.start()
        # In flight for sure, however slow the machine: each one's script has
        # started, and answers only once released.
        started = [os.path.join(self.marks, "started.%d" % i) for i in range(5)]
        try:
            wait_until(lambda: all(os.path.exists(p) for p in started), 10,
                       "the five held requests' scripts start")
            self.srv.proc.send_signal(signal.SIGTERM)
            # Released once the server shows it is stopping (it closes the
            # idle connection; at its exit at the latest, which is checked
            # below), so that the stop comes while all five are held.
            select.select([idle], [], [], 10)
        finally:
            open(os.path.join(self.marks, "go"), "w").close()
        rc = self.srv.stop(signal_it=False)
        for t in ts:
            t.join()
        idle_end = idle_f.read()
        idle.close()
        check(results == [(200, b"released\n")] * 5,
              "requests in flight at SIGTERM: %r" % results)
        check(rc == 0, "exit status %d after SIGTERM" % rc)
        check(idle_end == b"", "the idle connection got %r" % idle_end)
        return "SIGTERM: 5 requests in flight answered, idle one closed, exit 0"


def make_tree(tmp):
    root = os.path.join(tmp, "root")
    cgi = os.path.join(tmp, "cgi")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(cgi)
    with open(os.path.join(root, "a.txt"), "w") as f:
        f.write("static file\n")
    big = os.urandom(3 * 1024 * 1024 + 123)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    with open(os.path.join(tmp, "secret.txt"), "w") as f:
        f.write("secret\n")
    os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "out.txt"))
    os.symlink(tmp, os.path.join(root, "outdir"))
    marks = os.path.join(tmp, "marks")
    os.makedirs(marks)
    scripts = {
        "env.sh": "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\n" + "".join(
            "echo \"%s=$%s\"\n" % (v, v) for v in (
                "REQUEST_METHOD", "QUERY_STRING", "CONTENT_LENGTH", "CONTENT_TYPE", "REMOTE_ADDR",
                "SERVER_PORT", "HTTP_X_TEST", "PATH_INFO", "GATEWAY_INTERFACE"))
                  + "printf 'BODY=%s\\n' \"$(cat)\"\n",
        "status.sh": "#!/bin/sh\nprintf 'Status: 404 Not Here\\nX-Script: status\\n"
                     "Content-Type: text/plain\\n\\nnot here\\n'\n",
        "cat.sh": "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nexec cat\n",
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
    return root, cgi, hashlib.sha256(big).hexdigest()


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    binary, model, srcdir = sys.argv[1:4]
    extra = sys.argv[4:]
    if extra[:1] == ["--deny-io-uring"]:
        Server.deny_uring = True
        extra = extra[1:]
    tmp = tempfile.mkdtemp(prefix="spindle-models-")
    try:
        root, cgi, big_sha = make_tree(tmp)
        args = ["--root", root, "--cgi-dir", cgi, "--header-timeout-ms", str(HEADER_TIMEOUT_MS),
                "--idle-timeout-ms", str(IDLE_TIMEOUT_MS)] + extra
        srv = Server(binary, model, args, tmp)
        try:
            port = srv.wait_ready()
        except Failure as e:
            srv.kill()
            print("FAIL: %s\n%s" % (e, srv.stderr_text()))
            print("0 passed, 1 failed")
            return 1
        if port is None:
            rc = srv.proc.wait()
            err = srv.stderr_text()
            if rc == 3 and "not built" in err:
                if os.path.exists(os.path.join(srcdir, model + ".c")):
                    print("FAIL: src/models/%s.c exists but the binary says: %s"
                          "(its object is in the library but not linked into spindle: "
                          "the weak table does not pull archive members)" % (model, err))
                    print("0 passed, 1 failed")
                    return 1
                print("skip: %s" % err.strip())
                print("1 skipped")
                return 0
            print("FAIL: the server exited with %d before READY:\n%s" % (rc, err))
            print("0 passed, 1 failed")
            return 1
        print("server: %s (%s%s)" % (srv.ready_line, " ".join(extra) or "defaults",
                                     ", io_uring denied" if Server.deny_uring else ""), flush=True)
        if Server.deny_uring and model == "uring" and "poller=epoll" not in srv.ready_line:
            srv.kill()
            print("FAIL: io_uring was denied but READY does not say poller=epoll: %r"
                  % srv.ready_line)
            print("0 passed, 1 failed")
            return 1
        suite = Suite(binary, model, args, tmp, srv)
        suite.big_sha = big_sha
        names = ["t_hello", "t_head", "t_static", "t_sleep", "t_cgi", "t_pipelining", "t_buffers",
                 "t_keepalive", "t_idle", "t_http10", "t_errors", "t_slowloris", "t_ab", "t_wrk",
                 "t_workers", "t_shutdown"]
        passed = failed = 0
        try:
            for n in names:
                t0 = time.monotonic()
                try:
                    msg = getattr(suite, n)()
                    if msg is None:
                        continue
                    print("ok: %s [%.1f s]" % (msg, time.monotonic() - t0), flush=True)
                    passed += 1
                except Exception as e:
                    print("FAIL: %s: %s: %s" % (n[2:], type(e).__name__, e), flush=True)
                    failed += 1
                if srv.proc.poll() is not None and n != "t_shutdown":
                    print("FAIL: the server died (status %s) during %s" % (srv.proc.returncode, n))
                    failed += 1
                    break
        finally:
            srv.kill()
        err = srv.stderr_text()
        if re.search(r"ERROR: \w+Sanitizer|runtime error:|LeakSanitizer", err):
            print("FAIL: sanitizer report:\n%s" % err[-4000:])
            failed += 1
        elif failed and err:
            print("server stderr:\n%s" % err[-2000:])
        print("%d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
