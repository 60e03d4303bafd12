"""The peers bioxen is measured against: Redis EVAL, lupa, the seed's
lua-over-pipes design, and the physical floors (socketpair echo, fork+exec).
Called by exec_latency.py; every process started here is stopped by its
owner's close(), which exec_latency.py calls in a finally block.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from stats import Deadline, pss_kib, timed_calls


# -- Redis: a private redis-server and a hand-written RESP client -----------

class RedisServer:
    """A redis-server on a private Unix socket, no persistence.

    Owns the process and its temp dir; close() stops both (idempotent).
    """

    def __init__(self, start_timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.tmpdir = tempfile.mkdtemp(prefix="bxbench-redis-")
        self.path = os.path.join(self.tmpdir, "redis.sock")
        # port 0: no TCP listener at all; the Unix socket is the only way in.
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", self.path,
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", self.tmpdir, "--logfile", os.path.join(self.tmpdir, "log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        dl = Deadline(start_timeout)
        while True:   # bounded: the deadline raises
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError("redis-server exited with %s" % self.proc.returncode)
            try:
                c = RespClient(self.path)
                c.command(b"PING")
                c.close()
                return
            except OSError:
                dl.check("redis-server did not come up")
                time.sleep(0.01)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def resp_command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespClient:
    """Just enough RESP2 to send commands and read replies, pipelined or not."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10.0)   # a wedged server fails the bench, never hangs it
        self.sock.connect(path)
        self.buf = b""
        self.pos = 0

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError("redis error: %s" % rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            data = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read_reply() for _ in range(n)]
        raise RuntimeError("bad RESP line %r" % line)

    def command(self, *args: bytes):
        self.sock.sendall(resp_command(*args))
        return self.read_reply()


EVAL = resp_command(b"EVAL", b"return 1+1", b"0")


def redis_latency(path: str, n: int) -> list[int]:
    """Round-trip ns of n EVAL "return 1+1" 0, one at a time."""
    c = RespClient(path)
    try:
        def one():
            c.sock.sendall(EVAL)
            if c.read_reply() != 2:
                raise RuntimeError("EVAL did not return 2")
        return timed_calls(one, n, warm=min(200, n))
    finally:
        c.close()


def redis_throughput(path: str, n: int, depth: int = 32) -> float:
    """EVALs per second, pipelined `depth` deep (n rounded up to a batch)."""
    c = RespClient(path)
    batch = EVAL * depth
    batches = max(1, n // depth)
    try:
        t0 = time.perf_counter()
        for _ in range(batches):
            c.sock.sendall(batch)
            for _ in range(depth):
                c.read_reply()
        return batches * depth / (time.perf_counter() - t0)
    finally:
        c.close()


# -- lupa: Lua in this very process ----------------------------------------

def lupa_runtime_class():
    """LuaRuntime for Lua 5.4 if this lupa has it, else its default."""
    try:
        from lupa.lua54 import LuaRuntime   # lupa >= 2.0
        return LuaRuntime
    except ImportError:
        from lupa import LuaRuntime         # Debian 12: lupa 1.14, Lua 5.1/LuaJIT
        return LuaRuntime


def lupa_label() -> str:
    try:
        rt = lupa_runtime_class()()
    except ImportError:
        return "lupa (missing)"
    return "lupa (%s)" % rt.eval("jit and jit.version or _VERSION")


def lupa_latency(n: int) -> list[int]:
    """ns per execute("return 1+1"): compile and run, as bioxen's exec does."""
    rt = lupa_runtime_class()()
    return timed_calls(lambda: rt.execute("return 1+1"), n, warm=min(200, n))


def lupa_create(n: int) -> list[int]:
    cls = lupa_runtime_class()
    keep = []

    def one():
        rt = cls()
        rt.execute("return 1")
        keep.append(rt)
    return timed_calls(one, n)


def lupa_idle_kib(n: int) -> float:
    """Pss growth of this process per idle LuaRuntime (n of them alive)."""
    cls = lupa_runtime_class()
    before = pss_kib(os.getpid())
    keep = [cls() for _ in range(n)]
    for rt in keep:
        rt.execute("return 1")
    after = pss_kib(os.getpid())
    del keep
    return (after - before) / n


# -- the seed design: one `lua5.4` child per VM, driven over pipes ----------

# Reads one chunk per line and writes its first result per line, as the
# original pure-Python pylua-bioxen-vm drove its interpreter.
_PIPE_LOOP = ("for line in io.lines() do local f = load(line) "
              "io.write(tostring(f()), '\\n') io.flush() end")


class PipeLua:
    """A lua5.4 child reading chunks on stdin; close() ends it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["lua5.4", "-e", _PIPE_LOOP], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0)

    def execute(self, line: bytes) -> bytes:
        os.write(self.proc.stdin.fileno(), line)
        out = self.proc.stdout.readline()
        if not out:
            raise RuntimeError("lua5.4 child exited")
        return out

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def pipe_latency(n: int) -> list[int]:
    p = PipeLua()
    try:
        return timed_calls(lambda: p.execute(b"return 1+1\n"), n, warm=min(200, n))
    finally:
        p.close()


def pipe_create(n: int) -> tuple[list[int], float]:
    """(ns per spawn + first result, Pss KiB per idle child)."""
    live: list[PipeLua] = []
    try:
        def one():
            p = PipeLua()
            live.append(p)
            p.execute(b"return 1\n")
        times = timed_calls(one, n)
        kib = sum(pss_kib(p.proc.pid) for p in live) / max(1, len(live))
        return times, kib
    finally:
        for p in live:
            p.close()


# -- physical floors ---------------------------------------------------------

_ECHO = ("import os,socket,sys\n"
         "s = socket.socket(fileno=int(sys.argv[1]))\n"
         "while True:\n"
         "    b = s.recv(4096)\n"
         "    if not b: break\n"
         "    s.sendall(b)\n")


def socketpair_latency(n: int) -> list[int]:
    """Round trip of a 12-byte message to an echo process over a socketpair:
    two wake-ups across processes, the least any out-of-process VM pays."""
    a, b = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-c", _ECHO, str(b.fileno())],
                            pass_fds=(b.fileno(),), stdin=subprocess.DEVNULL)
    b.close()
    a.settimeout(10.0)
    try:
        def one():
            a.sendall(b"return 1+1\n\n")
            a.recv(64)
        return timed_calls(one, n, warm=min(200, n))
    finally:
        a.close()   # EOF ends the echo loop
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fork_exec_ns(n: int) -> list[int]:
    """fork+exec+wait of `lua5.4 -e ''`: the floor under any VM-per-process create."""
    argv = ["lua5.4", "-e", ""]
    return timed_calls(lambda: subprocess.run(argv, check=True), n)
