"""distributed_compute.py: Monte Carlo estimate of pi fanned over 8 VMs.

The same work (N random points, split into chunks) runs once on a single VM
and once spread over 8 VMs with futures; it prints pi and the speed-up.
Run from the repo root after building:
    /usr/bin/python3 examples/distributed_compute.py
"""

import os
import sys
import time

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


def main() -> None:
    with VMManager(timeout=120.0) as manager:
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
        m = manager.metrics()
        print("manager: %d executions, p50 %.1f ms, p99 %.1f ms" %
              (m.get("executions", 0), m.get("p50_ms", 0.0), m.get("p99_ms", 0.0)))


if __name__ == "__main__":
    main()
