"""The bioxen half of the bench: round trip, pipelined throughput, create time
and idle memory, through the public Python API only (VMManager, create_vm,
execute, execute_async, close). Called by exec_latency.py, which owns the
VMManager and closes it.
"""

from __future__ import annotations

import glob
import os
import sys
import threading
from concurrent.futures import wait
from pathlib import Path

from stats import Deadline, children_of, comm, pss_kib, timed_calls

ROOT = Path(__file__).resolve().parents[1]
CODE = "return 1+1"
# What a typical user sets: a heap cap and a wall timeout. No instruction
# limit: its count hook slows every instruction and is opt-in by design.
LIMITS = dict(memory_limit=16 << 20, timeout=5.0)


def _build_cache(binary: str) -> str:
    """The CMakeCache.txt text of the build tree holding binary ('' if none)."""
    for d in Path(binary).resolve().parents:
        cache = d / "CMakeCache.txt"
        if cache.is_file():
            return cache.read_text(errors="replace")
    return ""


def _is_fast_build(binary: str) -> bool:
    """Sanitizer, fuzzer and Debug builds would make bioxen look several times slower."""
    cache = _build_cache(binary)
    slow = ("BIOXEN_SANITIZE:BOOL=ON", "BIOXEN_FUZZ:BOOL=ON", "CMAKE_BUILD_TYPE:STRING=Debug")
    return not any(mark in cache for mark in slow)


def locate_binaries() -> str:
    """Point BIOXEN_MANAGER/BIOXEN_VMNODE at a build if the caller did not
    (the newest optimised, unsanitised build*/ tree), and make the in-tree
    package importable. Returns a description of the manager used."""
    if not os.environ.get("BIOXEN_MANAGER"):
        found = sorted(glob.glob(str(ROOT / "build*" / "**" / "bioxen-manager"),
                                 recursive=True), key=os.path.getmtime)
        fast = [f for f in found if _is_fast_build(f)]
        if fast or found:
            os.environ["BIOXEN_MANAGER"] = (fast or found)[-1]
    mgr = os.environ.get("BIOXEN_MANAGER", "")
    if mgr and not os.environ.get("BIOXEN_VMNODE"):
        build = Path(mgr).resolve().parent.parent
        node = sorted(glob.glob(str(build / "**" / "bioxen-vmnode"), recursive=True))
        if node:
            os.environ["BIOXEN_VMNODE"] = node[0]
    sys.path.insert(0, str(ROOT / "python"))
    if not mgr:
        return "(PATH)"
    return mgr if _is_fast_build(mgr) else mgr + " (WARNING: sanitizer/Debug build)"


def open_manager():
    from pylua_bioxen_vm import VMManager
    return VMManager()


def manager_pid() -> int:
    """The embedded manager is our child; find it by name."""
    for pid in children_of(os.getpid()):
        if comm(pid) == "bioxen-manager":
            return pid
    raise RuntimeError("no bioxen-manager child process found")


def group_pss_kib(mpid: int) -> int:
    """Pss of the manager plus every node it spawned."""
    return pss_kib(mpid) + sum(pss_kib(p) for p in children_of(mpid))


def latency(manager, n: int, tag: str) -> list[int]:
    vm = manager.create_vm("lat-" + tag, **LIMITS)
    try:
        return timed_calls(lambda: vm.execute(CODE), n, warm=min(200, n))
    finally:
        vm.close()


def throughput(manager, nvms: int, n: int, window: int, tag: str,
               budget: float = 120.0) -> float:
    """execute_async calls per second spread round-robin over nvms VMs with
    at most `window` calls in flight."""
    import time
    vms = [manager.create_vm("tp-%s-%d" % (tag, i), **LIMITS) for i in range(nvms)]
    try:
        for vm in vms:
            vm.execute(CODE)
        slots = threading.Semaphore(window)
        release = lambda _f: slots.release()   # runs on the reader thread
        dl = Deadline(budget)
        futs = []
        t0 = time.perf_counter()
        for i in range(n):
            if not slots.acquire(timeout=dl.left()):
                raise TimeoutError("pipelined calls stalled")
            f = vms[i % nvms].execute_async(CODE)
            f.add_done_callback(release)
            futs.append(f)
        done, not_done = wait(futs, timeout=dl.left())
        elapsed = time.perf_counter() - t0
        if not_done:
            raise TimeoutError("%d pipelined calls unanswered" % len(not_done))
        bad = [f for f in futs if f.exception() is not None or f.result() != 2]
        if bad:
            raise RuntimeError("%d of %d calls failed, e.g. %r"
                               % (len(bad), n, bad[0].exception() or bad[0].result()))
        return n / elapsed
    finally:
        for vm in vms:
            vm.close()


def create_and_idle(manager, n: int, tag: str) -> tuple[list[int], float]:
    """Create n VMs one by one, timing create + first result; then the Pss
    growth of manager + nodes per idle VM. Closes them all."""
    mpid = manager_pid()
    before = group_pss_kib(mpid)
    vms = []
    try:
        def one():
            vm = manager.create_vm("c-%s-%d" % (tag, len(vms)), **LIMITS)
            vms.append(vm)
            if vm.execute("return 1") != 1:
                raise RuntimeError("first result was not 1")
        times = timed_calls(one, n)
        after = group_pss_kib(mpid)
        return times, (after - before) / n
    finally:
        for vm in vms:
            vm.close()


# -- the raw wire: the same work without the Python client ------------------
# Speaks NDJSON to the manager directly, as Redis is spoken to in peers.py,
# so the difference between these rows and the API rows is the client's cost.

def manager_socket() -> str:
    argv = open("/proc/%d/cmdline" % manager_pid(), "rb").read().split(b"\0")
    return argv[argv.index(b"--socket") + 1].decode()


class RawWire:
    """One extra connection to the manager; its VMs die when it closes."""

    def __init__(self) -> None:
        import socket
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30.0)   # a wedged manager fails the bench, never hangs it
        self.sock.connect(manager_socket())
        self.file = self.sock.makefile("rb")
        self.next_id = 0

    def frame(self, op: str, **fields) -> bytes:
        import json
        self.next_id += 1
        return json.dumps(dict(id=self.next_id, op=op, **fields)).encode() + b"\n"

    def reply(self) -> dict:
        import json
        line = self.file.readline()
        if not line:
            raise ConnectionError("manager closed the raw connection")
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError("raw wire: %s" % msg["error"])
        return msg

    def call(self, op: str, **fields) -> dict:
        self.sock.sendall(self.frame(op, **fields))
        while True:   # skip pushed events; replies have an id
            msg = self.reply()
            if "id" in msg:
                return msg

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def raw_latency(n: int, tag: str) -> list[int]:
    w = RawWire()
    try:
        name = "raw-" + tag
        w.call("create", name=name, limits={"memory_limit": LIMITS["memory_limit"],
                                            "timeout": LIMITS["timeout"]})

        def one():
            if w.call("exec", vm=name, code=CODE)["result"]["values"] != [2]:
                raise RuntimeError("raw exec did not return [2]")
        return timed_calls(one, n, warm=min(200, n))
    finally:
        w.close()


def raw_throughput(nvms: int, n: int, depth: int, tag: str) -> float:
    """exec frames per second, written `depth` at a time round-robin over
    nvms VMs, then `depth` replies read: Redis's pipelining, on bioxen."""
    import time
    w = RawWire()
    try:
        names = ["rawtp-%s-%d" % (tag, i) for i in range(nvms)]
        for name in names:
            w.call("create", name=name, limits={"memory_limit": LIMITS["memory_limit"],
                                                "timeout": LIMITS["timeout"]})
        batches = max(1, n // depth)
        t0 = time.perf_counter()
        for _ in range(batches):
            w.sock.sendall(b"".join(w.frame("exec", vm=names[i % nvms], code=CODE)
                                    for i in range(depth)))
            got = 0
            while got < depth:
                if "id" in w.reply():
                    got += 1
        return batches * depth / (time.perf_counter() - t0)
    finally:
        w.close()
