#!/usr/bin/env python3
"""VM -> VM messaging by mailbox and by LuaSocket (`net`, two networked VMs),
next to two plain lua5.4 processes talking LuaSocket over loopback:
messages per second (one execute sends N, the other receives N) and one-way
latency (a ping-pong run's time / round trips / 2, median of rounds).

A benchmark, not a test: nothing asserts. Every wait has a deadline; every
process it starts is stopped on exit.
Usage: /usr/bin/python3 bench/messaging.py [--n 100000] [--pings 2000] [--rounds 3]
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

# -- bioxen ------------------------------------------------------------------

RECV_N = ("local n = 0 for i = 1, %d do local v = mailbox.recv(60) "
          "if v ~= i then error('out of order: ' .. tostring(v)) end n = n + 1 end return n")
SEND_N = "for i = 1, %d do mailbox.send('rx', i) end return mailbox.flush()"
PONG = "for i = 1, %d do local v, f = mailbox.recv(60) mailbox.send(f, v) end return true"
PING = (
        "for i = 1, %d do mailbox.send('rx', i) local v = mailbox.recv(60) end return true")


def bioxen_throughput(m, n):
    rx, tx = m.get_vm("rx"), m.get_vm("tx")
    t0 = time.perf_counter()
    fr = rx.execute_async(RECV_N % n)
    ft = tx.execute_async(SEND_N % n)
    assert ft.result(DEADLINE) is True and fr.result(DEADLINE) == n
    return n / (time.perf_counter() - t0)


def bioxen_latency(m, pings):
    rx, tx = m.get_vm("rx"), m.get_vm("tx")
    fr = rx.execute_async(PONG % pings)
    t0 = time.perf_counter()
    tx.execute(PING % pings, timeout=DEADLINE)
    dt = time.perf_counter() - t0
    fr.result(DEADLINE)
    return dt / pings / 2 * 1e6    # mean one-way µs over the whole run


# LuaSocket mode: the same runs over `net` between networked VMs nrx/ntx;
# ntx's global `peer` is its connection to nrx (set up once in net_setup).
NET_RECV_N = ("local n = 0 for i = 1, %d do local v = net.recv(60) "
              "if v ~= i then error('out of order: ' .. tostring(v)) end n = n + 1 end return n")
NET_SEND_N = "for i = 1, %d do net.send(peer, i) end return true"
NET_PONG = "for i = 1, %d do local v, p = net.recv(60) net.send(p, v) end return true"
NET_PING = "for i = 1, %d do net.send(peer, i) net.recv(60) end return true"


def net_setup(m):
    rx = m.create_vm("nrx", networked=True)
    tx = m.create_vm("ntx", networked=True)
    port = rx.execute("return net.listen(0)")
    tx.execute("peer = net.connect('127.0.0.1', %d)" % port, timeout=DEADLINE)


def net_throughput(m, n):
    rx, tx = m.get_vm("nrx"), m.get_vm("ntx")
    t0 = time.perf_counter()
    fr = rx.execute_async(NET_RECV_N % n)
    ft = tx.execute_async(NET_SEND_N % n)
    assert ft.result(DEADLINE) is True and fr.result(DEADLINE) == n
    return n / (time.perf_counter() - t0)


def net_latency(m, pings):
    rx, tx = m.get_vm("nrx"), m.get_vm("ntx")
    fr = rx.execute_async(NET_PONG % pings)
    t0 = time.perf_counter()
    tx.execute(NET_PING % pings, timeout=DEADLINE)
    dt = time.perf_counter() - t0
    fr.result(DEADLINE)
    return dt / pings / 2 * 1e6


# -- plain lua5.4 + LuaSocket --------------------------------------------------

SERVER = r"""
local socket = require("socket")
local mode, n, port_file = arg[1], tonumber(arg[2]), arg[3]
local srv = assert(socket.bind("127.0.0.1", 0))
local _, port = srv:getsockname()
local f = assert(io.open(port_file .. ".tmp", "w")) f:write(port) f:close()
os.rename(port_file .. ".tmp", port_file)
srv:settimeout(60)
local c = assert(srv:accept())
c:setoption("tcp-nodelay", true)
c:settimeout(60)
for i = 1, n do
  local line = assert(c:receive("*l"))
  if mode == "pong" then assert(c:send(line .. "\n"))
  elseif tonumber(line) ~= i then error("out of order") end
end
if mode == "sink" then c:send("done\n") end
c:close()
"""

CLIENT = r"""
local socket = require("socket")
local mode, n, port = arg[1], tonumber(arg[2]), tonumber(arg[3])
local c = assert(socket.connect("127.0.0.1", port))
c:setoption("tcp-nodelay", true)
c:settimeout(60)
local t0 = socket.gettime()
for i = 1, n do
  assert(c:send(i .. "\n"))
  if mode == "pong" then assert(c:receive("*l")) end
end
if mode == "sink" then assert(c:receive("*l")) end
io.write(socket.gettime() - t0, "\n")
c:close()
"""


def plain_pair(mode, n):
    """Seconds for n messages ('sink') or n round trips ('pong')."""
    lua = shutil.which("lua5.4")
    with tempfile.TemporaryDirectory() as d:
        for name, text in (("server.lua", SERVER), ("client.lua", CLIENT)):
            Path(d, name).write_text(text)
        port_file = os.path.join(d, "port")
        srv = subprocess.Popen([lua, os.path.join(d, "server.lua"), mode, str(n), port_file])
        try:
            end = time.monotonic() + 10
            while not os.path.exists(port_file):
                if time.monotonic() > end or srv.poll() is not None:
                    raise RuntimeError("lua5.4 LuaSocket server did not start")
                time.sleep(0.01)
            port = Path(port_file).read_text().strip()
            out = subprocess.run([lua, os.path.join(d, "client.lua"), mode, str(n), port],
                                 capture_output=True, text=True, timeout=DEADLINE, check=True)
            srv.wait(DEADLINE)
            return float(out.stdout.strip())
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100000, help="messages per throughput run")
    ap.add_argument("--pings", type=int, default=2000, help="round trips per latency run")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    have_socket = shutil.which("lua5.4") and subprocess.run(
        ["lua5.4", "-e", "require('socket')"], capture_output=True).returncode == 0
    bx_tp, bx_lat, nt_tp, nt_lat, pl_tp, pl_lat = [], [], [], [], [], []
    with VMManager() as m:
        m.create_vm("rx")
        m.create_vm("tx")
        net_setup(m)
        bioxen_throughput(m, min(a.n, 5000))       # warm up
        net_throughput(m, min(a.n, 5000))
        for _ in range(a.rounds):
            bx_tp.append(bioxen_throughput(m, a.n))
            bx_lat.append(bioxen_latency(m, a.pings))
            nt_tp.append(net_throughput(m, a.n))
            nt_lat.append(net_latency(m, a.pings))
            if have_socket:
                pl_tp.append(a.n / plain_pair("sink", a.n))
                pl_lat.append(plain_pair("pong", a.pings) / a.pings / 2 * 1e6)
    med = statistics.median
    print("messages: %d small integers per run, %d round trips, %d rounds (medians)"
          % (a.n, a.pings, a.rounds))
    print("%-34s %14s %16s" % ("", "msgs/s", "one-way µs"))
    print("%-34s %14.0f %16.1f" % ("bioxen mailbox (VM -> VM)", med(bx_tp), med(bx_lat)))
    print("%-34s %14.0f %16.1f" % ("bioxen net/LuaSocket (VM -> VM)", med(nt_tp), med(nt_lat)))
    print("issue target, mailbox >= 100,000 msgs/s: %s"
          % ("met" if med(bx_tp) >= 1e5 else "NOT met"))
    if not have_socket:
        print("lua5.4 with LuaSocket not found: no plain pair measured")
        return 0
    print("%-34s %14.0f %16.1f" % ("lua5.4 pair, LuaSocket loopback", med(pl_tp), med(pl_lat)))
    # both ratios read "times worse than the plain pair" (below 1: better)
    print("ratios to the plain pair: msgs/s plain/bioxen, µs bioxen/plain")
    for label, tp, lat in (("mailbox", bx_tp, bx_lat), ("net", nt_tp, nt_lat)):
        print("  %-8s throughput %.2fx, latency %.2fx"
              % (label, med(pl_tp) / med(tp), med(lat) / med(pl_lat)))
    worst = max(med(pl_tp) / med(nt_tp), med(nt_lat) / med(pl_lat))
    print("issue target, net within 1.5x of the plain pair: %s (worst %.2fx)"
          % ("met" if worst <= 1.5 else "NOT met", worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
