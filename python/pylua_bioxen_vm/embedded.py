"""The embedded manager: find bioxen-manager, start it privately, stop it.

VMManager() with no address calls ``start()``; the returned EmbeddedManager is
owned by the Core (core.py) and stopped by ``stop()`` on close (or by the core's
weakref finalizer).  The manager runs with ``--exit-with-stdin`` and a stdin
pipe we hold, so it also dies if this Python process dies without cleanup.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .errors import ManagerError

_BINARY = "bioxen-manager"
_SUN_PATH_MAX = 107   # sockaddr_un.sun_path holds 108 bytes with the NUL


def find_manager(manager_path: Optional[str] = None) -> str:
    """Locate the bioxen-manager executable.

    Order: ``manager_path`` (if given, it must exist), env ``BIOXEN_MANAGER``, ``PATH``, then the in-tree
    build ``<repo>/build/manager/bioxen-manager``.

    Raises:
        ManagerError: if none of them is an executable file.
    """
    if manager_path is not None:
        if os.path.isfile(manager_path) and os.access(manager_path, os.X_OK):
            return manager_path
        raise ManagerError("manager_path %r is not an executable file" % manager_path)
    tried = []
    for cand in (os.environ.get("BIOXEN_MANAGER"),
                 shutil.which(_BINARY),
                 str(Path(__file__).resolve().parents[2] / "build" / "manager" / _BINARY)):
        if not cand:
            continue
        tried.append(cand)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise ManagerError(
        "cannot find the %s executable (tried: %s); build it with "
        "`cmake -S . -B build && cmake --build build`, put it on PATH, or set "
        "BIOXEN_MANAGER" % (_BINARY, ", ".join(tried) or "nothing"))


def first_line(proc: subprocess.Popen, timeout: float) -> Optional[str]:
    """The first line ``proc`` writes on its stdout pipe, stripped; None if
    no whole line came within ``timeout`` s (the manager's ``READY <path>``).

    Raises:
        EOFError: stdout closed first (the process is exiting).
    """
    deadline = time.monotonic() + timeout
    buf = b""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError
            buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


class EmbeddedManager:
    """A bioxen-manager child process listening on a private Unix socket.

    Attributes:
        proc: the Popen of the manager.
        socket_path: the Unix socket it reported in its READY line.
    """

    def __init__(self, proc: subprocess.Popen, tmpdir: str, socket_path: str) -> None:
        self.proc = proc
        self.tmpdir = tmpdir
        self.socket_path = socket_path

    @classmethod
    def start(cls, manager_path: Optional[str], start_timeout: float,
              module_dir: Optional[str] = None,
              extra_args: Sequence[str] = ()) -> "EmbeddedManager":
        """Start the manager and wait for its ``READY <path>`` line.

        Raises:
            ManagerError: binary missing, the process exited, or no READY line
                within ``start_timeout`` seconds.
        """
        binary = find_manager(manager_path)
        tmpdir = tempfile.mkdtemp(prefix="bioxen-")
        if len(os.path.join(tmpdir, "manager.sock").encode()) > _SUN_PATH_MAX:
            # a long $TMPDIR would overflow sun_path: fall back to /tmp
            shutil.rmtree(tmpdir, ignore_errors=True)
            tmpdir = tempfile.mkdtemp(prefix="bioxen-", dir="/tmp")
        sock = os.path.join(tmpdir, "manager.sock")
        try:
            proc = subprocess.Popen(
                [binary, "--socket", sock, "--exit-with-stdin"]
                + (["--module-dir", module_dir] if module_dir else []) + list(extra_args),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                # its own session: a Ctrl-C at the terminal interrupts Python,
                # which then closes the manager cleanly (it also exits when
                # our stdin pipe closes, so it never outlives us)
                start_new_session=True)
        except OSError as e:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise ManagerError("cannot start %s: %s" % (binary, e)) from None
        self = cls(proc, tmpdir, sock)
        try:
            self.socket_path = self._wait_ready(binary, start_timeout)
        except BaseException:
            self.stop(0.0)
            raise
        return self

    def _wait_ready(self, binary: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        try:
            line = first_line(self.proc, timeout)
        except EOFError:
            code = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            raise ManagerError("%s exited with status %s before it was ready "
                               "(see its stderr above)" % (binary, code)) from None
        if line is None:
            raise ManagerError("%s did not report READY within %.1f s" % (binary, timeout))
        if not line.startswith("READY "):
            raise ManagerError("%s printed %r instead of 'READY <path>'" % (binary, line))
        # Nothing more is read from stdout: close it so the pipe is not ours
        # to drain (the manager must not log there).
        self.proc.stdout.close()
        return line[len("READY "):].strip()

    def stop(self, timeout: float = 5.0) -> None:
        """Wait for the manager to exit (after a shutdown op), kill it after
        ``timeout``, and remove the temp dir.  Idempotent."""
        proc = self.proc
        for f in (proc.stdin, proc.stdout):
            try:
                if f:
                    f.close()   # closing stdin tells --exit-with-stdin to go
            except OSError:
                pass
        if not wait_exit(proc, timeout):
            proc.kill()
        proc.wait()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``proc`` to exit; True if it did.

    Waits on a pidfd (Popen.wait(timeout) would poll with sleeps).
    """
    if proc.returncode is not None:
        return True
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(pidfd, selectors.EVENT_READ)
            return bool(sel.select(timeout)) or proc.poll() is not None
    finally:
        os.close(pidfd)
