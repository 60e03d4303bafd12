"""The receive side of a Sandbox: guest posts and exec errors, in one order.

pyisolate's ``exec`` never raises: its exception is posted to the outbox
and raised by the ``recv`` that reaches it.  The posts live in the VM's
outbox in the manager (op ``outbox_recv``); the errors are exec replies.
``Outbox`` merges both into one local queue so ``recv`` returns what the
guest posted *before* it failed, then raises the failure:

* posts are pulled in batches (one pull parked in the manager at a time,
  as mailbox.Puller does), each answer appended on the reader thread;
* when an exec fails, ``post_error`` first drains the manager's outbox
  (``timeout`` 0) and appends the error after what the drain found.

That is exact because the node writes its posts before its exec reply on
one pipe: by the time the reply reaches us, each post of that exec has
either been answered to a parked pull (whose reply came first) or sits in
the manager's outbox for the drain.  The Sandbox sends an exec only after
the previous one (and its drain) is settled, so a later exec's posts
cannot overtake an earlier error.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Generator, Optional

from ..errors import BioxenError, SandboxTimeout
from ..values import from_wire

# Seconds a pull may outlive its own deadline before recv stops waiting on
# it (a lost answer must not hold recv forever), as in mailbox.py.
_SLACK = 5.0
# Values per pull: the most outbox_recv gives at once.
_MAX = 1024
# What Outbox.steps yields: a Future to wait on, and for how long at most.
Wait = tuple[Future, Optional[float]]


def _new_future() -> Future:
    fut: Future = Future()
    fut.set_running_or_notify_cancel()
    return fut


class Outbox:
    """Ordered values and exec errors of one sandbox.  Internal to Sandbox.

    Args:
        conn: the manager's Connection.
        vm: the VM's name.
        what: the sandbox's name for messages.
    """

    def __init__(self, conn: Any, vm: str, what: str) -> None:
        self._conn = conn
        self._vm = vm
        self._what = what
        # Reentrant: a pull answered before its done-callback was added runs
        # _keep inline, on the thread that holds the lock.
        self._lock = threading.RLock()
        self._items: collections.deque = collections.deque()   # (is_error, value)
        self._pull: Optional[Future] = None
        self._broken: Optional[BaseException] = None   # the outbox is gone
        self._signal = _new_future()   # done when _items or _pull changed
        self._closed = False

    # -- filling (reader thread) -----------------------------------------

    def _start_pull(self, timeout: Optional[float],
                    then: Optional[Callable[[Future], None]] = None) -> Future:
        """Send a pull; its answer is kept by ``_keep`` (then ``then``).
        Called under the lock: a newer pull displaces a parked older one,
        which the manager answers ``[]`` (harmless: nothing is lost)."""
        fields: dict = {"vm": self._vm, "max": _MAX}
        if timeout is not None:
            fields["timeout"] = max(0.0, timeout)
        fut = self._pull = self._conn.request("outbox_recv", fields)
        fut.add_done_callback(self._keep)
        if then is not None:
            fut.add_done_callback(then)
        return fut

    def _keep(self, fut: Future) -> None:
        err = fut.exception()
        with self._lock:
            if err is None:
                self._items.extend((False, from_wire(v)) for _, v in fut.result())
            elif self._broken is None:
                self._broken = err
            sig, self._signal = self._signal, _new_future()
        sig.set_result(None)

    def post_error(self, exc: BaseException, done: Callable[[], None]) -> None:
        """Queue ``exc`` after every value already posted, then call ``done``
        (the Sandbox's next exec may start).  Never blocks: the drain
        continues in done-callbacks."""
        def finish() -> None:
            with self._lock:
                if not self._closed:
                    self._items.append((True, exc))
                sig, self._signal = self._signal, _new_future()
            sig.set_result(None)
            done()

        def drained(fut: Future) -> None:
            if fut.exception() is None and fut.result():
                with self._lock:   # more may be left (one frame's worth per answer)
                    if not self._closed and self._broken is None:
                        self._start_pull(0.0, drained)
                        return
            finish()
        with self._lock:
            go = not self._closed and self._broken is None
            if go:
                self._start_pull(0.0, drained)
        if not go:
            finish()

    # -- taking (the caller's thread) ------------------------------------

    def steps(self, timeout: Optional[float] = None) -> Generator[Wait, None, Any]:
        """``recv`` as a state machine: it yields ``(future, seconds)`` for
        its driver to wait on (a wait that times out is fine) and returns
        the next value, or raises the next exec error.  ``recv`` drives it
        on the caller's thread, ``arecv`` on an event loop.

        Raises:
            SandboxTimeout: nothing within ``timeout`` seconds.
            SandboxError: the sandbox is closed, or its VM is gone.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                item = self._items.popleft() if self._items else None
                if item is None:
                    if self._closed:
                        raise BioxenError("sandbox %r is closed" % self._what,
                                          vm=self._vm)
                    if self._broken is not None:
                        raise self._broken
                    # Taken before the pull: an answer already in runs
                    # _keep inline right here and must wake this very wait.
                    sig = self._signal
                    mine = self._pull is None or self._pull.done()
                    if mine:
                        self._start_pull(left)
            if item is not None:
                if item[0]:
                    raise item[1]
                return item[1]
            # A pull we sent answers by its own deadline; one of an earlier
            # recv may be parked longer, so then our deadline bounds the wait.
            yield sig, None if left is None else left + (_SLACK if mine else 0.0)
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    if not self._items:
                        raise SandboxTimeout("nothing from sandbox %r within %ss"
                                             % (self._what, timeout), vm=self._vm)

    def recv(self, timeout: Optional[float] = None) -> Any:
        """``steps`` driven on this thread (it may read the socket itself)."""
        gen = self.steps(timeout)
        try:
            sig, wait = next(gen)
            while True:
                try:
                    self._conn.wait(sig, wait)
                except FutureTimeout:
                    pass
                sig, wait = gen.send(None)
        except StopIteration as done:
            return done.value

    async def arecv(self, timeout: Optional[float] = None) -> Any:
        """``steps`` driven on the running event loop (the connection's
        background reader resolves what it waits on)."""
        gen = self.steps(timeout)
        try:
            sig, wait = next(gen)
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(sig)), wait)
                except asyncio.TimeoutError:
                    pass
                sig, wait = gen.send(None)
        except StopIteration as done:
            return done.value

    def close(self) -> None:
        """Refuse further recv (what is queued is dropped)."""
        with self._lock:
            self._closed = True
            self._items.clear()
            sig, self._signal = self._signal, _new_future()
        sig.set_result(None)


__all__ = ["Outbox"]
