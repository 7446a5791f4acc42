#!/usr/bin/env python3
"""Misbehaving peers for tests/e2e/test-hostile.sh (frames and chunks as in wire.py).

  hostile.py slowloris HOST PORT COUNT SECONDS
      Opens COUNT connections and sends a request head to each, one byte per connection per second,
      for at most SECONDS. Prints one line per connection: "closed SENT RECEIVED" (the server closed it
      after SENT bytes of head, answering RECEIVED bytes) or "open SENT".
  hostile.py huge-header HOST PORT BYTES
      Sends a GET head with one header of BYTES bytes. Prints the status line, or "(connection closed)".
  hostile.py endless-headers HOST PORT LIMIT
      Sends header lines until the server stops taking them or LIMIT bytes are sent. Prints "closed SENT"
      (the server closed the connection) or "open SENT".
  hostile.py auth-flood HOST PORT COUNT
      COUNT requests (GET, PUT, HEAD in turn) with wrong keys, one connection each. Prints the count of
      each status, e.g. "403:1000".
  hostile.py put-stall HOST PORT KEY SRC DST DPORT SECONDS
      A PUT that sends one UDP frame and half of a second one, then nothing. Prints "closed AFTER
      STATUS" (AFTER: seconds until the server closed it; STATUS: its answer or "none") or "open".
  hostile.py put-garbage HOST PORT KEY SRC DST DPORT KIND
      A PUT with one good frame from SRC, then one of KIND: length (length 5), vnet (a GSO type that
      does not exist), not-ip (IP version 7). Prints the status line, or "(connection closed)".
  hostile.py get-stall HOST PORT KEY SECONDS READ_SECONDS
      A GET that reads its response head, then nothing for SECONDS, then reads for READ_SECONDS. Prints
      the status line, then "read BYTES" once done.
  hostile.py get-offload HOST PORT KEY VALUE
      A GET announcing "x-tun-offload: VALUE" ("@N": N bytes of junk). Prints the status line and the
      x-tun-offload header of the answer.
  hostile.py udp-flood SRC DST PORT SECONDS
      Sends 1400-byte UDP datagrams from SRC to DST:PORT as fast as it can for SECONDS. Prints the count.
"""
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402


def connect(host, port):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(s, seconds=10):
    """Everything until the server closes, or what came in SECONDS."""
    data = b""
    end = time.time() + seconds
    try:
        while time.time() < end:
            s.settimeout(max(0.05, end - time.time()))
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def status_line(data):
    return data.split(b"\r\n")[0].decode(errors="replace") or "(connection closed)"


def cmd_slowloris(host, port, count, seconds):
    head = b"GET /tun HTTP/1.1\r\nHost: slow\r\nx-api-key: test\r\nX-Padding: " + b"a" * 200
    conns = [connect(host, port) for _ in range(int(count))]
    sent = [0] * len(conns)
    received = [0] * len(conns)
    closed = [False] * len(conns)
    end = time.time() + float(seconds)
    while time.time() < end and not all(closed):
        for i, s in enumerate(conns):
            if closed[i]:
                continue
            try:
                s.send(head[sent[i]:sent[i] + 1])
                sent[i] += 1
            except OSError:
                closed[i] = True
        tick = time.time() + 1
        while time.time() < tick:
            live = [s for i, s in enumerate(conns) if not closed[i]]
            if not live:
                break
            ready, _, _ = select.select(live, [], [], max(0, tick - time.time()))
            for s in ready:
                i = conns.index(s)
                try:
                    b = s.recv(4096)
                except OSError:
                    b = b""
                received[i] += len(b)
                if not b:
                    closed[i] = True
    for i in range(len(conns)):
        print(f"closed {sent[i]} {received[i]}" if closed[i] else f"open {sent[i]}")


def cmd_huge_header(host, port, nbytes):
    s = connect(host, port)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nx-api-key: test\r\nX-Huge: " + b"h" * int(nbytes) +
                  b"\r\n\r\n")
    except OSError:
        pass
    print(status_line(recv_all(s)))


def cmd_endless_headers(host, port, limit):
    s = connect(host, port)
    line = b"X-Endless-%08d: " + b"e" * 100 + b"\r\n"
    sent = 0
    n = 0
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nx-api-key: test\r\n")
        s.settimeout(10)
        while sent < int(limit):
            b = line % n
            s.sendall(b)
            sent += len(b)
            n += 1
    except OSError:
        print(f"closed {sent}")
        return
    print(f"open {sent}")


def cmd_auth_flood(host, port, count):
    counts = {}
    methods = ["GET", "PUT", "HEAD"]
    for i in range(int(count)):
        s = connect(host, port)
        key = "x-api-key: wrong-%08x\r\n" % random.getrandbits(32) if i % 4 else ""
        te = "Transfer-Encoding: chunked\r\n" if methods[i % 3] == "PUT" else ""
        try:
            s.sendall(f"{methods[i % 3]} /tun HTTP/1.1\r\nHost: h\r\n{key}{te}\r\n".encode())
        except OSError:
            pass
        st = status_line(recv_all(s, 5))
        code = st.split(" ")[1] if st.startswith("HTTP/") else st
        counts[code] = counts.get(code, 0) + 1
        s.close()
    print(" ".join(f"{k}:{v}" for k, v in sorted(counts.items())))


def put_head(host, port, key):
    return wire.request_head(host, port, key)


def cmd_put_stall(host, port, key, src, dst, dport, seconds):
    s = connect(host, port)
    one = wire.udp_frame(src, dst, 40000, int(dport), b"stall-whole")
    two = wire.udp_frame(src, dst, 40000, int(dport), b"stall-half" * 20)
    s.sendall(put_head(host, port, key) + wire.chunk(one) + wire.chunk(two[:len(two) // 2]))
    start = time.time()
    data = recv_all(s, float(seconds))
    if time.time() - start >= float(seconds):
        print("open")
        return
    print(f"closed {time.time() - start:.1f} {status_line(data) if data else 'none'}")


def cmd_put_garbage(host, port, key, src, dst, dport, kind):
    good = wire.udp_frame(src, dst, 40000, int(dport), b"before-garbage")
    bad = bytearray(wire.udp_frame(src, dst, 40000, int(dport), b"garbage-" + kind.encode()))
    if kind == "length":
        bad = struct.pack("<H", 5) + bytes(17)
    elif kind == "vnet":
        bad[2 + 1] = 0x42  # gso_type
    elif kind == "not-ip":
        bad[2 + 12] = 0x75
    s = connect(host, port)
    s.sendall(put_head(host, port, key))
    try:
        s.sendall(wire.chunk(good) + wire.chunk(bytes(bad)) + b"0\r\n\r\n")
    except OSError:
        pass
    print(status_line(recv_all(s)))


def get_request(host, port, key, extra=""):
    return f"GET /tun HTTP/1.1\r\nHost: {host}:{port}\r\nx-api-key: {key}\r\n{extra}\r\n".encode()


def read_head(s):
    data = b""
    s.settimeout(10)
    try:
        while b"\r\n\r\n" not in data:
            b = s.recv(1)  # byte by byte: not a byte of the body is taken
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def cmd_get_stall(host, port, key, seconds, read_seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    s.sendall(get_request(host, port, key))
    print(status_line(read_head(s)), flush=True)
    time.sleep(float(seconds))
    print(f"read {len(recv_all(s, float(read_seconds)))}", flush=True)


def cmd_get_offload(host, port, key, value):
    if value.startswith("@"):
        junk = "abcdefghijklmnopqrstuvwxyz0123456789,; "
        value = "".join(random.choice(junk) for _ in range(int(value[1:])))
    s = connect(host, port)
    s.sendall(get_request(host, port, key, f"x-tun-offload: {value}\r\n"))
    head = read_head(s).decode(errors="replace")
    offload = "(none)"
    for line in head.split("\r\n")[1:]:
        if line.lower().startswith("x-tun-offload:"):
            offload = line.split(":", 1)[1].strip() or "(empty)"
    print(status_line(head.encode()), offload)


def cmd_udp_flood(src, dst, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    payload = os.urandom(1400)
    end = time.time() + float(seconds)
    n = 0
    while time.time() < end:
        for _ in range(100):
            try:
                s.sendto(payload, (dst, int(port)))
                n += 1
            except OSError:
                pass
    print(n)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
