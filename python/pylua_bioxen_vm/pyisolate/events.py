"""``psi.events``: an async iterator of ``(ts, sandbox_name, event)``.

    async for ts, name, event in psi.events:
        if event == "MEM_KILL":
            print(name, "hit its memory limit", event.detail)

Every manager the face uses (the shared one, and any passed to ``spawn`` or
``set_manager``) gets one ``on("*")`` handler (VMManager.on; it runs on the
client core's event thread, in arrival order) that fans each event out to
every live iteration.  Each ``async for`` over ``psi.events`` is its own
subscription from the moment it starts, on its own loop, so two consumers
both see every event; ``manager.events()``'s single-consumer buffer is left
to its own users.  A subscription holds at most ``MAX_QUEUED`` events: past
that the oldest is dropped and counted in ``dropped``.

``event`` is a ``SandboxEvent``: a str equal to the event type
(``"MEM_KILL"``, ``"CPU_THROTTLE"``, ``"POLICY_HOTLOAD"``, ``"BROKER_ERROR"``,
and bioxen's others: ``"TIMEOUT"``, ``"VM_CRASH"``, ``"SECURITY_VIOLATION"``
...) carrying the event's ``detail`` dict.  ``sandbox_name`` is the VM's
name, None for a manager-wide event (``BROKER_ERROR``).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Optional

#: Events a subscription keeps waiting for its consumer.
MAX_QUEUED = 10000


class SandboxEvent(str):
    """An event type (compares equal to ``"MEM_KILL"`` etc.) with its detail.

    Attributes:
        type: the type as a plain str.
        detail: the event's detail dict (docs/protocol.md "Events").
    """

    detail: dict

    def __new__(cls, type_: str, detail: Optional[dict] = None) -> "SandboxEvent":
        self = super().__new__(cls, type_)
        self.detail = dict(detail or {})
        return self

    @property
    def type(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return "SandboxEvent(%r, %r)" % (self.type, self.detail)


class Subscription:
    """One ``async for`` over ``psi.events``: events from its start on.

    Attributes:
        dropped: events lost because the consumer fell MAX_QUEUED behind.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue = asyncio.Queue()
        self.dropped = 0
        self.closed = False

    def push(self, item: tuple) -> bool:
        """From the event thread: hand ``item`` to the loop.  False when the
        loop is gone (the subscription is then dead)."""
        try:
            self._loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:
            return False
        return True

    def _put(self, item: tuple) -> None:
        if self._queue.qsize() >= MAX_QUEUED:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> tuple:
        if self.closed:
            raise StopAsyncIteration
        return await self._queue.get()

    async def aclose(self) -> None:
        """Stop: the iteration ends and no more events are queued."""
        self.closed = True


class Events:
    """The object behind ``psi.events`` (one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: "weakref.WeakSet[Subscription]" = weakref.WeakSet()
        self._managers: "weakref.WeakSet[Any]" = weakref.WeakSet()
        # anext(psi.events) without an async for: one subscription per loop
        self._per_loop: "weakref.WeakKeyDictionary[Any, Subscription]" = \
            weakref.WeakKeyDictionary()

    def attach(self, manager: Any) -> None:
        """Fan out ``manager``'s events (once per manager)."""
        with self._lock:
            if manager in self._managers:
                return
            self._managers.add(manager)
        manager.on("*", self._fan)

    def _fan(self, ev: dict) -> None:
        item = (float(ev.get("ts") or 0.0), ev.get("vm"),
                SandboxEvent(str(ev.get("type")), ev.get("detail")))
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            if s.closed or not s.push(item):
                with self._lock:
                    self._subs.discard(s)

    def subscribe(self) -> Subscription:
        """A new subscription on the running loop (what ``async for`` uses).

        Raises:
            RuntimeError: no running event loop.
        """
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def __aiter__(self) -> Subscription:
        return self.subscribe()

    async def __anext__(self) -> tuple:
        loop = asyncio.get_running_loop()
        with self._lock:
            sub = self._per_loop.get(loop)
        if sub is None:
            sub = self.subscribe()
            with self._lock:
                self._per_loop[loop] = sub
        return await sub.__anext__()


events = Events()

__all__ = ["events", "Events", "Subscription", "SandboxEvent"]
