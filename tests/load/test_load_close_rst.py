"""How a connection ends: by default with a FIN (the server's next read
says end of stream), with --close-rst with a reset (the server's next read
fails with ECONNRESET).  The server here keeps each connection open after
its response, so what it reads next is the client's close."""
import sys

from loadlib import ConnServer, expect, fail, recv_head, response, run_load

spindle = sys.argv[1]
N = 4


def run(extra):
    """Runs N requests without keep-alive; returns what the server's read
    after each response gave ('fin', 'rst' or something else), and the
    load's JSON result."""
    ends = []

    def serve(c):
        c.settimeout(10)
        try:
            recv_head(c)
            c.sendall(response())
            ends.append("fin" if c.recv(4096) == b"" else "data")
        except ConnectionResetError:
            ends.append("rst")
        except OSError as e:
            ends.append(repr(e))

    with ConnServer(N, serve) as srv:
        rc, r, err = run_load(spindle, "-c", "1", "-n", str(N), "--no-keepalive", *extra,
                              srv.url(), timeout=60)
    if rc != 0:
        fail(f"spindle load {' '.join(extra)} failed ({rc}): {err[-300:]}")
    return ends, r


ends, out = run([])
expect(ends == ["fin"] * N, f"by default each connection ends with a FIN (got {ends})")
expect(out.get("close_rst") is False, "--json says close_rst false by default")
ends, out = run(["--close-rst"])
expect(ends == ["rst"] * N, f"--close-rst: each connection ends with a reset (got {ends})")
expect(out.get("close_rst") is True, "--json says close_rst true with --close-rst")
print("PASS")
