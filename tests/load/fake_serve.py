"""A stand-in for `spindle serve` in the sweep's test: takes --model M
--port 0 [--backlog N], prints READY <port> like the real one, and behaves
as the model's name says:
  ok      serves every request (keep-alive)
  refuse  prints READY, then closes its listener: connections are refused
  die     exits with status 1 before READY
  crash   prints READY, serves, and dies by SIGKILL 0.3 s later (the test's
          levels last a second, so that is inside the measured run)
  stub    exits with status 3 (a model that is not built)"""
import argparse
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadlib import RawServer, refusing_port, response  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--backlog", type=int, default=1024)
a = ap.parse_args()

if a.model == "die":
    print("fake_serve: dying before READY", file=sys.stderr)
    sys.exit(1)
if a.model == "stub":
    sys.exit(3)

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
if a.model == "refuse":
    held = refusing_port()
    print(f"READY {held.getsockname()[1]} {a.model}", flush=True)
    stop.wait(60)
    sys.exit(0)
with RawServer(lambda path, hdrs: response(b"Hello, World!\n"), backlog=a.backlog) as srv:
    print(f"READY {srv.port} {a.model}", flush=True)
    if a.model == "crash":
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGKILL)
    stop.wait(60)
