"""cluster.py: a Monte Carlo estimate of pi, spread by ``map`` over the pools
of three bioxen managers that talk only through NATS.

It starts a nats-server and three managers m1..m3 on this machine (as root,
each manager in its own network namespace: tests/python/clusterenv.py, the
harness the tests use), runs the same map once on a single manager and once
through m1 of the three, draws a progress bar, and prints the work each host
did and the speed-up. Each manager is held to the same CPU share (a cgroup
quota) where the host allows, so that three managers on two cores show
what three hosts would.

With ``BIOXEN_CLUSTER=nats://host:4222`` it joins that cluster instead,
through an embedded manager (``VMManager(cluster=..., host_name=...)``).

On a clustered manager ``map`` needs nothing new: each chunk is one ``run``,
and the manager places each run on a live host by the free slots of its pool
(docs/cluster.md, "run and map"); a host lost mid-map costs its chunks a
retry elsewhere. Run on managers without ``--cluster``, what is missing is
named as such and the map runs where it can.
Run from the repo root after building:
    sudo /usr/bin/python3 examples/cluster.py
"""

import inspect
import os
import sys
import time
from concurrent.futures import as_completed

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))

from pylua_bioxen_vm import VMManager  # noqa: E402
from clusterenv import Cluster  # noqa: E402

CHUNKS = 24
POINTS_PER_CHUNK = 1_000_000
POOL = 4
MAP_FN = """function(seed)
  math.randomseed(seed)
  local inside, random = 0, math.random
  for _ = 1, %d do
    local x, y = random(), random()
    if x * x + y * y <= 1.0 then inside = inside + 1 end
  end
  return inside
end""" % POINTS_PER_CHUNK


def not_yet(what):
    print("not available yet: %s (planned, docs/cluster.md)" % what)


def progress(label, done, total, last):
    """A \\r bar on a terminal; otherwise a line per ~25%."""
    pct = 100 * done // total
    if sys.stdout.isatty():
        print("\r%-12s [%-20s] %3d%%" % (label, "#" * (pct // 5), pct),
              end="\n" if done == total else "", flush=True)
    elif pct // 25 > last[0] or done == total:
        last[0] = pct // 25
        print("%s: %d/%d chunks (%d%%)" % (label, done, total, pct), flush=True)


def run_map(manager, label):
    """The chunks through manager.map_async; (pi, seconds)."""
    manager.map("function(x) return x end", range(POOL), chunksize=1)   # warm the pool
    t0 = time.perf_counter()
    futs = manager.map_async(MAP_FN, range(1, CHUNKS + 1), chunksize=1, timeout=300)
    last = [-1]
    for done, _ in enumerate(as_completed(futs, timeout=600), 1):
        progress(label, done, len(futs), last)
    inside = sum(sum(f.result()) for f in futs)
    return 4.0 * inside / (CHUNKS * POINTS_PER_CHUNK), time.perf_counter() - t0


def executions(c):
    """Runs served so far by each manager of the local cluster ``c``."""
    out = {}
    for name in c.names:
        with VMManager("unix:" + c.managers[name].socket) as m:
            out[name] = m.metrics().get("executions", 0)
    return out


def wait_hosts(m, k, timeout=20.0):
    """Until m has heard k live hosts (itself included): runs spread only
    over the hosts a manager's heartbeat table holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and hasattr(m, "hosts"):
        if sum(1 for h in m.hosts() if h.get("alive")) >= k:
            return
        time.sleep(0.1)


def equal_shares(c):
    """Hold every manager of ``c`` to the same CPU share; the share or None."""
    if not c.cgroups:
        return None
    # a quarter of the cores each: three managers then use 3/4 of the machine
    # and leave the rest to the client and nats-server, so that what scales
    # (or does not) is bioxen, not the contention with its own driver
    share = min(1.0, (os.cpu_count() or 1) / 4.0)
    for name in c.names:
        c.cgroup_quota(name, share)
    return share


def one_manager():
    with Cluster(n=1, verbose=False) as c:
        share = equal_shares(c)
        pi, t = run_map(c.connect("m1", pool_max=POOL), "1 manager")
    return pi, t, share


def three_managers():
    with Cluster(n=3) as c:
        print("cluster: nats-server at %s, managers %s, %s" % (
            c.url, ", ".join(c.names),
            "each in its own network namespace" if c.isolated
            else "plain processes (%s)" % c.why_not_isolated))
        equal_shares(c)
        if c.cluster_flags:
            c.wait_cluster(timeout=20.0)
        else:
            not_yet("bioxen-manager --cluster; the managers run unjoined, so the "
                    "map below runs on m1 alone")
        m1 = c.connect("m1", pool_max=POOL)
        wait_hosts(m1, len(c.names))
        before = executions(c)
        pi, t = run_map(m1, "3 managers")
        after = executions(c)
        work = {n: after[n] - before[n] for n in c.names}
        hosts = getattr(m1, "hosts", None)
        if hosts is None:
            not_yet("manager.hosts()")
        else:
            for h in hosts():
                print("host %-4s alive=%s vms=%s executions=%s load=%s" % (
                    h.get("name"), h.get("alive"), h.get("vms"), h.get("executions"),
                    h.get("load")))
    print("per-host work (runs): " + ", ".join("%s %d" % kv for kv in work.items()))
    if sum(1 for v in work.values() if v) < 2:
        not_yet("map spreading over hosts; every chunk ran on m1")
    return pi, t


def external(url):
    """Join the cluster at ``url`` through an embedded manager."""
    if "cluster" not in inspect.signature(VMManager).parameters:
        not_yet("VMManager(cluster=..., host_name=...) to join BIOXEN_CLUSTER=%s" % url)
        sys.exit(2)
    with VMManager(cluster=url, host_name="example-%d" % os.getpid(), pool_max=POOL) as m:
        if not hasattr(m, "hosts"):
            not_yet("manager.hosts()")
        else:
            print("hosts:", ", ".join(h["name"] for h in m.hosts() if h.get("alive")))
        pi, t = run_map(m, "cluster")
        print("pi ~= %.6f in %.2f s over the cluster at %s" % (pi, t, url))


def main():
    url = os.environ.get("BIOXEN_CLUSTER")
    if url:
        return external(url)
    pi1, t1, share = one_manager()
    print("each manager held to %s" % ("%.2f CPU" % share if share else
                                        "no quota (no cpu cgroup controller here)"))
    pi3, t3 = three_managers()
    assert pi1 == pi3, "the same seeds must give the same answer"
    print("points: %d in %d chunks, cores: %d" % (CHUNKS * POINTS_PER_CHUNK, CHUNKS,
                                                 os.cpu_count() or 1))
    print("pi ~= %.6f (error %.2e)" % (pi3, abs(pi3 - 3.141592653589793)))
    print("1 manager : %.2f s" % t1)
    print("3 managers: %.2f s" % t3)
    print("speed-up: %.2fx" % (t1 / t3))


if __name__ == "__main__":
    main()
