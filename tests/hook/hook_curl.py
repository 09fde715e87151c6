#!/usr/bin/env python3
"""curl, a real program no one here wrote, under `spindle run --hook`: it
still fetches the page.  Against a server that answers after 200 ms, its
wait (poll on the connection) must have parked its main coroutine; against
a fast one it may find the answer there already, so parks are reported.  Also with --threads-as-coroutines (curl's resolver thread then
runs as a coroutine, its getaddrinfo on the offload pool), and preloaded
without SPINDLE_HOOK_MAIN, where nothing runs on a coroutine and every call
is libc's.

The page comes from `spindle serve --model coro` when that model is built,
else nginx with a throw-away configuration, else `python3 -m http.server`.

usage: hook_curl.py SPINDLE HOOK_LIBRARY
"""
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_S = 0.2


class Slow(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(SLOW_S)
        body = b"slow hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "Hello, World!\\n"; }}
  }}
}}
"""


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(port):
    """The page, fetched directly; None while nothing answers."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as r:
            return r.read()
    except OSError:
        return None


def start_spindle(spindle):
    """`spindle serve --model coro` on a port it picks (no other program can
    take that port between a look and the bind); (proc, port, page), or
    (None, None, None) when it does not start (the model is not built)."""
    proc = subprocess.Popen([spindle, "serve", "--model", "coro", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    line = b""
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        if not select.select([proc.stdout], [], [], deadline - time.monotonic())[0]:
            break
        ch = os.read(proc.stdout.fileno(), 1)
        if not ch:
            break
        line += ch
    parts = line.split()
    if len(parts) >= 2 and parts[0] == b"READY" and parts[1].isdigit():
        port = int(parts[1])
        page = fetch(port)
        if page is not None:
            return proc, port, page
    proc.kill()
    proc.wait()
    return None, None, None


def start(cmd, port, cwd=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, None
        page = fetch(port)
        if page is not None:
            return proc, page
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    return None, None


def start_server(spindle, tmp):
    proc, port, page = start_spindle(spindle)
    if proc:
        return "spindle serve --model coro", proc, port, page
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                      else None)
    if nginx:
        port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=tmp, port=port))
        proc, page = start([nginx, "-p", tmp, "-c", conf], port)
        if proc:
            return "nginx", proc, port, page
    port = free_port()
    with open(os.path.join(tmp, "index.html"), "w") as f:
        f.write("Hello, World!\n")
    proc, page = start([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                       port, cwd=tmp)
    if proc:
        return "python3 -m http.server", proc, port, page
    fail("no HTTP server could be started (spindle serve, nginx, http.server)")


def curl(cmd_prefix, url, env=None):
    cmd = cmd_prefix + ["curl", "-s", "--max-time", "20", url]
    r = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    m = re.search(rb"spindle hook: (\d+) waits parked", r.stderr)
    parks = int(m.group(1)) if m else None
    return r.returncode, r.stdout, parks, r.stderr


def main():
    spindle, lib = sys.argv[1], sys.argv[2]
    if not shutil.which("curl"):
        print("SKIP: curl is not installed")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        name, proc, port, page = start_server(spindle, tmp)
        print("server: %s on port %d, page %r" % (name, port, page[:40]), flush=True)
        try:
            for url in ("http://127.0.0.1:%d/" % port, "http://localhost:%d/" % port):
                for opts in ([], ["--threads-as-coroutines"]):
                    rc, out, parks, err = curl([spindle, "run", "--hook", "--stats"] + opts +
                                               ["--"], url)
                    what = "spindle run --hook %s-- curl %s" % (" ".join(opts) + " " if opts
                                                                else "", url)
                    if rc != 0 or out != page:
                        fail("%s: exit %d, got %r, want %r; stderr %r" % (what, rc, out, page,
                                                                          err[-300:]))
                    if parks is None:
                        fail("%s: no stats line: %r" % (what, err[-300:]))
                    print("ok: %s fetched the page; %d waits parked its coroutines"
                          % (what, parks), flush=True)
            # A server that makes curl wait: the wait must park.
            slow = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
            threading.Thread(target=slow.serve_forever, daemon=True).start()
            url = "http://127.0.0.1:%d/" % slow.server_address[1]
            t0 = time.monotonic()
            rc, out, parks, err = curl([spindle, "run", "--hook", "--stats", "--"], url)
            slow.shutdown()
            if rc != 0 or out != b"slow hello\n" or not parks:
                fail("slow server: exit %d, got %r, parks %r" % (rc, out, parks))
            print("ok: a %d ms answer: curl's wait parked %d times (%.0f ms)"
                  % (SLOW_S * 1000, parks, (time.monotonic() - t0) * 1000), flush=True)
            # Preloaded, main not a coroutine: libc's calls, nothing parks.
            env = dict(os.environ, LD_PRELOAD=lib, SPINDLE_HOOK_STATS="1")
            env.pop("SPINDLE_HOOK_MAIN", None)
            rc, out, parks, err = curl([], "http://localhost:%d/" % port, env)
            if rc != 0 or out != page or parks != 0:
                fail("LD_PRELOAD without SPINDLE_HOOK_MAIN: exit %d, got %r, parks %r" % (
                    rc, out, parks))
            print("ok: preloaded without SPINDLE_HOOK_MAIN, curl is untouched (0 waits parked)",
                  flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
