"""The reader role of a Connection: who reads the manager's socket, and when.

Owned by connection.Connection, which it calls back for every complete line
(``_dispatch``) and when the socket ends (``_terminate``).

Leader/follower: "the reader" is a role, not a thread.  Its holder is the only
thread that reads the socket, and it dispatches every frame it reads (any
future, event or callback), exactly as any other holder would.

* A synchronous caller (``Connection.call``/``wait``) takes the role if it is
  free and reads until its own reply is in: one thread wake-up per round trip
  (the kernel waking the caller) instead of two (waking a reader thread that
  then wakes the caller), each ~10-20 us on a small VM.  If another thread
  holds the role, the caller sleeps until its future is done or the role is
  free (the holder dispatched its reply, or left).
* A background thread holds the role whenever no synchronous caller is in,
  so async futures, events and callbacks flow with nobody waiting.  It sleeps
  in poll() *without* the role; a caller arriving nudges it out through an
  eventfd (else it would wake on every reply too), after which it parks until
  the callers are gone.

Waking the background thread after every synchronous call would cost the very
wake-ups saved, so the last caller to leave wakes it only if some request is
still outstanding (its reply needs a reader now).  Otherwise the thread looks
again within GRACE seconds by itself: the only frames that can arrive with
nothing outstanding are events, and those may wait that long.
"""

from __future__ import annotations

import collections
import os
import select
import socket
import sys
import threading
import time
from concurrent.futures import Future
from typing import Any, Optional

GRACE = 0.005     # s an idle connection's events may wait after a sync call
_RECV = 1 << 18
_NUDGE = (1).to_bytes(8, sys.byteorder)   # an eventfd write is one 8-byte counter


class ReaderRole:
    """Hands the socket's read side to one thread at a time.

    Args:
        conn: the owning Connection; uses its ``_dispatch(line)``,
            ``_terminate(reason)``, ``_pending``, ``closed`` and ``address``.
        sock: the connected socket (blocking, no timeout).
    """

    def __init__(self, conn: Any, sock: socket.socket) -> None:
        self._conn = conn
        self._sock = sock
        # One lock, two places to sleep: sync callers (for the role or their
        # reply) and the background thread (for the callers to leave).
        self._lock = threading.Lock()
        self._followers = threading.Condition(self._lock)
        self._bg = threading.Condition(self._lock)
        # Guarded by _lock.
        self._held = False                 # someone owns the read side
        self._owner: Optional[int] = None  # thread ident of the holder
        self._want = 0                     # sync callers between enter/leave
        self._bg_polling = False           # background thread in poll()
        self._bg_parked = False            # background thread in _bg.wait()
        # Owned by the holder: bytes of an unfinished line, and complete lines
        # not yet dispatched (kept here, not in a local, so a holder
        # interrupted mid-batch, e.g. by Ctrl-C, loses nothing).
        self._parts: list[bytes] = []
        # recv_into one reused buffer: a fresh 256 KiB bytes per recv() costs
        # glibc an mmap, an mremap and a munmap every time.
        self._buf = bytearray(_RECV)
        self._view = memoryview(self._buf)
        self._lines: collections.deque[bytes] = collections.deque()
        self._wake_r, self._wake_w = _wake_pipe()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="bioxen-reader")

    # -- synchronous callers -------------------------------------------------

    def enter(self) -> None:
        """A sync caller is about to send and/or wait: keep the background
        thread off the socket until ``leave``."""
        with self._lock:
            self._want += 1
            if self._bg_polling:
                # One nudge per poll: the thread re-checks _want after it.
                self._bg_polling = False
                try:
                    os.write(self._wake_w, _NUDGE)
                except OSError:
                    pass  # the thread is gone (connection over)

    def leave(self) -> None:
        with self._lock:
            self._want -= 1
            if self._want == 0 and self._bg_parked and self._conn._pending:
                self._bg.notify()  # a reply is still due: read it now

    def sent_async(self) -> None:
        """An async request was sent: its reply needs a reader even if the
        background thread is parked after the last sync caller left."""
        # Unlocked peek: the thread parks only while _want > 0, and then the
        # leave() that ends it sees our pending entry and wakes it.
        if self._bg_parked:
            with self._lock:
                if self._bg_parked and self._want == 0:
                    self._bg.notify()

    def wait_for(self, fut: Future, deadline: Optional[float]) -> None:
        """Between enter and leave: return when ``fut`` is done, the
        deadline (time.monotonic) passed, or the connection ended."""
        if self._owner == threading.get_ident():
            # Nested: a done-callback run by this holder waits on another
            # request.  Keep reading; the shared line queue keeps order.
            self._read_until(fut, deadline)
            return
        registered = False
        while not fut.done():
            with self._lock:
                while self._held and not fut.done():
                    if not registered:
                        # A follower must hear of its reply read by the leader;
                        # registered unlocked: a done future calls back at once.
                        registered = True
                        self._lock.release()
                        try:
                            fut.add_done_callback(self._reply_in)
                        finally:
                            self._lock.acquire()
                        continue
                    if not self._followers.wait(_left(deadline)):
                        return  # deadline passed
                if fut.done():
                    return
                self._take()
            try:
                if not self._read_until(fut, deadline):
                    return
            finally:
                self._give()

    def _reply_in(self, _fut: Future) -> None:
        with self._lock:
            self._followers.notify_all()

    def _take(self) -> None:
        # Caller holds _lock and has seen _held False.
        self._held = True
        self._owner = threading.get_ident()

    def _give(self) -> None:
        with self._lock:
            self._held = False
            self._owner = None
            self._followers.notify_all()

    def _read_until(self, fut: Future, deadline: Optional[float]) -> bool:
        """Holder: read and dispatch until ``fut`` is done.  False if the
        deadline passed or the connection ended first."""
        while not fut.done():
            if self._conn.closed and not self._lines:
                return False
            if self._lines or deadline is None:
                flags = 0  # plain blocking recv: one syscall, no poll
            else:
                left = deadline - time.monotonic()
                if left <= 0 or not _readable(self._sock, left):
                    return False
                flags = socket.MSG_DONTWAIT
            reason = self._read_step(flags)
            if reason is not None:
                self._conn._terminate(reason)
                return False
        return True

    # -- the background thread ---------------------------------------------

    def _run(self) -> None:
        conn = self._conn
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        reason: Optional[str] = None
        try:
            while reason is None:
                with self._lock:
                    while (self._want or self._held) and not conn.closed:
                        self._bg_parked = True
                        self._bg.wait(GRACE)
                        self._bg_parked = False
                    if conn.closed:
                        break
                    polling = self._bg_polling = not self._lines
                if polling:
                    poller.poll()  # without the role: a caller may take it
                with self._lock:
                    if polling and not self._bg_polling:
                        _drain(self._wake_r)  # a caller nudged us
                    self._bg_polling = False
                    if self._want or self._held or conn.closed:
                        continue
                    self._take()
                try:
                    reason = self._read_step(socket.MSG_DONTWAIT)
                finally:
                    self._give()
        except BaseException as e:  # a bug here must not hang every caller
            reason = "reader thread failed: %r" % (e,)
        conn._terminate(reason or conn._broken or "closed")

    # -- reading (holder only) ---------------------------------------------

    def _read_step(self, flags: int) -> Optional[str]:
        """Dispatch lines left by an interrupted holder, or one recv and every
        complete line in it.  Returns None, or why the connection is over."""
        try:
            if not self._lines:
                try:
                    n = self._sock.recv_into(self._buf, _RECV, flags)
                except (BlockingIOError, InterruptedError):
                    return None
                except OSError as e:
                    return "lost connection to manager at %s: %s" % (self._conn.address, e)
                if not n:
                    return "connection to manager at %s closed" % self._conn.address
                chunk = self._view[:n].tobytes()
                parts = self._parts
                parts.append(chunk)
                if b"\n" not in chunk:
                    return None
                lines = b"".join(parts).split(b"\n")
                self._parts = [lines.pop()] if lines[-1] else []
                self._lines.extend(lines)
            lines_q, dispatch = self._lines, self._conn._dispatch
            while lines_q:
                line = lines_q.popleft()
                if line:
                    dispatch(line)
        except Exception as e:  # a bug here must not hang every caller
            return "reader failed: %r" % (e,)
        return None

    # -- lifecycle ---------------------------------------------------------

    def wake_all(self) -> None:
        """The connection ended: every sleeper re-checks."""
        with self._lock:
            self._followers.notify_all()
            self._bg.notify_all()

    def stop(self, timeout: float) -> None:
        """Join the background thread (the socket is already shut down)."""
        self.wake_all()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)
        if not self.thread.is_alive():
            # Only now: a live thread could poll a recycled descriptor.
            for fd in {self._wake_r, self._wake_w}:
                os.close(fd)
            self._wake_r = self._wake_w = -1


def _wake_pipe() -> tuple[int, int]:
    """(read fd, write fd) to nudge the background thread out of poll()."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def _drain(fd: int) -> None:
    try:
        os.read(fd, 4096)
    except (BlockingIOError, InterruptedError):
        pass


def _left(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _readable(sock: socket.socket, timeout: float) -> bool:
    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(timeout * 1000.0))
