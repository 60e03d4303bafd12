"""Sandbox: pyisolate's handle of one guest, over one bioxen VM.

    sb = psi.spawn("guest42", policy="defaults")
    sb.exec("post(math.sqrt(2))")
    sb.recv(timeout=1)                 # 1.4142135623730951
    sb.call("string.rep", "ab", 3)     # 'ababab'
    sb.stats.cpu_ms, sb.stats.mem_bytes
    sb.close()

``exec`` returns at once; the sandbox runs its sources one after another,
in the order given, and ``call`` takes its turn behind them.  A failing
exec raises nothing where it was called: its exception is queued behind
what the guest posted before it and raised by the ``recv`` that reaches it
(outbox.py says how the order is kept).  ``call`` is an RPC: it returns the
value or raises the error itself.
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional

from ..errors import BioxenError, InvalidRequest
from ..futures import resolved
from ..values import to_wire
from .outbox import Outbox
from .policy import Policy


class Stats:
    """Live figures of a sandbox: each read asks the manager afresh.

    Attributes:
        cpu_ms: CPU milliseconds the guest's node has used since it started.
        mem_bytes: resident set size of the guest's node, in bytes (what
            pyisolate reports: the whole process, not only the Lua heap).
        heap_bytes: the Lua heap alone (bioxen's ``vm.stats()["mem_bytes"]``).
    """

    def __init__(self, vm: Any) -> None:
        self._vm = vm

    def snapshot(self) -> dict:
        """Every figure of ``vm.stats()`` at once (one round trip)."""
        return self._vm.stats()

    @property
    def cpu_ms(self) -> float:
        return float(self._vm.stats().get("cpu_ms") or 0.0)

    @property
    def mem_bytes(self) -> int:
        return int(self._vm.stats().get("rss_bytes") or 0)

    @property
    def heap_bytes(self) -> int:
        return int(self._vm.stats().get("mem_bytes") or 0)

    def __repr__(self) -> str:
        s = self.snapshot()
        return "<Stats cpu_ms=%s mem_bytes=%s>" % (s.get("cpu_ms"), s.get("rss_bytes"))


class Sandbox:
    """One guest: a bioxen VM run with pyisolate's semantics.  Made by
    ``pyisolate.spawn``; safe to use from many threads.

    Attributes:
        name: the sandbox's (and its VM's) name.
        policy: the Policy it was created with.
        vm: the underlying bioxen ``VM`` handle (every bioxen call works on it).
        stats: live ``Stats`` (``sb.stats.cpu_ms``, ``sb.stats.mem_bytes``).
    """

    def __init__(self, name: str, vm: Any, manager: Any, policy: Policy,
                 on_close: Callable[["Sandbox"], None]) -> None:
        self.name = name
        self.vm = vm
        self.policy = policy
        self.stats = Stats(vm)
        self._manager = manager
        self._conn = manager._core.conn
        self._on_close = on_close
        self._lock = threading.Lock()
        self._queue: collections.deque = collections.deque()   # (send, posted, out)
        self._busy = False               # a _pump owns the queue
        self._tail: Future = resolved()  # settled when all queued work is (FIFO)
        self._closed = False
        self._outbox = Outbox(self._conn, vm.name, name)

    def __repr__(self) -> str:
        return "<Sandbox %r%s>" % (self.name, " closed" if self._closed else "")

    @property
    def closed(self) -> bool:
        """True once ``close`` began."""
        return self._closed

    # -- running ------------------------------------------------------------

    def _enqueue(self, send: Callable[[], Future], posted: bool) -> Future:
        """Queue ``send``: it runs once the work queued before it is settled.

        Returns a Future settled when this work is: with its value, or (not
        ``posted``) its exception; a ``posted`` failure goes to the outbox
        instead and the Future gets None once it is queued there.
        """
        out: Future = Future()
        out.set_running_or_notify_cancel()
        with self._lock:
            if self._closed:
                raise BioxenError("sandbox %r is closed" % self.name, vm=self.vm.name)
            self._queue.append((send, posted, out))
            self._tail = out
            start = not self._busy
            self._busy = True
        if start:
            self._pump()
        return out

    def _pump(self) -> None:
        """Send queued work, one at a time.  A loop, not a chain of
        callbacks: work that settles at once (after close, every queued
        item fails where it is sent) must not recurse once per item."""
        while True:
            with self._lock:
                if not self._queue:
                    self._busy = False
                    return
                send, posted, out = self._queue.popleft()
            try:
                fut = send()
            except BaseException as e:  # noqa: BLE001 - settles this work
                fut = Future()
                fut.set_running_or_notify_cancel()
                fut.set_exception(e)
            settled = self._settle(fut, posted, out)
            if not settled.done():
                # On the thread that settles it (often the reader): it only
                # sends the next request, never waits.
                settled.add_done_callback(lambda _: self._pump())
                return

    def _settle(self, fut: Future, posted: bool, out: Future) -> Future:
        """Settle ``out`` from ``fut``; a Future done when that is (a posted
        error first drains the outbox, outbox.py)."""
        settled: Future = Future()
        settled.set_running_or_notify_cancel()

        def finished(f: Future) -> None:
            e = f.exception()
            if e is None:
                out.set_result(None if posted else f.result())
            elif not posted:
                out.set_exception(e)
            else:
                def queued() -> None:
                    out.set_result(None)
                    settled.set_result(None)
                self._outbox.post_error(e, queued)
                return
            settled.set_result(None)
        fut.add_done_callback(finished)
        return settled

    def exec(self, src: str) -> None:
        """Run Lua source in the guest, after the sources given before it.

        Returns at once.  What the source ``post()``s is read with ``recv``;
        an exception it raises (Lua error, syntax error, limit, policy
        refusal) is posted too and raised by the ``recv`` that reaches it.

        Raises:
            InvalidRequest: at once, ``src`` is not a str.
            SandboxError: at once, the sandbox is closed.
        """
        if not isinstance(src, str):
            raise InvalidRequest("exec takes Lua source as a str, not %s"
                                 % type(src).__name__, vm=self.vm.name)
        self._enqueue(lambda: self.vm.execute_async(src), posted=True)

    def call_async(self, func: str, *args: Any, **kw: Any) -> Future:
        """Future of ``call``.

        Raises:
            ConversionError: at once, an argument cannot go to Lua.
        """
        if not isinstance(func, str) or not func:
            raise InvalidRequest("call takes a (dotted) Lua function name",
                                 vm=self.vm.name)
        full = args + (kw,) if kw else args
        to_wire(list(full))   # a bad argument fails here, not in the queue
        return self._enqueue(lambda: self.vm.call_async(func, *full), posted=False)

    def call(self, func: str, *args: Any, **kw: Any) -> Any:
        """Call the guest function ``func`` (dotted: ``"string.format"``,
        ``"mylib.util.f"``) after the work queued before it; return its
        value (None, one value, or a tuple of several).

        Keyword arguments arrive in Lua as one trailing table:
        ``sb.call("f", 1, scale=2)`` calls ``f(1, {scale = 2})``.

        Raises:
            LuaError, LimitExceeded, ...: what the call raised (an RPC's
                error raises here, not through ``recv``).
        """
        return self._conn.wait(self.call_async(func, *args, **kw))

    def recv(self, timeout: Optional[float] = None) -> Any:
        """The next value the guest gave to ``post(obj)``, waiting up to
        ``timeout`` seconds (None: until one comes); or, where an exec
        failed, that exec's exception, raised here.

        Raises:
            TimeoutError: (pyisolate's, a SandboxError and a builtin
                TimeoutError) nothing came within ``timeout``.
            SandboxError: an exec's exception, or the sandbox is closed.
        """
        return self._outbox.recv(timeout)

    async def arecv(self, timeout: Optional[float] = None) -> Any:
        """``recv`` for asyncio code: the same queue, awaited on the running
        loop without blocking it (a bioxen extension; pyisolate's recv is
        blocking only).  ``call_async`` gives ``call`` as a Future for
        ``asyncio.wrap_future``."""
        return await self._outbox.arecv(timeout)

    # -- lifecycle ----------------------------------------------------------

    def close(self, timeout: float = 0.2) -> bool:
        """Stop the sandbox: take no more work, let what is queued or
        running finish for up to ``timeout`` seconds, then destroy the VM
        (its node is killed if it still runs).  Idempotent.

        Returns:
            True if the work finished by itself, False if it was cut off
            (the cut-off exec's error and anything unread are dropped).
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            tail = self._tail
        if not tail.done() and not self._conn.closed:
            try:
                self._conn.wait(tail, max(0.0, float(timeout)))
            except BaseException:  # noqa: BLE001 - not done in time, or a call's own error
                pass
        graceful = tail.done()
        self._outbox.close()
        try:
            self.vm.close()
        finally:
            self._on_close(self)
        return graceful

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Sandbox", "Stats"]
