"""distributed_compute.py: Monte Carlo estimate of pi fanned over 8 VMs.

The same work (N random points, split into chunks) runs once on a single VM
and once spread over 8 VMs with futures; it prints pi and the speed-up.
Then it runs again through the manager's pool with ``map_async`` (no VMs to
name or create), drawing a progress bar as the chunks complete.
Run from the repo root after building:
    /usr/bin/python3 examples/distributed_compute.py
"""

import os
import sys
import time
from concurrent.futures import as_completed

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from pylua_bioxen_vm import VMManager  # noqa: E402

WORKERS = 8
CHUNKS = 32
POINTS_PER_CHUNK = 1_000_000

KERNEL = """
function count_inside(seed, n)
  math.randomseed(seed)
  local inside, random = 0, math.random
  for _ = 1, n do
    local x, y = random(), random()
    if x * x + y * y <= 1.0 then inside = inside + 1 end
  end
  return inside
end
"""


def run(vms):
    """Fan CHUNKS calls over ``vms`` round-robin; return (pi, seconds)."""
    t0 = time.perf_counter()
    futs = [vms[i % len(vms)].call_async("count_inside", i + 1, POINTS_PER_CHUNK)
            for i in range(CHUNKS)]
    inside = sum(f.result(timeout=300) for f in futs)
    return 4.0 * inside / (CHUNKS * POINTS_PER_CHUNK), time.perf_counter() - t0


# The kernel as a Lua function value, for the pool's map (runs start fresh).
MAP_FN = "function(seed)\n%s\nreturn count_inside(seed, %d) end" % (KERNEL, POINTS_PER_CHUNK)


def progress(done: int, total: int, last: list) -> None:
    """A \\r bar on a terminal; otherwise a line per ~10%."""
    pct = 100 * done // total
    if sys.stdout.isatty():
        bar = "#" * (pct // 5)
        print("\rpool map [%-20s] %3d%%" % (bar, pct), end="\n" if done == total else "",
              flush=True)
    elif pct // 10 > last[0] or done == total:
        last[0] = pct // 10
        print("pool map: %d/%d chunks (%d%%)" % (done, total, pct), flush=True)


def run_map(manager) -> tuple:
    """The same chunks through manager.map_async; return (pi, seconds)."""
    t0 = time.perf_counter()
    futs = manager.map_async(MAP_FN, range(1, CHUNKS + 1), chunksize=2, timeout=300)
    last = [-1]
    for done, _ in enumerate(as_completed(futs, timeout=600), 1):
        progress(done, len(futs), last)
    inside = sum(sum(f.result()) for f in futs)
    return 4.0 * inside / (CHUNKS * POINTS_PER_CHUNK), time.perf_counter() - t0


def main() -> None:
    with VMManager(timeout=120.0, pool_max=WORKERS) as manager:
        vms = [f.result(timeout=60) for f in
               [manager.create_vm_async("worker-%d" % i) for i in range(WORKERS)]]
        for vm in vms:
            vm.execute(KERNEL)
        pi1, t1 = run(vms[:1])
        pi8, t8 = run(vms)
        assert pi1 == pi8, "same seeds must give the same answer"
        print("points: %d in %d chunks, cores: %d" % (CHUNKS * POINTS_PER_CHUNK, CHUNKS,
                                                     os.cpu_count() or 1))
        print("pi ~= %.6f (error %.2e)" % (pi8, abs(pi8 - 3.141592653589793)))
        print("1 VM : %.2f s" % t1)
        print("%d VMs: %.2f s" % (WORKERS, t8))
        print("speed-up: %.2fx" % (t1 / t8))
        pim, tm = run_map(manager)
        assert pim == pi1, "the pool computes the same chunks"
        print("pool map over %d VMs: %.2f s" % (WORKERS, tm))
        m = manager.metrics()
        print("manager: %d executions, p50 %.1f ms, p99 %.1f ms" %
              (m.get("executions", 0), m.get("p50_ms", 0.0), m.get("p99_ms", 0.0)))


if __name__ == "__main__":
    main()
