"""Every failure is counted under its kind, never dropped: refused
connections, malformed and cut responses, timeouts, non-2xx statuses; and
chunked bodies and servers that close after each response are handled
without errors."""
import sys
import time

from loadlib import RawServer, expect, refusing_port, response, run_load

spindle = sys.argv[1]

CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nHello\r\n9\r\n, World!\n\r\n0\r\n\r\n")


def handler(path, hdrs):
    if path == "/chunked":
        return CHUNKED
    if path == "/close":
        return response(extra="Connection: close\r\n")
    if path == "/http10":
        return b"HTTP/1.0 200 OK\r\n\r\nuntil the close"
    if path == "/404":
        return response(b"no\n", "404 Not Found")
    if path == "/garbage":
        return b"SSH-2.0-OpenSSH\r\n\r\n"
    if path == "/cut":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort"
    if path == "/drop":
        return None
    if path == "/hang":
        time.sleep(1.0)
        return response()
    return response()


with RawServer(handler) as srv:
    for path in ("/chunked", "/close", "/http10"):
        rc, r, err = run_load(spindle, srv.url(path), "-c", "4", "-n", "300")
        expect(rc == 0 and r["requests"] == 300 and r["errors"] == 0,
               f"{path}: 300 requests, no errors (got {r and r['requests']}, "
               f"{r and r['errors']} errors)")

    rc, r, err = run_load(spindle, srv.url("/404"), "-c", "2", "-n", "50")
    expect(r["requests"] == 50 and r["errors_status"] == 50 and r["errors"] == 50,
           f"404s count as status errors ({r['errors_status']})")

    for path in ("/garbage", "/cut", "/drop"):
        rc, r, err = run_load(spindle, srv.url(path), "-c", "2", "-n", "20")
        expect(rc == 0 and r["requests"] == 0 and r["errors_read"] == 20,
               f"{path}: 20 read errors (got {r and r['errors_read']}, "
               f"{r and r['errors']} in all)")

    rc, r, err = run_load(spindle, srv.url("/hang"), "-c", "2", "-n", "4", "--timeout",
                          "200ms")
    expect(rc == 0 and r["errors_timeout"] == 4 and r["requests"] == 0,
           f"a server slower than --timeout: 4 timeouts (got {r and r['errors_timeout']})")

    # A duration that ends while requests wait: in flight, not errors.
    rc, r, err = run_load(spindle, srv.url("/hang"), "-c", "3", "-d", "300ms")
    expect(rc == 0 and r["errors"] == 0 and r["unfinished"] == 3,
           f"requests cut by the end of the run are reported as unfinished, not errors "
           f"(unfinished {r and r['unfinished']}, errors {r and r['errors']})")

held = refusing_port()
port = held.getsockname()[1]
rc, r, err = run_load(spindle, f"http://127.0.0.1:{port}/", "-c", "2", "-n", "10")
expect(rc == 0 and r["errors_connect"] == 10 and r["requests"] == 0,
       f"a closed port: 10 connect errors (got {r and r['errors_connect']})")
# A connection per request sends without waiting for the handshake; the
# refusal then comes back from the send, and is still the connect's.
rc, r, err = run_load(spindle, f"http://127.0.0.1:{port}/", "-c", "2", "-n", "10",
                      "--no-keepalive")
held.close()
expect(rc == 0 and r["errors_connect"] == 10 and r["errors_write"] == 0 and r["requests"] == 0,
       f"a closed port without keep-alive: 10 connect errors, no write errors (got "
       f"{r and r['errors_connect']} connect, {r and r['errors_write']} write)")
print("PASS")
