#!/usr/bin/env python3
"""Mailbox throughput within one host and across hosts: one nats-server and
two bioxen managers on this machine (plain processes), VM -> VM, one
execute sends N numbered messages and another receives them (checking the
order). Messages per second, median of rounds.

A benchmark, not a test: nothing asserts. Every wait has a deadline; every
process it starts is stopped on exit.
Usage: /usr/bin/python3 bench/cluster_mail.py [--n 100000] [--rounds 3] [--senders 1]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
DEADLINE = 120.0

if not os.environ.get("BIOXEN_MANAGER"):
    found = [p for p in glob.glob(str(REPO / "build*" / "manager" / "bioxen-manager"))
             if "asan" not in p and os.access(p, os.X_OK)]
    if found:
        os.environ["BIOXEN_MANAGER"] = max(found, key=os.path.getmtime)

from pylua_bioxen_vm import VMManager  # noqa: E402

RECV = ("local bad, n = 0, %d for i = 1, n do local v, f = mailbox.recv(60) "
        "if v ~= i then bad = bad + 1 end end return bad")
RECV_MANY = ("local seen, bad, n = {}, 0, %d for i = 1, n do local v, f = mailbox.recv(60) "
             "local last = seen[f] or 0 if v ~= last + 1 then bad = bad + 1 end seen[f] = v end "
             "return bad")
SEND = "for i = 1, %d do mailbox.send(%r, i) end return mailbox.flush()"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    end = time.monotonic() + 15
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nats-server did not come up")


def start_manager(tmp, url, host):
    sock = os.path.join(tmp, host + ".sock")
    p = subprocess.Popen([os.environ["BIOXEN_MANAGER"], "--socket", sock, "--exit-with-stdin",
                          "--spares", "0", "--cluster", url, "--host-name", host],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=open(os.path.join(tmp, host + ".err"), "wb"))
    line = p.stdout.readline()
    if not line.startswith(b"READY"):
        raise RuntimeError("manager %s did not start: %r" % (host, line))
    return p, sock


def both_alive(client):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            if sum(1 for h in client.hosts() if h["alive"]) >= 2:
                return
        except Exception:   # "cluster unavailable" until the link is up
            pass
        time.sleep(0.1)
    raise RuntimeError("the managers never saw each other")


def run(recv_vm, senders, n, target):
    code = RECV % n if len(senders) == 1 else RECV_MANY % (n * len(senders))
    fut = recv_vm.execute_async(code, timeout=DEADLINE)
    t0 = time.perf_counter()
    futs = [s.execute_async(SEND % (n, target), timeout=DEADLINE) for s in senders]
    assert all(f.result(DEADLINE) is True for f in futs)
    bad = fut.result(DEADLINE)
    secs = time.perf_counter() - t0
    assert bad == 0, "%d out of order" % bad
    return n * len(senders) / secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--senders", type=int, default=1)
    a = ap.parse_args()
    nats = shutil.which("nats-server") or "/usr/sbin/nats-server"
    tmp = tempfile.mkdtemp(prefix="bioxen-bench-")
    port = free_port()
    srv = subprocess.Popen([nats, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                            os.path.join(tmp, "js")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    procs = []
    try:
        wait_port(port)
        url = "nats://127.0.0.1:%d" % port
        (p1, s1), (p2, s2) = start_manager(tmp, url, "m1"), start_manager(tmp, url, "m2")
        procs = [p1, p2]
        with VMManager(s1) as c1, VMManager(s2) as c2:
            both_alive(c1)
            both_alive(c2)
            rcv = c2.create_vm("rcv")
            local = [c2.create_vm("l%d" % i) for i in range(a.senders)]
            remote = [c1.create_vm("r%d" % i) for i in range(a.senders)]
            time.sleep(1.0)     # the names replica and the heartbeats settle
            for label, senders in (("within one host", local), ("across hosts   ", remote)):
                rates = [run(rcv, senders, a.n, "rcv") for _ in range(a.rounds)]
                print("%s  %d sender(s) x %d msgs: median %.0f msgs/s  (rounds: %s)"
                      % (label, a.senders, a.n, statistics.median(rates),
                         ", ".join("%.0f" % r for r in rates)))
    finally:
        for p in procs:
            p.stdin.close()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        srv.terminate()
        srv.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
