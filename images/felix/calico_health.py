#!/usr/bin/env python2.7
# -*- coding: utf-8 -*-
"""Docker health check of the calico:felix image: does the process answer?

  calico-health [felix|acl-manager] [--config FILE] [--address A] [--timeout S]

felix        sends a HEARTBEAT request to Felix's endpoint API (REP, port 9902, on the
             LocalAddress of its config) and waits for the HEARTBEAT reply: only Felix's
             own loop answers it, so a hung Felix fails.
acl-manager  subscribes to the ACL Manager's publisher (PUB, port 9906, on its
             LocalAddress) and waits for any publication (HEARTBEAT or ACLUPDATE). The
             ACL Manager publishes well inside Felix's 40 s idle timeout, or every Felix
             would tear down its subscription; so nothing within the timeout (45 s by
             default) means its loop is stuck. Its other socket, the 9905 ROUTER, answers
             only GETACLSTATE, which has side effects (a publication to every Felix).

With no mode, it is read from the container's main process (/proc/1/cmdline: calico-felix
or calico-acl-manager), and so is --config-file. Exit 0 when the process answered, 1 when
it did not (one line saying why, which Docker keeps in the health log).

ZeroMQ is spoken directly (ZMTP 3.0, NULL security, over a TCP socket), so the check needs
nothing beyond Python's standard library: it runs under the image's Python 2.7 and under
Python 3 alike, and takes no part in the agents' own ZeroMQ state.
"""
from __future__ import print_function

import argparse
import json
import os
import re
import socket
import struct
import sys
import time

FELIX_PORT = 9902
ACL_PUBLISH_PORT = 9906
DEFAULTS = {
    "felix": ("/etc/calico/felix.cfg", FELIX_PORT, 10.0),
    "acl-manager": ("/etc/calico/acl_manager.cfg", ACL_PUBLISH_PORT, 45.0),
}
PROGRAMS = {"calico-felix": "felix", "calico-acl-manager": "acl-manager"}


class Unhealthy(Exception):
    pass


def main_process():
    """(mode, config file) of the container's pid 1, each None when not found."""
    try:
        with open("/proc/1/cmdline", "rb") as f:
            argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except (IOError, OSError):
        return None, None
    mode = None
    config = None
    for i, arg in enumerate(argv):
        base = os.path.basename(arg)
        if mode is None and base in PROGRAMS:
            mode = PROGRAMS[base]
        if arg.startswith("--config-file="):
            config = arg.split("=", 1)[1]
        elif arg == "--config-file" and i + 1 < len(argv):
            config = argv[i + 1]
    return mode, config


def local_address(path):
    """LocalAddress of the [global] section of an INI file; 127.0.0.1 when absent or '*'."""
    section = None
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in ";#":
                    continue
                m = re.match(r"^\[(.+)\]$", line)
                if m:
                    section = m.group(1).strip()
                    continue
                m = re.match(r"^LocalAddress\s*[=:]\s*(\S+)", line)
                if m and section == "global" and m.group(1) not in ("*", "0.0.0.0"):
                    return m.group(1)
    except (IOError, OSError) as e:
        raise Unhealthy("cannot read %s: %s" % (path, e))
    return "127.0.0.1"


class Zmtp(object):
    """One ZMTP 3.0 connection with NULL security, as socket type `kind` (REQ or SUB)."""

    def __init__(self, address, port, kind, deadline):
        self.deadline = deadline
        self.where = "%s:%d" % (address, port)
        try:
            self.sock = socket.create_connection((address, port), self.left())
        except (socket.error, socket.timeout) as e:
            raise Unhealthy("cannot connect to %s: %s" % (self.where, e))
        greeting = (
            b"\xff" + b"\0" * 8 + b"\x7f"  # signature
            + b"\x03\x00"  # version 3.0
            + b"NULL" + b"\0" * 16  # mechanism
            + b"\x00"  # as-server
            + b"\0" * 31  # filler
        )
        self.send(greeting)
        peer = self.recv(64)
        if peer[0:1] != b"\xff" or peer[9:10] != b"\x7f" or peer[10:11] < b"\x03":
            raise Unhealthy("%s does not speak ZMTP 3" % self.where)
        kind = kind.encode("ascii")
        ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", len(kind)) + kind
        self.send_frame(ready, command=True)
        more, is_command, body = self.recv_frame()
        if not is_command or body[:6] != b"\x05READY":
            raise Unhealthy("%s refused the handshake: %r" % (self.where, body[:40]))

    def left(self):
        left = self.deadline - time.time()
        if left <= 0:
            raise socket.timeout("timed out")
        return left

    def send(self, data):
        self.sock.settimeout(self.left())
        self.sock.sendall(data)

    def recv(self, n):
        out = b""
        while len(out) < n:
            self.sock.settimeout(self.left())
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise Unhealthy("%s closed the connection" % self.where)
            out += chunk
        return out

    def send_frame(self, body, more=False, command=False):
        flags = (1 if more else 0) | (4 if command else 0)
        if len(body) > 255:
            self.send(struct.pack(">BQ", flags | 2, len(body)) + body)
        else:
            self.send(struct.pack(">BB", flags, len(body)) + body)

    def recv_frame(self):
        flags = ord(self.recv(1))
        if flags & 2:
            (size,) = struct.unpack(">Q", self.recv(8))
        else:
            size = ord(self.recv(1))
        return bool(flags & 1), bool(flags & 4), self.recv(size)

    def recv_message(self):
        """The frames of the next message (commands, such as PING, are skipped)."""
        frames = []
        while True:
            more, is_command, body = self.recv_frame()
            if is_command:
                continue
            frames.append(body)
            if not more:
                return frames

    def close(self):
        try:
            self.sock.close()
        except socket.error:
            pass


def check_felix(address, port, timeout):
    deadline = time.time() + timeout
    conn = Zmtp(address, port, "REQ", deadline)
    try:
        request = json.dumps({"type": "HEARTBEAT", "issued": int(time.time() * 1000)})
        conn.send_frame(b"", more=True)  # the REQ envelope's empty delimiter
        conn.send_frame(request.encode("utf-8"))
        frames = conn.recv_message()
    finally:
        conn.close()
    if len(frames) < 2 or frames[0] != b"":
        raise Unhealthy("malformed reply from %s: %r" % (conn.where, frames))
    try:
        reply = json.loads(frames[-1].decode("utf-8"))
    except ValueError:
        raise Unhealthy("reply from %s is not JSON: %r" % (conn.where, frames[-1][:80]))
    if not isinstance(reply, dict) or reply.get("type") != "HEARTBEAT":
        raise Unhealthy("unexpected reply from %s: %r" % (conn.where, reply))
    return "Felix at %s answered HEARTBEAT" % conn.where


def check_acl_manager(address, port, timeout):
    deadline = time.time() + timeout
    conn = Zmtp(address, port, "SUB", deadline)
    try:
        conn.send_frame(b"\x01")  # subscribe to every topic (ZMTP 3.0 form)
        frames = conn.recv_message()
    finally:
        conn.close()
    kind = "?"
    try:
        kind = json.loads(frames[-1].decode("utf-8")).get("type", "?")
    except (ValueError, AttributeError):
        pass
    return "the ACL Manager at %s published (%s)" % (conn.where, kind)


def main(argv):
    parser = argparse.ArgumentParser(prog="calico-health", description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", choices=sorted(DEFAULTS))
    parser.add_argument("--config", help="the agent's config file (for LocalAddress)")
    parser.add_argument("--address", help="connect here instead of the LocalAddress")
    parser.add_argument("--port", type=int)
    parser.add_argument("--timeout", type=float, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    found_mode, found_config = main_process()
    mode = args.mode or found_mode
    if mode is None:
        print("unhealthy: cannot tell Felix from the ACL Manager (give felix or acl-manager)")
        return 1
    default_config, default_port, default_timeout = DEFAULTS[mode]
    port = args.port or default_port
    timeout = args.timeout or default_timeout
    try:
        address = args.address or local_address(args.config or found_config or default_config)
        check = check_felix if mode == "felix" else check_acl_manager
        print("healthy: " + check(address, port, timeout))
        return 0
    except socket.timeout:
        print("unhealthy: no answer from %s within %g s" % ("%s:%d" % (address, port), timeout))
    except (Unhealthy, socket.error) as e:
        print("unhealthy: %s" % e)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
