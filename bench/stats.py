"""Small measuring helpers shared by the bench: timing loops, percentiles,
deadlines and Pss from /proc. Used by exec_latency.py, peers.py, bioxen_side.py.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Iterable


class Deadline:
    """A wall-clock budget; check() raises TimeoutError once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def check(self, what: str) -> None:
        if time.monotonic() >= self.end:
            raise TimeoutError(what)


def timed_calls(fn: Callable[[], object], n: int, warm: int = 0) -> list[int]:
    """Call fn warm times untimed (page in, fill caches), then n times;
    return each timed call's duration in ns."""
    for _ in range(warm):
        fn()
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def pct(samples: Iterable[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no samples."""
    s = sorted(samples)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int(q * len(s)))]


def median(xs: Iterable[float]) -> float:
    xs = [x for x in xs if x == x]   # drop NaN: a round that could not run
    return statistics.median(xs) if xs else float("nan")


def pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (0 if it is gone).
    Pss splits shared pages among their sharers, so summing it over a group
    of processes counts each page once."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def children_of(pid: int) -> list[int]:
    """Direct children of pid, by scanning /proc (no CONFIG_PROC_CHILDREN needed)."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # field 4 (ppid) follows the ")" that closes the command name
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(d))
    return kids


def comm(pid: int) -> str:
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""
