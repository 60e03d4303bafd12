"""bench/create.py: create + first execute (issue 14 §2, §4), zygote vs exec.

    /usr/bin/python3 bench/create.py            # ~1-2 min (1,000 idle VMs each way)
    /usr/bin/python3 bench/create.py --quick    # smaller counts, ~20 s
    /usr/bin/python3 bench/create.py --idle 10000

In one run, for bioxen-manager (nodes forked from its zygote, the default)
and bioxen-manager --no-zygote (every node exec'd), each with --spares 2 and
--spares 0, plain and full_isolation VMs:
  loop:  create_vm + execute("return 1") + close, one VM after another;
  burst: 200 create_vm + execute back to back, kept until the burst ends;
then idle memory at --idle VMs (summed node Pss, and kernel-accounted:
the MemAvailable delta and AnonPages + PageTables + KernelStack + Slab
deltas from /proc/meminfo), and the floor: fork() of a Lua-initialised C
parent whose child answers "return 1+1" on a pipe (bench/fork_floor.c,
compiled here with cc and pkg-config lua5.4). Prints p50/p90 in ms, and
ratios (zygote / exec, bioxen / floor). A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bioxen_side import locate_binaries  # noqa: E402
from stats import children_of, pct, pss_kib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIMITS = dict(memory_limit=16 << 20, timeout=5.0)


class Manager:
    """A bioxen-manager of our own (extra flags as given) and a client."""

    def __init__(self, *extra: str) -> None:
        from pylua_bioxen_vm import VMManager
        self.dir = tempfile.mkdtemp(prefix="bxbench-create-")
        sock = os.path.join(self.dir, "m.sock")
        self.proc = subprocess.Popen(
            [os.environ["BIOXEN_MANAGER"], "--socket", sock, "--exit-with-stdin", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line.startswith(b"READY"):
            raise RuntimeError("manager did not start: %r" % line)
        self.m = VMManager("unix:" + sock, start_timeout=20.0, **LIMITS)

    def hello(self) -> dict:
        return self.m._core.conn.call("hello", {})

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
            shutil.rmtree(self.dir, ignore_errors=True)


def settle(mgr: Manager, spares: int) -> None:
    """Untimed: wait (at most 5 s) until the spares are back."""
    end = time.monotonic() + 5.0
    while len(mgr.hello().get("spares") or []) < spares and time.monotonic() < end:
        time.sleep(0.002)


def loop(mgr: Manager, n: int, **kw) -> list:
    """ms of create_vm + first execute, each VM closed before the next."""
    out = []
    for i in range(n):
        t = time.perf_counter()
        vm = mgr.m.create_vm("l%d" % i, **kw)
        vm.execute("return 1")
        out.append((time.perf_counter() - t) * 1e3)
        vm.close()
    return out


def burst(mgr: Manager, n: int, **kw) -> tuple:
    """ms of each create_vm + first execute, n back to back, all kept; and
    the burst's total ms."""
    out, vms = [], []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        vm = mgr.m.create_vm("b%d" % i, **kw)
        vm.execute("return 1")
        out.append((time.perf_counter() - t) * 1e3)
        vms.append(vm)
    total = (time.perf_counter() - t0) * 1e3
    mgr.m.shutdown_all()
    return out, total


def meminfo() -> dict:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def kernel_kib(m: dict) -> int:
    return m["AnonPages"] + m["PageTables"] + m["KernelStack"] + m.get("Slab", 0)


def idle(n: int, *extra: str) -> str:
    """n idle plain VMs on a fresh manager (--spares 0): KiB per VM."""
    mgr = Manager("--spares", "0", *extra)
    try:
        time.sleep(0.2)
        m0 = meminfo()
        futs = []
        for i in range(n):
            futs.append(mgr.m.create_vm_async("idle%d" % i, memory_limit=4 << 20))
            if len(futs) >= 64:
                futs.pop(0).result(120)
        for f in futs:
            f.result(120)
        time.sleep(0.5)
        m1 = meminfo()
        z = mgr.hello().get("zygote")
        nodes = [p for p in children_of(mgr.proc.pid) if p != z]
        pss = sum(pss_kib(p) for p in nodes)
        return ("Pss %5.0f KiB/VM  kernel-accounted %5.0f KiB/VM  MemAvailable %5.0f KiB/VM (%d nodes)"
                % (pss / max(1, len(nodes)), (kernel_kib(m1) - kernel_kib(m0)) / n,
                   (m0["MemAvailable"] - m1["MemAvailable"]) / n, len(nodes)))
    except Exception as e:  # noqa: BLE001 - printed as the reason
        return "stopped: %s: %s" % (type(e).__name__, e)
    finally:
        mgr.close()


def fork_floor(n: int) -> list:
    """ms per fork + first answer of a Lua-initialised C parent; [] if it
    cannot be built here."""
    d = tempfile.mkdtemp(prefix="bxbench-floor-")
    exe = os.path.join(d, "fork_floor")
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "lua5.4"], capture_output=True,
                               text=True, check=True).stdout.split()
        subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "fork_floor.c"), *flags],
                       check=True, capture_output=True)
        out = subprocess.run([exe, str(n)], capture_output=True, text=True, check=True, timeout=60)
        return [int(x) / 1e6 for x in out.stdout.split()]
    except (OSError, subprocess.SubprocessError):
        return []
    finally:
        shutil.rmtree(d, ignore_errors=True)


def series(flags: tuple, spares: int, nloop: int, nburst: int) -> dict:
    mgr = Manager("--spares", str(spares), *flags)
    res = {}
    try:
        for name, kw in (("plain", {}), ("full", {"full_isolation": True})):
            loop(mgr, 20, **kw)                 # untimed warm-up
            settle(mgr, spares)
            res[name + " loop"] = loop(mgr, nloop, **kw)
            settle(mgr, spares)
            res[name + " burst"], res[name + " burst total"] = burst(mgr, nburst, **kw)
            settle(mgr, spares)
    finally:
        mgr.close()
    return res


def show(label: str, xs: list, ref: list | None, floor: list) -> None:
    line = "  %-13s p50 %6.3f ms  p90 %6.3f ms" % (label, pct(xs, .5), pct(xs, .9))
    if ref:
        line += "   zygote/exec p50 %.2f" % (pct(xs, .5) / pct(ref, .5))
    if floor:
        line += "   /floor %.1f" % (pct(xs, .5) / pct(floor, .5))
    print(line)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--idle", type=int, default=None, help="idle VMs for memory (1000; quick 200)")
    a = ap.parse_args(argv)
    print("manager:", locate_binaries())
    nloop, nburst = (100, 200) if a.quick else (300, 200)
    nidle = a.idle or (200 if a.quick else 1000)
    floor = fork_floor(nloop)
    runs = {}
    for spares in (2, 0):
        for mode, flags in (("zygote", ()), ("exec", ("--no-zygote",))):
            runs[mode, spares] = series(flags, spares, nloop, nburst)
    if floor:
        print("floor: fork of a Lua-initialised parent + first answer: p50 %.3f ms  p90 %.3f ms"
              % (pct(floor, .5), pct(floor, .9)))
    else:
        print("floor: not measured (needs cc and lua5.4's headers)")
    for spares in (2, 0):
        for mode in ("zygote", "exec"):
            r = runs[mode, spares]
            ref = runs["exec", spares] if mode == "zygote" else None
            print("%s, --spares %d:" % ("zygote (default)" if mode == "zygote" else "--no-zygote", spares))
            for key in ("plain loop", "plain burst", "full loop", "full burst"):
                show(key, r[key], ref[key] if ref else None, floor)
            print("  burst of %d totals: plain %.0f ms, full %.0f ms"
                  % (nburst, r["plain burst total"], r["full burst total"]))
    print("idle, %d VMs, zygote:      %s" % (nidle, idle(nidle)))
    print("idle, %d VMs, --no-zygote: %s" % (nidle, idle(nidle, "--no-zygote")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
