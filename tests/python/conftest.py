"""Shared fixtures of the Python suite.

``manager`` yields an embedded VMManager and, after close(), checks that the
manager and every node it started are gone.  The binaries come from
BIOXEN_MANAGER (ctest sets it) or, failing that, the newest in-tree build.
"""

import contextlib
import faulthandler
import glob
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pylua_bioxen_vm import VMManager  # noqa: E402


def _pick_binaries():
    if os.environ.get("BIOXEN_MANAGER"):
        return
    found = glob.glob(str(REPO / "build*" / "manager" / "bioxen-manager"))
    found = [p for p in found if os.access(p, os.X_OK)]
    if found:
        os.environ["BIOXEN_MANAGER"] = max(found, key=os.path.getmtime)


_pick_binaries()


def children_of(pid):
    """Pids whose parent is ``pid`` (read from /proc)."""
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


def descendants(pid):
    stack, seen = [pid], []
    while stack:
        for c in children_of(stack.pop()):
            seen.append(c)
            stack.append(c)
    return seen


def alive(pid):
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X", "x")
    except OSError:
        return False


def wait_gone(pids, timeout=10.0):
    """Wait (on pidfds, no polling) until every pid has exited; return survivors."""
    deadline = time.monotonic() + timeout
    survivors = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue  # already gone
        try:
            # A readable pidfd means the process has exited. (Asking /proc
            # afterwards raced: a task being reaped shows state X, not Z.)
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)
        if not ready:
            survivors.append(pid)
    return survivors


TEST_DEADLINE = 240.0  # seconds; generous, only catches hangs


@pytest.fixture(autouse=True)
def deadline():
    """Every test has a deadline: on a hang, dump all stacks and exit."""
    faulthandler.dump_traceback_later(TEST_DEADLINE, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def wait_until(pred, timeout=30.0):
    """Poll a manager-side condition (no event exists for it) with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (prefer port 0
    where the program under test can report what it bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tcp_manager_process(tmp_path, token="s3cret"):
    """A bioxen-manager on a Unix socket and on TCP 127.0.0.1 (a port it
    picks and reports in ``hello``) with one token; yields that port."""
    from pylua_bioxen_vm.embedded import find_manager
    tok = tmp_path / "token"
    tok.write_text(token + "\n")
    sock = tmp_path / "m.sock"
    proc = subprocess.Popen([find_manager(), "--socket", str(sock), "--tcp", "127.0.0.1:0",
                             "--token-file", str(tok), "--exit-with-stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = proc.stdout.readline()   # bounded by the autouse deadline
        assert line.startswith(b"READY"), line
        with VMManager(str(sock), start_timeout=20.0) as m:
            yield int(m.server_info["tcp"].rsplit(":", 1)[1])
    finally:
        proc.stdin.close()
        proc.stdout.close()
        if wait_gone([proc.pid], 10):
            proc.kill()
        proc.wait()


def manager_pid(m):
    return m._core.embedded.proc.pid


@pytest.fixture
def manager():
    m = VMManager(start_timeout=20.0)
    mpid = manager_pid(m)
    try:
        yield m
    finally:
        procs = [mpid] + descendants(mpid)
        m.close()
        left = wait_gone(procs)
        assert not left, "processes left after close(): %r" % left


@pytest.fixture
def make_manager():
    """Factory for extra managers; each is closed and checked at teardown."""
    made = []

    def make(**kw):
        m = VMManager(start_timeout=20.0, **kw)
        made.append(m)
        return m
    yield make
    for m in made:
        mpid = manager_pid(m)
        procs = [mpid] + descendants(mpid)
        m.close()
        assert not wait_gone(procs)


class Raw:
    """A bare NDJSON connection to a manager, for wire-level tests: ``req``
    sends one request and returns its reply (events and other ids skipped)."""

    def __init__(self, path, deadline=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(deadline)
        self.sock.connect(path)
        self.buf, self.n = b"", 0

    def req(self, **msg):
        self.n += 1
        self.sock.sendall((json.dumps(dict(msg, id=self.n)) + "\n").encode())
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(1 << 16)
                assert chunk, "manager closed the connection"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            r = json.loads(line)
            if r.get("id") == self.n:
                return r
