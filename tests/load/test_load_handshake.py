"""A connection per request opens as any TCP client's does (SYN, SYN-ACK,
ACK), except that the handshake's last ACK travels with the request instead
of alone (TCP_QUICKACK off before connect): the server counts two segments
in, not three, by the time it has the request.  On loopback both ends' TCP
work runs on the client's CPU, so a segment fewer is work saved per
request."""
import socket
import struct
import sys

from loadlib import ConnServer, expect, fail, recv_head, response, run_load, skip

spindle = sys.argv[1]
if not sys.platform.startswith("linux") or not hasattr(socket, "TCP_INFO"):
    skip("TCP_INFO is Linux's")

# struct tcp_info (linux/tcp.h, append-only): tcpi_segs_out and
# tcpi_segs_in are the two u32 at byte 136.
SEGS_OFF = 136
N = 5
seen = []


def serve(c):
    recv_head(c)
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < SEGS_OFF + 8:
        seen.append(None)
    else:
        seen.append(struct.unpack_from("II", info, SEGS_OFF)[1])
    c.sendall(response(extra="Connection: close\r\n"))


with ConnServer(N, serve) as srv:
    rc, _, err = run_load(spindle, "-c", "1", "-n", str(N), "--no-keepalive", srv.url(),
                          timeout=60)
if rc != 0:
    fail(f"spindle load failed ({rc}): {err[-300:]}")
if None in seen:
    skip("this kernel's tcp_info has no segment counts")
expect(len(seen) == N, f"{N} connections served (got {len(seen)})")
expect(all(s == 2 for s in seen),
       f"the server had the request after 2 segments in (SYN, then the ACK carrying the "
       f"request) on every connection; got {seen}")
print("PASS")
