"""The lab's policy probes from one endpoint, all at once: run in the endpoint's network
namespace (`nsenter --net=...  python3 probe-batch.py`), it reads

  {"timeout": 1.5, "probes": [{"proto": "icmp"|"tcp"|"udp", "ip": "192.168.1.2", "port": 5432}]}

on stdin, sends every probe at once (a TCP connect, a UDP datagram, an ICMP echo request on
one raw socket) and prints one JSON line per probe, in order:

  {"outcome": "connected"|"refused"|"dropped"|"error", "ms": 3.1, "detail": "..."}

connected: the answer came back (TCP handshake, UDP echo, ICMP echo reply). refused: a TCP
reset, or an ICMP error (port or host unreachable, administratively prohibited): the packet
passed the policy but nothing took it. dropped: nothing came back within the timeout, which is
what a DROP looks like. One process per source endpoint instead of one per probe: a round of
a hundred probes takes one timeout, not the time to start a hundred processes.
"""
import errno
import json
import os
import select
import socket
import struct
import sys
import time

PAYLOAD = b"calico-lab"
REFUSED = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident, seq):
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(header + PAYLOAD), ident, seq) + PAYLOAD


class Batch:
    def __init__(self, probes, timeout):
        self.probes = probes
        self.t0 = time.monotonic()
        self.deadline = self.t0 + timeout
        self.results = [None] * len(probes)
        self.poller = select.poll()
        self.sockets = {}  # fd -> (index, socket)
        self.icmp = None
        self.echoes = {}  # (ip, seq) -> index
        self.ident = os.getpid() & 0xFFFF

    def done(self, i, outcome, detail=None):
        if self.results[i] is None:
            r = {"outcome": outcome, "ms": round((time.monotonic() - self.t0) * 1000, 1)}
            if detail:
                r["detail"] = detail[:200]
            self.results[i] = r

    def watch(self, i, sock, events):
        self.sockets[sock.fileno()] = (i, sock)
        self.poller.register(sock.fileno(), events)

    def start(self, i, p):
        proto, ip = p["proto"], p["ip"]
        try:
            if proto == "tcp":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                err = s.connect_ex((ip, int(p["port"])))
                if err in (0, errno.EINPROGRESS):
                    self.watch(i, s, select.POLLOUT)
                else:
                    self.tcp_verdict(i, err)
            elif proto == "udp":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setblocking(False)
                s.connect((ip, int(p["port"])))
                s.send(PAYLOAD)
                self.watch(i, s, select.POLLIN)
            elif proto == "icmp":
                if self.icmp is None and not self.open_icmp(i):
                    return
                seq = i & 0xFFFF
                self.echoes[(ip, seq)] = i
                self.icmp.sendto(echo_request(self.ident, seq), (ip, 0))
            else:
                self.done(i, "error", "unknown protocol %r" % proto)
        except OSError as e:
            self.done(i, "refused" if e.errno in REFUSED else "error", str(e))

    def open_icmp(self, i):
        """The raw ICMP socket (CAP_NET_RAW); without it, the probe is an error, not a verdict."""
        try:
            self.icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        except OSError as e:
            self.done(i, "error", "cannot open a raw ICMP socket: %s" % e)
            return False
        self.icmp.setblocking(False)
        self.poller.register(self.icmp.fileno(), select.POLLIN)
        return True

    def tcp_verdict(self, i, err):
        if err == 0:
            self.done(i, "connected")
        elif err in REFUSED:
            self.done(i, "refused", os.strerror(err))
        else:
            self.done(i, "error", os.strerror(err))

    def on_socket(self, fd):
        i, s = self.sockets.pop(fd)
        self.poller.unregister(fd)
        if s.type == socket.SOCK_STREAM:
            self.tcp_verdict(i, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
        else:
            try:
                s.recv(64)
                self.done(i, "connected")
            except OSError as e:
                self.done(i, "refused" if e.errno in REFUSED else "error", str(e))
        s.close()

    def on_icmp(self):
        while True:
            try:
                packet, (src, _) = self.icmp.recvfrom(2048)
            except BlockingIOError:
                return
            ihl = (packet[0] & 0x0F) * 4
            kind = packet[ihl]
            if kind == 0:  # echo reply
                ident, seq = struct.unpack("!HH", packet[ihl + 4 : ihl + 8])
                i = self.echoes.get((src, seq))
                if ident == self.ident and i is not None:
                    self.done(i, "connected")
            elif kind == 3 and len(packet) >= ihl + 8 + 20 + 8:  # unreachable, about our echo
                inner = packet[ihl + 8 :]
                inner_ihl = (inner[0] & 0x0F) * 4
                dst = socket.inet_ntoa(inner[16:20])
                ident, seq = struct.unpack("!HH", inner[inner_ihl + 4 : inner_ihl + 8])
                i = self.echoes.get((dst, seq))
                if ident == self.ident and i is not None:
                    self.done(i, "refused", "ICMP unreachable (code %d) from %s" % (packet[ihl + 1], src))

    def handle(self, timeout_ms):
        for fd, _ in self.poller.poll(timeout_ms):
            if self.icmp is not None and fd == self.icmp.fileno():
                self.on_icmp()
            elif fd in self.sockets:
                self.on_socket(fd)

    def run(self):
        for i, p in enumerate(self.probes):
            self.start(i, p)
        while any(r is None for r in self.results):
            left = self.deadline - time.monotonic()
            if left <= 0:
                break
            self.handle(left * 1000)
        # What the kernel already holds counts, even when this process ran late (a loaded
        # machine): only a probe with no answer by now is dropped.
        self.handle(0)
        for i in range(len(self.results)):
            self.done(i, "dropped")
        return self.results


def main():
    request = json.load(sys.stdin)
    for r in Batch(request["probes"], float(request["timeout"])).run():
        print(json.dumps(r))


if __name__ == "__main__":
    main()
