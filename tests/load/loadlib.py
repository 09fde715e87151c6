"""Helpers shared by the load generator's script tests: servers to aim at
(nginx-light with a temporary configuration, small Python servers) and a
way to run `spindle load` and read its JSON."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def fail(why):
    print(f"FAIL: {why}")
    sys.exit(1)


def free_port():
    """A port nobody listens on now (the kernel's choice, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def refusing_port():
    """A socket bound to a loopback port and never listened on: connects to
    that port are refused for as long as it is held, and no one else can
    take the port meanwhile (a port merely freed can be).  Closing a
    listener is no substitute: a thread blocked in accept() on it keeps it
    listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log;
worker_rlimit_nofile 20000;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "Hello, World!\\n"; }}
    }}
}}
"""


class Nginx:
    """nginx-light on a free high port, one worker, `return 200`; the test
    is skipped with a clear line when nginx is not installed."""

    def __init__(self, cpu=None):
        self.bin = shutil.which("nginx") or (
            "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
        if not self.bin:
            skip("nginx is not installed (apt-get install nginx-light)")
        self.cpu = cpu

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="spindle-load-nginx-")
        for _ in range(5):
            self.port = free_port()
            with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
                f.write(NGINX_CONF.format(d=self.dir, port=self.port))
            cmd = [self.bin, "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf"),
                   "-e", os.path.join(self.dir, "error.log")]
            if self.cpu is not None and shutil.which("taskset"):
                cmd = ["taskset", "-c", str(self.cpu)] + cmd
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            if wait_port(self.port, 5):
                return self
            self.proc.kill()
            self.proc.wait()
        fail("nginx did not start: " + self.proc.stderr.read().decode(errors="replace"))

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RawServer:
    """A threaded HTTP/1.1 server on raw sockets: one thread a connection,
    handler(path, headers) -> bytes to send (None: close without a word).
    Keep-alive unless the request says Connection: close."""

    def __init__(self, handler, backlog=1024):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.stopping = False

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.sock.close()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                hdrs = {}
                for l in lines[1:]:
                    k, _, v = l.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                out = self.handler(path, hdrs)
                if out is None:
                    return
                c.sendall(out)
                # HTTP/1.0 (ab sends it) closes unless keep-alive is asked.
                conn = hdrs.get("connection", "").lower()
                old = lines[0].endswith("HTTP/1.0")
                if (conn == "close" or (old and conn != "keep-alive")
                        or b"Connection: close" in out or out.startswith(b"HTTP/1.0")):
                    return
        except OSError:
            return
        finally:
            c.close()


class Serve:
    """`spindle serve --model MODEL --port 0 [ARGS]`, up until the block
    ends; on CPU `cpu` if given (taskset)."""

    def __init__(self, spindle, model="coro", args=(), cpu=None):
        self.cmd = [spindle, "serve", "--model", model, "--port", "0", *args]
        if cpu is not None:
            self.cmd = ["taskset", "-c", str(cpu)] + self.cmd

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            fail(f"{' '.join(self.cmd)}: no READY line ({line!r}, "
                 f"{self.proc.stderr.read()[-300:]!r})")
        self.port = int(line.split()[1])
        return self

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ConnServer:
    """A listener on a free loopback port whose thread accepts n connections
    one after another and hands each to on_conn(sock), closing it after:
    for the tests that watch how the client opens and ends a connection."""

    def __init__(self, n, on_conn):
        self.n = n
        self.on_conn = on_conn
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(15)
        self.sock.close()

    def _accept(self):
        for _ in range(self.n):
            c, _ = self.sock.accept()
            try:
                self.on_conn(c)
            finally:
                c.close()


def recv_head(c):
    """Reads from socket c up to the end of one request head; returns what
    it read (short if the peer closed first).  For one request a
    connection: bytes after the head are not kept apart."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d:
            break
        buf += d
    return buf


def response(body=b"ok\n", status="200 OK", extra=""):
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def run_load(spindle, *args, timeout=120):
    """Runs `spindle load ARGS --json`; returns (returncode, result dict or
    None, stderr)."""
    p = subprocess.run([spindle, "load", *args, "--json"], capture_output=True, text=True,
                       timeout=timeout)
    res = None
    if p.returncode == 0:
        try:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            fail(f"spindle load {' '.join(args)}: no JSON on stdout: {p.stdout!r}")
    return p.returncode, res, p.stderr


def expect(cond, what):
    if not cond:
        fail(what)
    print(f"ok: {what}")
