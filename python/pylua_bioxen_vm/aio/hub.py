"""The Hub: carries results and events from the client's threads onto one
asyncio loop (the diagram is in aio/__init__.py).

Owns the locked hand-off list, the loop-side event buffer and its waiters,
and the driver that runs the sync receive state machine on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Generator, Optional

from ..core import EVENT_BUFFER, Event
from ..mailbox import Wait


class Hub:
    """Carries results and events from the client's threads onto one loop.

    Any thread may call ``wrap``'s done-callbacks and ``push_event``; only the
    loop runs ``_drain``, the handlers and the event waiters.  Holds no
    reference to the VMManager, so Core's handler table (which references the
    Hub) cannot keep a forgotten manager alive.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 handlers: dict[str, list[Callable]]) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[Callable, tuple]] = []   # (fn, args) to run on the loop
        self._scheduled = False                   # a _drain is queued on the loop
        # Loop-only state below.
        self.events: collections.deque = collections.deque(maxlen=EVENT_BUFFER)
        self._waiters: set[asyncio.Future] = set()
        self.handlers = handlers                  # AsyncVMManager.on's table
        self._tasks: set[asyncio.Task] = set()    # handler tasks, kept from GC
        self.closed = False

    # -- any thread ----------------------------------------------------------

    def wrap(self, cfut: Future) -> asyncio.Future:
        """An asyncio future (of this loop) that settles like ``cfut``.

        Raises:
            RuntimeError: called from outside the Hub's loop.
        """
        self._check_loop()
        afut = self.loop.create_future()
        if cfut.done():
            _settle(afut, cfut)
        else:
            cfut.add_done_callback(functools.partial(self.post, _settle, afut))
        return afut

    def _check_loop(self) -> None:
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("this AsyncVMManager belongs to another event loop; "
                               "use m.sync from other threads and loops")

    def push_event(self, ev: dict) -> None:
        """Core's "*" event handler (runs on Core's event thread)."""
        self.post(self._deliver, Event(**ev))

    def post(self, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon, from any thread, without
        waiting; calls posted before the loop gets to them share one wake-up.
        (The way to feed anything else, e.g. stream items, to the loop.)"""
        with self._lock:
            self._ready.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            pass  # the loop is closed: nobody can await these any more

    # -- the loop ------------------------------------------------------------

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
            self._scheduled = False
        for fn, args in ready:
            try:
                fn(*args)
            except Exception as e:  # one bad call must not strand the rest of the batch
                self.loop.call_exception_handler({
                    "message": "bioxen: %r failed on the event loop" % (fn,), "exception": e})

    def _deliver(self, ev: Event) -> None:
        self.events.append(ev)       # a full buffer drops its oldest event
        self.wake()
        for fn in self.handlers.get(ev.type, []) + self.handlers.get("*", []):
            try:
                ret = fn(ev._asdict())
                if inspect.isawaitable(ret):
                    task = asyncio.ensure_future(ret)
                    self._tasks.add(task)
                    task.add_done_callback(self._handler_done)
            except Exception as e:  # a handler bug must not stop the others
                self.loop.call_exception_handler({
                    "message": "bioxen event handler %r failed" % (fn,), "exception": e})

    def _handler_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.loop.call_exception_handler({
                "message": "bioxen event handler task failed",
                "exception": task.exception(), "task": task})

    def wake(self) -> None:
        """Wake every ``next_event`` waiter (an event came, or we closed)."""
        for w in self._waiters:
            if not w.done():
                w.set_result(None)

    async def next_event(self, timeout: Optional[float]) -> Optional[Event]:
        """The oldest buffered event; None after ``timeout`` s or on close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.events:
            if self.closed:
                return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            w = self.loop.create_future()
            self._waiters.add(w)
            try:
                await asyncio.wait_for(w, left)
            except asyncio.TimeoutError:
                return None
            finally:
                self._waiters.discard(w)
        return self.events.popleft()

    async def drive(self, steps: Generator[Wait, None, Any]) -> Any:
        """Run a ``Puller.steps`` state machine (mailbox.py) on the loop, as
        ``mailbox.drive`` runs it on a thread; its result.  Cancelling the
        await loses nothing: the pull's answer lands in the puller's inbox.

        Raises:
            RuntimeError: called from outside the Hub's loop (before any pull).
        """
        self._check_loop()
        try:
            fut, seconds = next(steps)
            while True:
                try:
                    await asyncio.wait_for(self.wrap(fut), seconds)
                except asyncio.TimeoutError:
                    pass
                fut, seconds = steps.send(None)
        except StopIteration as done:
            return done.value


def _settle(afut: asyncio.Future, cfut: Future) -> None:
    if afut.cancelled():
        return  # its task was cancelled: the late reply is dropped
    exc = cfut.exception()
    if exc is not None:
        afut.set_exception(exc)
    else:
        afut.set_result(cfut.result())


def thread_callback(fn: Callable, loop: asyncio.AbstractEventLoop) -> Callable:
    """A Lua->Python callback as Core's callback threads run it: a plain
    function as is (on a worker thread); a coroutine function as a task on
    ``loop``, whose concurrent Future Core answers Lua from when it is done,
    so no thread waits while the coroutine runs."""
    if not inspect.iscoroutinefunction(fn):
        return fn

    @functools.wraps(fn)
    def run(*args: Any) -> Future:
        return asyncio.run_coroutine_threadsafe(fn(*args), loop)
    return run


__all__ = ["Hub", "thread_callback"]
