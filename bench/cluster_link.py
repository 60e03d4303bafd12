#!/usr/bin/python3
"""What the NATS link costs a local exec: execute("return 1+1") round-trip
p50/p99 on one manager without --cluster, with --cluster connected, while
the nats-server is away (killed: the manager reconnects every 250 ms), and
after it came back. Rounds alternate so drift on a shared machine hits
every case alike; medians over rounds are printed.

    /usr/bin/python3 bench/cluster_link.py [--rounds 5] [--calls 3000]

Needs a build with libnats and Debian's nats-server. Asserts nothing.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE.parent / "tests" / "python"))
sys.path.insert(0, str(HERE))

from natsfix import NatsServer              # noqa: E402
from pylua_bioxen_vm import VMManager       # noqa: E402
from pylua_bioxen_vm.embedded import find_manager  # noqa: E402
from stats import median, pct               # noqa: E402


def start(tmp, name, *more):
    sock = str(Path(tmp) / (name + ".sock"))
    p = subprocess.Popen([find_manager(), "--socket", sock, "--exit-with-stdin", "--spares", "0"]
                         + list(more), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    assert p.stdout.readline().startswith(b"READY"), name
    return p, sock


def lat(vm, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        vm.execute("return 1+1")
        out.append(time.perf_counter() - t)
    return out


def wait_state(m, want, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if m._core.conn.request("hello", {}).result(5)["cluster"]["connected"] == want:
            return
        time.sleep(0.05)
    raise SystemExit("cluster never became connected=%r" % want)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=3000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bioxen-bench-cl-")
    srv = NatsServer(Path(tmp) / "nats").start()
    plain, psock = start(tmp, "plain")
    clus, csock = start(tmp, "clus", "--cluster", srv.url, "--host-name", "bench")
    res = {k: [] for k in ("no --cluster", "--cluster, connected", "--cluster, NATS down",
                           "--cluster, reconnected")}
    with VMManager(psock) as mp, VMManager(csock) as mc:
        vp, vc = mp.create_vm("b"), mc.create_vm("b")
        lat(vp, 500), lat(vc, 500)      # warm up
        wait_state(mc, True)
        for _ in range(a.rounds):
            res["no --cluster"].append(lat(vp, a.calls))
            res["--cluster, connected"].append(lat(vc, a.calls))
            srv.kill()
            wait_state(mc, False)
            res["--cluster, NATS down"].append(lat(vc, a.calls))
            srv.start()
            wait_state(mc, True)
            res["--cluster, reconnected"].append(lat(vc, a.calls))
    for p in (plain, clus):
        p.stdin.close()
        p.wait(timeout=20)
    srv.close()
    base = median([median(r) for r in res["no --cluster"]])
    print("local exec round trip, %d rounds x %d calls (medians over rounds)" % (a.rounds, a.calls))
    print("%-24s %9s %9s %7s" % ("case", "p50 us", "p99 us", "vs none"))
    for k, rounds in res.items():
        p50 = median([median(r) for r in rounds])
        p99 = median([pct(r, 0.99) for r in rounds])
        print("%-24s %9.1f %9.1f %6.2fx" % (k, p50 * 1e6, p99 * 1e6, p50 / base))


if __name__ == "__main__":
    main()
