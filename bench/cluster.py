#!/usr/bin/env python3
"""The cluster's figures, in one run, each beside its aim (issue 13):

1. NATS itself: a PING round trip to the server, and a request/reply that
   crosses the server twice (requester -> server -> responder -> server ->
   requester), timed with a raw text-protocol client (tests/python/natsraw.py)
   so that "2 NATS hops" is measured here, not assumed.
2. exec round trip, p50/p99: a VM on the manager we are connected to, and a
   VM on another host reached through it. Aim: remote p50 <= local p50 +
   the measured 2-hop p50.
3. mailbox messages/s: sender and receiver on one host, then on two. Aim:
   across hosts >= 50k msgs/s.
4. map throughput (chunks/s) with 1, 2 and 3 managers, each manager's
   process tree held to the same CPU share by a cgroup quota (cores / 4), so
   that scaling shows on two cores. Aim: 3 managers >= 2.4x one.

The cluster is a real one on this machine (tests/python/clusterenv.py: a
nats-server and managers in network namespaces when run as root). A part
whose feature is not built yet prints "not available yet" and what is
missing. A benchmark, not a test: nothing asserts; every wait has a deadline.
Usage: sudo /usr/bin/python3 bench/cluster.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "bench"))
if not os.environ.get("BIOXEN_MANAGER"):
    found = [p for p in glob.glob(str(REPO / "build*" / "manager" / "bioxen-manager"))
             if "asan" not in p and os.access(p, os.X_OK)]
    if found:
        os.environ["BIOXEN_MANAGER"] = max(found, key=os.path.getmtime)

from clusterenv import Cluster  # noqa: E402
from clusterproc import descendants  # noqa: E402
from pylua_bioxen_vm import VMNotFound  # noqa: E402
from natsraw import RawNats, echo_responder  # noqa: E402
from stats import pct, timed_calls  # noqa: E402

DEADLINE = 120.0
RESULTS: dict = {}

RECV_N = ("local n = 0 for i = 1, %d do local v = mailbox.recv(60) "
          "if v ~= i then error('out of order: ' .. tostring(v)) end n = n + 1 end return n")
SEND_N = "for i = 1, %d do mailbox.send('%s', i) end return mailbox.flush()"
MAP_FN = """function(seed)
  math.randomseed(seed)
  local inside, random = 0, math.random
  for _ = 1, %d do
    local x, y = random(), random()
    if x * x + y * y <= 1.0 then inside = inside + 1 end
  end
  return inside
end"""


def row(name, figure, aim="", verdict=""):
    print("  %-34s %-24s %-30s %s" % (name, figure, aim, verdict), flush=True)


def not_yet(name, what, key):
    row(name, "not available yet", "", "(%s; docs/cluster.md)" % what)
    RESULTS[key] = None


def ms(ns_samples, q):
    return pct(ns_samples, q) / 1e6


# -- 1. NATS hops ------------------------------------------------------------

def nats_hops(c, n):
    host, port = c.nats.host, c.nats.port
    with RawNats(host, port) as nc:
        pings = [nc.ping() * 1e9 for _ in range(n)]
    stop = threading.Event()
    t = echo_responder(host, port, "bench.echo", stop)
    try:
        with RawNats(host, port) as nc:
            inbox = "_INBOX.bench"
            nc.request("bench.echo", b"x", inbox=inbox)     # interest has spread
            reqrep = timed_calls(lambda: nc.request("bench.echo", b"x", inbox=inbox), n, 50)
    finally:
        stop.set()
        t.join(5.0)
    RESULTS["nats_ping_p50_ms"] = ms(pings, 0.5)
    RESULTS["nats_2hop_p50_ms"] = ms(reqrep, 0.5)
    row("NATS PING round trip", "p50 %.3f ms" % ms(pings, 0.5))
    row("NATS request/reply (2 hops)", "p50 %.3f ms p99 %.3f" % (ms(reqrep, 0.5),
                                                                 ms(reqrep, 0.99)))
    return ms(reqrep, 0.5)


# -- 2. exec round trip ------------------------------------------------------

def remote_vm(m, name, host):
    """A VM named ``name`` on ``host``, made through ``m``; None (and why)
    when the cluster cannot do that yet."""
    if not hasattr(m, "hosts"):
        return None, "manager.hosts() and create_vm(host=...)"
    try:
        vm = m.create_vm(name, host=host)
    except Exception as e:   # noqa: BLE001 - reported, not hidden
        return None, "create_vm(host=%r): %s" % (host, e)
    where = {v.get("name"): v.get("host") for v in m.list_vms(cluster=True)}
    if where.get(name) != host:
        return None, "create_vm(host=%r) made it on %r" % (host, where.get(name))
    return vm, None


def exec_rtt(c, n, two_hops):
    m1 = c.connect("m1")
    local = m1.create_vm("bench-local")
    lt = timed_calls(lambda: local.execute("return 1"), n, 100)
    RESULTS["exec_local_p50_ms"] = ms(lt, 0.5)
    row("exec round trip, local", "p50 %.3f ms p99 %.3f" % (ms(lt, 0.5), ms(lt, 0.99)))
    vm, why = remote_vm(m1, "bench-remote", "m2")
    if vm is None:
        return not_yet("exec round trip, remote", why, "exec_remote_p50_ms")
    rt = timed_calls(lambda: vm.execute("return 1"), n, 100)
    aim = ms(lt, 0.5) + two_hops
    RESULTS["exec_remote_p50_ms"] = ms(rt, 0.5)
    row("exec round trip, remote (m1->m2)", "p50 %.3f ms p99 %.3f" % (ms(rt, 0.5),
                                                                      ms(rt, 0.99)),
        "aim p50 <= %.3f ms" % aim, "met" if ms(rt, 0.5) <= aim else "MISSED")


# -- 3. mailbox --------------------------------------------------------------

def mailbox_rate(rx, tx, rx_name, n):
    t0 = time.perf_counter()
    fr = rx.execute_async(RECV_N % n, timeout=DEADLINE)
    ft = tx.execute_async(SEND_N % (n, rx_name), timeout=DEADLINE)
    ft.result(DEADLINE)
    got = fr.result(DEADLINE)
    return got / (time.perf_counter() - t0)


def mailboxes(c, n):
    m1 = c.connect("m1")
    rate = mailbox_rate(m1.create_vm("mb-rx"), m1.create_vm("mb-tx"), "mb-rx", n)
    RESULTS["mailbox_local_msgs_s"] = rate
    row("mailbox, one host", "%.0f msgs/s" % rate)
    rx, why = remote_vm(m1, "mb-far-rx", "m3")
    if rx is None:
        return not_yet("mailbox, across hosts", why, "mailbox_cross_msgs_s")
    try:
        rate = mailbox_rate(rx, m1.create_vm("mb-far-tx"), "mb-far-rx", n)
    except VMNotFound:      # the sender's mailbox does not reach other hosts
        return not_yet("mailbox, across hosts", "mailboxes across hosts",
                       "mailbox_cross_msgs_s")
    RESULTS["mailbox_cross_msgs_s"] = rate
    row("mailbox, across hosts (m1->m3)", "%.0f msgs/s" % rate, "aim >= 50000 msgs/s",
        "met" if rate >= 50000 else "MISSED")


# -- 4. map scaling ----------------------------------------------------------

def cpu_seconds(c, name):
    """CPU time used so far by ``name``'s process tree (its own, its live
    descendants', and what its reaped children used), from /proc."""
    tck = os.sysconf("SC_CLK_TCK")
    pid = c.managers[name].pid
    total = 0.0
    for i, p in enumerate([pid] + descendants(pid)):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime: fields 14-17, 11-14 after "pid (comm)"
        total += sum(int(x) for x in fields[11:13 if i else 15]) / tck
    return total


def map_once(k, chunks, points, share):
    """chunks/s of one map through m1 of a k-manager cluster, whether the
    chunks ran on more than one manager, and the CPU seconds the managers'
    cgroups used during it (None without cgroups): on a machine shared with
    other work a quota is a ceiling, not a guarantee, so chunks per CPU
    second tells scaling apart from a busy neighbour."""
    with Cluster(n=k, verbose=False) as c:
        if c.cgroups and share:
            for name in c.names:
                c.cgroup_quota(name, share)
        if c.cluster_flags:
            c.wait_cluster(timeout=20.0)
        m1 = c.connect("m1", pool_max=4)
        wait_hosts(m1, k)
        m1.map("function(x) return x end", range(4 * k), chunksize=1)    # warm the pools
        before = [c.connect(n).metrics().get("executions", 0) for n in c.names]
        cpu0 = [cpu_seconds(c, n) for n in c.names]
        t0 = time.perf_counter()
        m1.map(MAP_FN % points, range(1, chunks + 1), chunksize=1, timeout=DEADLINE)
        dt = time.perf_counter() - t0
        cpu1 = [cpu_seconds(c, n) for n in c.names]
        after = [c.connect(n).metrics().get("executions", 0) for n in c.names]
    spread = sum(1 for b, a in zip(before, after) if a > b) > 1
    cpu = None if None in cpu0 + cpu1 else sum(b - a for a, b in zip(cpu0, cpu1))
    RESULTS["map_%d_cpu_s_by_host" % k] = {n: round(b - a, 2) for n, a, b in
                                           zip(c.names, cpu0, cpu1)}
    RESULTS["map_%d_chunks_by_host" % k] = {n: a - b for n, a, b in zip(c.names, after, before)}
    return chunks / dt, spread, c.cgroups is not None, cpu


def wait_hosts(m, k, timeout=20.0):
    """Until m's heartbeat table has k live hosts (itself included): a map
    spreads only over the hosts m has heard."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and hasattr(m, "hosts"):
        if sum(1 for h in m.hosts() if h.get("alive")) >= k:
            return
        time.sleep(0.1)


def map_scaling(chunks, points):
    # a quarter of the cores each: three managers then use 3/4 of the machine
    # and leave the rest to the client and nats-server, so that what scales
    # (or does not) is bioxen, not the contention with its own driver
    share = min(1.0, (os.cpu_count() or 1) / 4.0)
    base = None
    for k in (1, 2, 3):
        rate, spread, quota, cpu = map_once(k, chunks, points, share)
        RESULTS["map_%d_chunks_s" % k] = rate
        RESULTS["map_%d_cpu_s" % k] = cpu
        name = "map, %d manager%s" % (k, "s" if k > 1 else "")
        held = ("%.2f CPU each" % share) if quota else "no cgroup quota"
        if cpu:     # of what the quotas allowed: k * share * the map's seconds
            allowed = k * (share if quota else 1.0) * chunks / rate
            held += ", used %.0f%%" % (100.0 * cpu / allowed)
            RESULTS["map_%d_chunks_per_cpu_s" % k] = chunks / cpu
        if k == 1:
            base = rate
            row(name, "%.1f chunks/s" % rate, held)
        elif not spread:
            RESULTS["map_%d_chunks_s" % k] = None
            row(name, "%.1f chunks/s" % rate, held,
                "not available yet (map spreading: every chunk ran on m1)")
        else:
            aim = "aim >= 2.4x one" if k == 3 else ""
            ok = "" if k != 3 else ("met" if rate / base >= 2.4 else "MISSED")
            row(name, "%.1f chunks/s (%.2fx)" % (rate, rate / base), aim,
                (ok + " " if ok else "") + "(" + held + ")")


def one_cluster(calls, msgs, exec_only=False):
    """Parts 1-3, on one 3-manager cluster (exec_only: parts 1-2)."""
    with Cluster(n=3) as c:
        print("bench/cluster.py: nats-server %s, 3 managers, %s; cores: %d" % (
            c.url, "each in its own network namespace" if c.isolated
            else "plain processes (%s)" % c.why_not_isolated, os.cpu_count() or 1))
        if not c.cluster_flags:
            print("  (the managers have no --cluster yet: they run unjoined)")
        else:
            c.wait_cluster(timeout=20.0)
        row("figure", "measured", "aim", "")
        two_hops = nats_hops(c, calls)
        exec_rtt(c, calls, two_hops)
        if not exec_only:
            mailboxes(c, msgs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts (~20 s)")
    ap.add_argument("--calls", type=int, help="round trips per figure (2000; quick 300)")
    ap.add_argument("--msgs", type=int, help="mailbox messages (100000; quick 10000)")
    ap.add_argument("--chunks", type=int, help="map chunks (24; quick 12)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--map-only", action="store_true", help="only the map scaling figures")
    ap.add_argument("--exec-only", action="store_true",
                    help="only the NATS hops and exec round trips (parts 1-2, ~5 s)")
    a = ap.parse_args()
    calls = a.calls or (300 if a.quick else 2000)
    msgs = a.msgs or (10000 if a.quick else 100000)
    chunks = a.chunks or (12 if a.quick else 24)
    points = 200_000 if a.quick else 1_000_000
    if not a.map_only:
        one_cluster(calls, msgs, a.exec_only)
    else:
        row("figure", "measured", "aim", "")
    if not a.exec_only:
        map_scaling(chunks, points)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(RESULTS, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
