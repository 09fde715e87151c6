"""How a connection ends: by default with a FIN (the server's next read
says end of stream), with --close-rst with a reset (the server's next read
fails with ECONNRESET).  The server here keeps each connection open after
its response, so what it reads next is the client's close."""
import socket
import subprocess
import sys
import threading

from loadlib import expect, fail, recv_head, response

spindle = sys.argv[1]
N = 4


def run(extra):
    """Runs N requests without keep-alive; returns what the server's read
    after each response gave: 'fin', 'rst' or something else."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    ends = []

    def serve():
        for _ in range(N):
            c, _ = srv.accept()
            c.settimeout(10)
            try:
                recv_head(c)
                c.sendall(response())
                ends.append("fin" if c.recv(4096) == b"" else "data")
            except ConnectionResetError:
                ends.append("rst")
            except OSError as e:
                ends.append(repr(e))
            finally:
                c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p = subprocess.run([spindle, "load", "-c", "1", "-n", str(N), "--no-keepalive", *extra,
                        "--json", f"http://127.0.0.1:{port}/"],
                       capture_output=True, text=True, timeout=60)
    t.join(15)
    srv.close()
    if p.returncode != 0:
        fail(f"spindle load {' '.join(extra)} failed ({p.returncode}): {p.stderr[-300:]}")
    return ends, p.stdout


ends, out = run([])
expect(ends == ["fin"] * N, f"by default each connection ends with a FIN (got {ends})")
expect('"close_rst":false' in out, "--json says close_rst false by default")
ends, out = run(["--close-rst"])
expect(ends == ["rst"] * N, f"--close-rst: each connection ends with a reset (got {ends})")
expect('"close_rst":true' in out, "--json says close_rst true with --close-rst")
print("PASS")
