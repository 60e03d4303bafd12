"""bench/pool.py: the warm paths of issue 6 — spare nodes, the pool, map, and
idle memory at scale. A benchmark, not a test: it prints, it asserts nothing.

    /usr/bin/python3 bench/pool.py            # full (10,000 idle VMs: ~1-2 min)
    /usr/bin/python3 bench/pool.py --quick    # smaller counts, ~15 s

Starts its own managers (bioxen-manager --spares 2 and --spares 0) and its own
redis-server, and stops them (and every node) on exit.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bioxen_side import locate_binaries  # noqa: E402
from peers import RedisServer, RespClient, resp_command  # noqa: E402
from stats import Deadline, children_of, pss_kib  # noqa: E402

LIMITS = dict(memory_limit=16 << 20, timeout=5.0)


class Manager:
    """A bioxen-manager of our own with the given --spares, and a client."""

    def __init__(self, spares: int, *extra: str) -> None:
        from pylua_bioxen_vm import VMManager
        self.dir = tempfile.mkdtemp(prefix="bxbench-pool-")
        sock = os.path.join(self.dir, "m.sock")
        self.proc = subprocess.Popen(
            [os.environ["BIOXEN_MANAGER"], "--socket", sock, "--spares", str(spares),
             "--exit-with-stdin", *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line.startswith(b"READY"):
            raise RuntimeError("manager did not start: %r" % line)
        self.m = VMManager("unix:" + sock, pool_max=os.cpu_count() or 2, **LIMITS)

    def spares(self) -> int:
        return len(self.m._core.conn.call("hello", {}).get("spares") or [])

    def close(self) -> None:
        try:
            self.m.close()
        finally:
            self.proc.stdin.close()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.rmdir(self.dir) if os.path.isdir(self.dir) and not os.listdir(self.dir) else None


def pct(xs: list, q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def create_times(mgr: Manager, n: int, wait_spares: int) -> list:
    """ms per create_vm; before each, wait (untimed) until the manager holds
    wait_spares spares again: a warm manager between bursts."""
    out = []
    for i in range(n):
        dl = Deadline(30.0)
        while mgr.spares() < wait_spares:
            dl.check("spares did not refill")
            time.sleep(0.001)
        t = time.perf_counter()
        mgr.m.create_vm("c%d" % i)
        out.append((time.perf_counter() - t) * 1e3)
    # Kept until the series ends: a destroy just before a create puts the
    # killed node's teardown (exit, reap, cgroup rmdir) on the next create.
    mgr.m.shutdown_all()
    return out


def run_times(mgr: Manager, n: int) -> list:
    m = mgr.m
    m.warmup_pool(timeout=60)
    for _ in range(200):
        m.run("return 1+1")
    out = []
    for _ in range(n):
        t = time.perf_counter()
        m.run("return 1+1")
        out.append((time.perf_counter() - t) * 1e6)
    return out


def map_rate(mgr: Manager, n: int, chunksize: Optional[int]) -> float:
    t = time.perf_counter()
    r = mgr.m.map("function(x) return x * x end", range(n), chunksize=chunksize)
    dt = time.perf_counter() - t
    assert r[-1] == (n - 1) ** 2
    return n / dt


def redis_map_rate(path: str, n: int, depth: int = 32) -> float:
    c = RespClient(path)
    try:
        t = time.perf_counter()
        for base in range(0, n, depth):
            batch = b"".join(resp_command(b"EVAL", b"return ARGV[1]*ARGV[1]", b"0",
                                          str(x).encode()) for x in range(base, base + depth))
            c.sock.sendall(batch)
            for _ in range(depth):
                c.read_reply()
        return n / (time.perf_counter() - t)
    finally:
        c.close()


def mem_available_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def idle_memory(n: int, *extra: str) -> str:
    """Create n idle VMs on a fresh manager; KiB per VM by node Pss and by
    MemAvailable, or why it could not run."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 64:
        return "cannot: RLIMIT_NOFILE hard limit %d < %d VMs + 64" % (hard, n)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open("/proc/sys/kernel/pid_max") as f:
        if int(f.read()) < n + 1000:
            return "cannot: kernel.pid_max is below %d" % (n + 1000)
    mgr = Manager(0, *extra)
    try:
        avail0 = mem_available_kib()
        mpss0 = pss_kib(mgr.proc.pid)
        futs = []
        for i in range(n):
            futs.append(mgr.m.create_vm_async("idle%d" % i, memory_limit=4 << 20))
            if len(futs) >= 64:
                futs.pop(0).result(120)
        for f in futs:
            f.result(120)
        nodes = children_of(mgr.proc.pid)
        pss = sum(pss_kib(p) for p in nodes)
        avail1 = mem_available_kib()
        mpss = pss_kib(mgr.proc.pid) - mpss0
        return ("%d VMs: node Pss %.0f KiB/VM, manager +%.1f KiB/VM, MemAvailable delta "
                "%.0f KiB/VM (%d nodes)" % (n, pss / max(1, len(nodes)), mpss / n,
                                            (avail0 - avail1) / n, len(nodes)))
    except Exception as e:  # noqa: BLE001 - printed as the reason
        return "%d VMs: stopped: %s: %s" % (n, type(e).__name__, e)
    finally:
        mgr.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    print("manager:", locate_binaries())
    ncreate, nrun, nmap = (100, 1000, 5000) if a.quick else (500, 5000, 50000)
    idle_counts = (300,) if a.quick else (1000, 10000)

    warm = Manager(2)
    try:
        c_warm = create_times(warm, ncreate, 2)
        r = run_times(warm, nrun)
        m1 = map_rate(warm, nmap // 10, 1)
        m256 = map_rate(warm, nmap, 256)
        mauto = map_rate(warm, nmap, None)
    finally:
        warm.close()
    cold = Manager(0)
    try:
        c_cold = create_times(cold, ncreate, 0)
    finally:
        cold.close()
    redis = RedisServer()
    try:
        rr = redis_map_rate(redis.path, nmap)
    finally:
        redis.close()

    print("create_vm, warm (--spares 2): p50 %.3f ms  p90 %.3f ms" % (pct(c_warm, .5), pct(c_warm, .9)))
    print("create_vm, --spares 0:        p50 %.3f ms  p90 %.3f ms" % (pct(c_cold, .5), pct(c_cold, .9)))
    print("  warm / cold p50: %.2f" % (pct(c_warm, .5) / pct(c_cold, .5)))
    print("manager.run('return 1+1'):    p50 %.0f us  p90 %.0f us" % (pct(r, .5), pct(r, .9)))
    print("map x*x, chunksize 1:   %9.0f items/s  (bioxen/redis %.2f)" % (m1, m1 / rr))
    print("map x*x, chunksize 256: %9.0f items/s  (bioxen/redis %.2f)" % (m256, m256 / rr))
    print("map x*x, chunksize auto:%9.0f items/s  (bioxen/redis %.2f)" % (mauto, mauto / rr))
    print("redis EVAL x*x, 32 deep: %8.0f items/s" % rr)
    for n in idle_counts:
        print("idle memory:", idle_memory(n))
    # how much of MemAvailable's figure is the per-VM cgroup (kernel memory)
    print("idle memory, --no-cgroups:", idle_memory(idle_counts[-1], "--no-cgroups"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
