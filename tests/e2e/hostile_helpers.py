#!/usr/bin/env python3
"""Hostile clients for tests/e2e/hostile_test.sh (standard library only; loopback only).

  flood PORT COUNT SECONDS [HOST]
      Keep COUNT TCP connections to HOST:PORT (default 127.0.0.1) open for SECONDS,
      sending nothing (no TLS ClientHello): whenever the server closes one, open
      it again. Prints one JSON line at the end: {"opened": N, "reopened": N,
      "open_at_end": N, "max_open": N}.
  slowloris PORT CAFILE SERVERNAME MODE [SECONDS]
      One TLS connection that completes its handshake, then trickles a request
      one byte per second: MODE "headers" trickles the request headers, MODE
      "body" sends complete headers of a POST with a 100 KB Content-Length and
      trickles the body. Prints {"closed_after": S, "sent": N, "handshake": S}:
      the seconds from connect until the server closed the connection (or
      SECONDS, 60 by default, if it never did), counted from before the TCP connect.
"""
import json
import selectors
import socket
import ssl
import sys
import time


def flood(port, count, seconds, host="127.0.0.1"):
    sel = selectors.DefaultSelector()
    opened = reopened = 0
    max_open = 0
    live = set()

    def open_one():
        nonlocal opened
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return False
        sel.register(s, selectors.EVENT_READ)
        live.add(s)
        opened += 1
        return True

    deadline = time.monotonic() + seconds
    want = count
    while time.monotonic() < deadline:
        # Top up to COUNT (at most 200 per round so the loop stays responsive).
        added = 0
        while len(live) < want and added < 200:
            if not open_one():
                break
            added += 1
        max_open = max(max_open, len(live))
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:  # closed by the server (or refused): open another one
                sel.unregister(s)
                live.discard(s)
                s.close()
                reopened += 1
    open_at_end = len(live)
    for s in list(live):
        sel.unregister(s)
        s.close()
    print(json.dumps({"opened": opened, "reopened": reopened, "open_at_end": open_at_end,
                      "max_open": max_open}))


def slowloris(port, cafile, servername, mode, seconds=60.0):
    ctx = ssl.create_default_context(cafile=cafile)
    t0 = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    s = ctx.wrap_socket(raw, server_hostname=servername)
    handshake = time.monotonic() - t0
    if mode == "headers":
        payload = ("POST /mutate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\n\r\n{}" % servername).encode()
        first, rest = b"", payload
    else:
        first = ("POST /mutate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: 100000\r\n\r\n" % servername).encode()
        rest = b" " * 100000
    sent = 0
    closed_after = None
    s.settimeout(1.0)
    try:
        if first:
            s.sendall(first)
        for i in range(len(rest)):
            if time.monotonic() - t0 > seconds:
                break
            s.sendall(rest[i:i + 1])
            sent += 1
            try:
                data = s.recv(4096)
                if not data:
                    closed_after = time.monotonic() - t0
                    break
            except socket.timeout:
                pass  # nothing to read: the server is still waiting for us
    except (OSError, ssl.SSLError):
        closed_after = time.monotonic() - t0
    finally:
        s.close()
    if closed_after is None:
        closed_after = seconds
    print(json.dumps({"closed_after": round(closed_after, 2), "sent": sent,
                      "handshake": round(handshake, 3)}))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("flood", "slowloris"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    a = sys.argv[2:]
    if sys.argv[1] == "flood":
        flood(int(a[0]), int(a[1]), float(a[2]), *(a[3:4]))
    else:
        slowloris(int(a[0]), a[1], a[2], a[3], *(float(x) for x in a[4:5]))
