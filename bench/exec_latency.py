#!/usr/bin/python3
"""bioxen exec latency, throughput, create time and idle memory, beside Redis
EVAL, lupa, the seed's lua-over-pipes design and the physical floors.

    /usr/bin/python3 bench/exec_latency.py            # full run, 3 rounds
    /usr/bin/python3 bench/exec_latency.py --quick    # ~10 s smoke run (CI)

Prints one table of medians over --rounds rounds, with ratios and the issue-3
targets. Not part of the test run: it asserts nothing, and exits non-zero
only if it could not measure. See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bioxen_side as bx   # noqa: E402
import peers               # noqa: E402
from stats import median, pct   # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="small counts and one round: a ~10 s smoke run")
    p.add_argument("--rounds", type=int, help="rounds to take medians over (default 3, quick 1)")
    p.add_argument("--calls", type=int, help="round trips per round (default 10000)")
    p.add_argument("--tp-calls", type=int, help="pipelined calls per round (default 20000)")
    p.add_argument("--window", type=int, default=64, help="bioxen calls in flight (default 64)")
    p.add_argument("--depth", type=int, default=32, help="Redis pipeline depth (default 32)")
    p.add_argument("--idle-vms", type=int,
                   help="VMs created for create time and memory (default 200)")
    p.add_argument("--spawns", type=int, help="fork+exec / lua-pipe spawns per round (default 50)")
    p.add_argument("--json", metavar="FILE", help="also write every round's figures here")
    a = p.parse_args(argv)
    q = a.quick
    a.rounds = a.rounds or (1 if q else 3)
    a.calls = a.calls or (1000 if q else 10000)
    a.tp_calls = a.tp_calls or (2000 if q else 20000)
    a.idle_vms = a.idle_vms or (30 if q else 200)
    a.spawns = a.spawns or (10 if q else 50)
    if min(a.rounds, a.calls, a.tp_calls, a.idle_vms, a.spawns, a.window, a.depth) < 1:
        p.error("counts must be positive")
    return a


def attempt(rec: dict, notes: list, what: str, fn):
    """Run one measurement; a failure is noted and leaves NaN, the bench goes on."""
    try:
        fn(rec)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:   # noqa: BLE001 - one broken peer must not hide the rest
        notes.append("%s: %s: %s" % (what, type(e).__name__, e))


def us(ns_list, q):
    return pct(ns_list, q) / 1e3


def ms(ns_list, q):
    return pct(ns_list, q) / 1e6


def one_round(a, r: int, manager, redis, notes: list) -> dict:
    rec: dict = {}
    n = a.calls

    def floors(rec):
        t = peers.socketpair_latency(n)
        rec["rt_p50.floor"], rec["rt_p99.floor"] = us(t, .5), us(t, .99)
        t = peers.fork_exec_ns(a.spawns)
        rec["create_p50.floor"], rec["create_p99.floor"] = ms(t, .5), ms(t, .99)

    def redis_side(rec):
        t = peers.redis_latency(redis.path, n)
        rec["rt_p50.redis"], rec["rt_p99.redis"] = us(t, .5), us(t, .99)
        rec["tp.redis"] = peers.redis_throughput(redis.path, a.tp_calls, a.depth)
        rec["rss.redis"] = peers.pss_kib(redis.proc.pid)

    def lupa_side(rec):
        t = peers.lupa_latency(n)
        rec["rt_p50.lupa"], rec["rt_p99.lupa"] = us(t, .5), us(t, .99)
        rec["tp.lupa"] = 1e9 * len(t) / sum(t)
        t = peers.lupa_create(min(a.idle_vms, 200))
        rec["create_p50.lupa"], rec["create_p99.lupa"] = ms(t, .5), ms(t, .99)
        if r == 0:   # later rounds would reuse the memory freed by this one
            rec["idle.lupa"] = peers.lupa_idle_kib(a.idle_vms)

    def pipe_side(rec):
        t = peers.pipe_latency(n)
        rec["rt_p50.pipe"], rec["rt_p99.pipe"] = us(t, .5), us(t, .99)
        t, kib = peers.pipe_create(a.spawns)
        rec["create_p50.pipe"], rec["create_p99.pipe"] = ms(t, .5), ms(t, .99)
        rec["idle.pipe"] = kib

    def bioxen_rt(rec):
        t = bx.latency(manager, n, "r%d" % r)
        rec["rt_p50.bioxen"], rec["rt_p99.bioxen"] = us(t, .5), us(t, .99)

    def bioxen_tp(rec):
        rec["tp1.bioxen"] = bx.throughput(manager, 1, a.tp_calls, a.window, "r%da" % r)
        rec["tp4.bioxen"] = bx.throughput(manager, 4, a.tp_calls, a.window, "r%db" % r)

    def bioxen_raw(rec):
        t = bx.raw_latency(n, "r%d" % r)
        rec["raw_p50.bioxen"], rec["raw_p99.bioxen"] = us(t, .5), us(t, .99)
        rec["rawtp4.bioxen"] = bx.raw_throughput(4, a.tp_calls, a.depth, "r%d" % r)

    def bioxen_create(rec):
        t, kib = bx.create_and_idle(manager, a.idle_vms, "r%d" % r)
        rec["create_p50.bioxen"], rec["create_p99.bioxen"] = ms(t, .5), ms(t, .99)
        rec["idle.bioxen"] = kib

    attempt(rec, notes, "floors", floors)
    if redis:
        attempt(rec, notes, "redis", redis_side)
    attempt(rec, notes, "lupa", lupa_side)
    attempt(rec, notes, "lua-pipe", pipe_side)
    if manager:
        attempt(rec, notes, "bioxen round trip", bioxen_rt)
        attempt(rec, notes, "bioxen pipelined", bioxen_tp)
        attempt(rec, notes, "bioxen raw wire", bioxen_raw)
        attempt(rec, notes, "bioxen create/idle", bioxen_create)
    return rec


# -- the table ----------------------------------------------------------------

ROWS = [  # (label, bioxen key, redis, lupa, lua-pipe, floor, target, higher is better)
    ("round trip p50 (us)", "rt_p50.bioxen", "rt_p50.redis", "rt_p50.lupa", "rt_p50.pipe",
     "rt_p50.floor", ("redis", 2.0, "<= 2x Redis EVAL"), False),
    ("round trip p99 (us)", "rt_p99.bioxen", "rt_p99.redis", "rt_p99.lupa", "rt_p99.pipe",
     "rt_p99.floor", None, False),
    ("pipelined, 1 VM (calls/s)", "tp1.bioxen", "tp.redis", "tp.lupa", None, None, None, True),
    ("pipelined, 4 VMs (calls/s)", "tp4.bioxen", "tp.redis", "tp.lupa", None, None,
     ("redis", 0.5, ">= 50% Redis pipe"), True),
    ("raw wire round trip p50 (us)", "raw_p50.bioxen", "rt_p50.redis", None, None,
     "rt_p50.floor", None, False),
    ("raw wire round trip p99 (us)", "raw_p99.bioxen", "rt_p99.redis", None, None,
     "rt_p99.floor", None, False),
    ("raw wire, 4 VMs, 32 deep (calls/s)", "rawtp4.bioxen", "tp.redis", None, None, None,
     None, True),
    ("create + 1st result p50 (ms)", "create_p50.bioxen", None, "create_p50.lupa",
     "create_p50.pipe", "create_p50.floor", ("abs", 2.0, "< 2 ms"), False),
    ("create + 1st result p99 (ms)", "create_p99.bioxen", None, "create_p99.lupa",
     "create_p99.pipe", "create_p99.floor", None, False),
    ("idle memory per VM (KiB Pss)", "idle.bioxen", None, "idle.lupa", "idle.pipe", None,
     ("abs", 512.0, "< 512 KiB"), False),
]


def fmt(x) -> str:
    if x is None or x != x:
        return "-"
    if abs(x) >= 1000:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def ratio(a, b) -> str:
    if a is None or b is None or a != a or b != b or b == 0:
        return "-"
    return "%.2fx" % (a / b)


def verdict(target, val, redis_val, higher) -> str:
    if not target or val is None or val != val:
        return ""
    kind, bound, _ = target
    if kind == "redis":
        if redis_val is None or redis_val != redis_val:
            return "?"
        val, bound = val / redis_val, bound
    ok = val >= bound if higher else (val <= bound if kind == "redis" else val < bound)
    return "yes" if ok else "NO"


def print_table(med: dict, labels: dict) -> None:
    head = ("", "bioxen", "redis", "lupa", "lua-pipe", "floor",
            "vs redis", "vs lupa", "target", "met")
    rows = [head]
    for label, kb, kr, kl, kp, kf, target, higher in ROWS:
        g = lambda k: med.get(k) if k else None   # noqa: E731
        b = g(kb)
        rows.append((label, fmt(b), fmt(g(kr)), fmt(g(kl)), fmt(g(kp)), fmt(g(kf)),
                     ratio(b, g(kr)), ratio(b, g(kl)), target[2] if target else "",
                     verdict(target, b, g(kr), higher)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def header(a, mgr_path: str, labels: dict) -> None:
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True,
                             text=True).stdout.split(" sha")[0] if shutil.which(
                                 "redis-server") else "redis-server missing"
    print("bioxen bench: %s, %d CPUs, Python %s" % (platform.platform(), os.cpu_count(),
                                                    platform.python_version()))
    print("  manager %s; %s; %s" % (mgr_path, redis_v, labels["lupa"]))
    print("  rounds %d, round trips %d, pipelined %d (window %d; Redis depth %d), "
          "VMs %d, spawns %d" % (a.rounds, a.calls, a.tp_calls, a.window, a.depth,
                                 a.idle_vms, a.spawns))
    print("  bioxen VMs use memory_limit=16 MiB, timeout=5 s, no instruction limit\n")


def main(argv=None) -> int:
    a = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally below stops every child;
    # SIGINT too, even when a shell started us with it ignored.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mgr_path = bx.locate_binaries()
    labels = {"lupa": peers.lupa_label()}
    header(a, mgr_path, labels)
    notes: list = []
    manager = redis = None
    recs = []
    try:
        try:
            redis = peers.RedisServer()
        except Exception as e:   # noqa: BLE001
            notes.append("redis: %s" % e)
        try:
            manager = bx.open_manager()
        except Exception as e:   # noqa: BLE001
            notes.append("bioxen: cannot start the manager: %s: %s" % (type(e).__name__, e))
        for r in range(a.rounds):
            t0 = time.monotonic()
            recs.append(one_round(a, r, manager, redis, notes))
            print("  round %d/%d done in %.1f s" % (r + 1, a.rounds, time.monotonic() - t0),
                  file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping children", file=sys.stderr)
        return 130
    finally:
        if manager is not None:
            try:
                manager.close()
            except Exception as e:   # noqa: BLE001
                print("manager.close(): %s" % e, file=sys.stderr)
        if redis is not None:
            redis.close()
    keys = sorted({k for rec in recs for k in rec})
    med = {k: median(rec.get(k, float("nan")) for rec in recs) for k in keys}
    print()
    print_table(med, labels)
    print("\nmedians over %d round(s); ratios are bioxen / peer. lua-pipe: one lua5.4 "
          "child per VM over pipes (the seed design).\nfloor: socketpair echo round trip "
          "to another process; fork+exec+wait of `lua5.4 -e ''`.\nraw wire: NDJSON "
          "written straight to the manager's socket, no Python client (its cost is the "
          "difference)." % len(recs))
    for n in dict.fromkeys(notes):
        print("note: " + n)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "rounds": recs, "median": med, "notes": notes},
                      f, indent=1, allow_nan=True)
    return 0 if recs and "rt_p50.bioxen" in med else 1


if __name__ == "__main__":
    sys.exit(main())
