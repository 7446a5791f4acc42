#!/usr/bin/env python3
"""A hand-written tapotun protocol client and test helpers for the end-to-end suite (no curl).

  wire.py put HOST PORT KEY SRC DST DPORT COUNT [--split every-byte|whole] [--bad-frame]
      PUT COUNT UDP frames (payload "golden-<i>") from SRC to DST:DPORT as a chunked body; with
      every-byte each byte of the body is its own HTTP chunk and its own TCP write. Prints the status
      line of the response. --bad-frame sends a frame with length 5 after the good ones.
  wire.py put-hold HOST PORT KEY SRC DST DPORT FIFO
      PUT that stays open: sends one frame per line read from FIFO (the line is the payload), "END"
      finishes the request. Prints the status line of the response.
  wire.py udp-listen ADDR PORT OUT SECONDS
      Receives UDP datagrams for SECONDS and writes each payload as a line to OUT.
  wire.py udp-send SRC DST PORT PAYLOAD [MARK]
      Sends one UDP datagram from SRC (bound) to DST:PORT, with SO_MARK when MARK is given.
  wire.py blast-recv ADDR PORT
      Accepts one TCP connection, reads to EOF, prints "<bytes> <sha256>".
  wire.py blast-send ADDR PORT BYTES
      Connects and sends BYTES random bytes, prints "<bytes> <sha256>".
"""
import hashlib
import os
import socket
import struct
import sys
import time


def ip_checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(src, dst, sport, dport, payload):
    """length (u16 LE) + zero virtio-net header + IPv4/UDP packet (UDP checksum 0: allowed in IPv4)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", ip_checksum(hdr)) + hdr[12:]
    packet = hdr + udp
    return struct.pack("<H", len(packet)) + bytes(12) + packet


def request_head(host, port, key):
    return (f"PUT /tun HTTP/1.1\r\nHost: {host}:{port}\r\nx-api-key: {key}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()


def read_status(s):
    s.settimeout(10)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data.split(b"\r\n")[0].decode(errors="replace") or "(connection closed)"


def chunk(b):
    return b"%x\r\n" % len(b) + b + b"\r\n"


def cmd_put(host, port, key, src, dst, dport, count, *opts):
    split = "whole"
    if "--split" in opts:
        split = opts[opts.index("--split") + 1]
    body = b"".join(udp_frame(src, dst, 40000, int(dport), b"golden-%d" % i) for i in range(int(count)))
    if "--bad-frame" in opts:
        body += struct.pack("<H", 5) + bytes(17)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(request_head(host, port, key))
    try:
        if split == "every-byte":
            for i in range(len(body)):
                s.sendall(chunk(body[i:i + 1]))
        else:
            s.sendall(chunk(body))
        s.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    print(read_status(s))


def cmd_put_hold(host, port, key, src, dst, dport, fifo):
    s = socket.create_connection((host, int(port)))
    s.sendall(request_head(host, port, key))
    with open(fifo) as f:
        for line in f:
            line = line.strip()
            if line == "END":
                break
            try:
                s.sendall(chunk(udp_frame(src, dst, 40000, int(dport), line.encode())))
            except (BrokenPipeError, ConnectionResetError):
                print("(connection closed)")
                return
    s.sendall(b"0\r\n\r\n")
    print(read_status(s))


def cmd_udp_listen(addr, port, out, seconds):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    end = time.time() + float(seconds)
    with open(out, "w") as f:
        while time.time() < end:
            s.settimeout(max(0.05, end - time.time()))
            try:
                data = s.recv(65535)
            except socket.timeout:
                continue
            f.write(data.decode(errors="replace") + "\n")
            f.flush()


def cmd_udp_send(src, dst, port, payload, mark=None):
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    if mark is not None:
        s.setsockopt(socket.SOL_SOCKET, 36, int(mark))  # SO_MARK
    s.bind((src, 0))
    s.sendto(payload.encode(), (dst, int(port)))


def cmd_blast_recv(addr, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, int(port)))
    srv.listen(1)
    c, _ = srv.accept()
    h = hashlib.sha256()
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    print(n, h.hexdigest())


def cmd_blast_send(addr, port, nbytes):
    nbytes = int(nbytes)
    s = socket.create_connection((addr, int(port)))
    h = hashlib.sha256()
    block = 1 << 20
    sent = 0
    while sent < nbytes:
        b = os.urandom(min(block, nbytes - sent))
        h.update(b)
        s.sendall(b)
        sent += len(b)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    print(sent, h.hexdigest())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
