"""asyncio handles for streams and sessions (used by aio.py).

``AsyncStream`` is ``async for`` over a ``Stream``'s StreamCore: the reader
thread pushes items into the core as for the sync iterator; the core's
``on_ready`` hook posts a wake-up onto the loop through the Hub (the same
road replies and events take), so no thread is parked per stream or per
item.  Taking an item acknowledges it, so a slow ``async for`` body slows
the script exactly as a slow sync consumer does.

``AsyncSession`` mirrors ``Session`` with coroutines.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

from .stream import Stream, StreamEmpty, StreamItem
from .values import from_wire

if TYPE_CHECKING:
    from .aio import AsyncVM, Hub
    from .sessions import Session


class AsyncStream:
    """What ``AsyncVM.stream`` returns: ``async for item in s`` yields
    ``StreamItem(kind, value)``s, the last of kind "result"; errors raise
    from the iteration after the items before them.  ``async with`` (or
    ``close()``) cancels a script you stop reading early.

    Attributes:
        sync: the underlying ``Stream``.
    """

    def __init__(self, stream: Stream, hub: "Hub") -> None:
        self.sync = stream
        self._hub = hub
        self._waiter: Optional[asyncio.Future] = None
        # Runs on the reader thread; _wake then runs on the loop.
        stream.core.on_ready = lambda: hub.post(self._wake)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __aiter__(self) -> "AsyncStream":
        return self

    async def __anext__(self) -> StreamItem:
        core = self.sync.core
        while True:
            try:
                return core.take_nowait()
            except StreamEmpty:
                pass
            except StopIteration:
                raise StopAsyncIteration from None
            # Nothing in yet.  A push that lands after take_nowait posts
            # _wake, which runs on this loop only after we are parked on the
            # waiter (nothing yields in between), so no wake-up is lost.
            self._waiter = self._hub.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def next(self, timeout: Optional[float] = None) -> StreamItem:
        """The next item, waiting at most ``timeout`` s.

        Raises:
            asyncio.TimeoutError: nothing came in time.
            StopAsyncIteration: the stream is over.
        """
        return await asyncio.wait_for(self.__anext__(), timeout)

    @property
    def result(self) -> Any:
        """The run's ExecResult once it ended well (see ``Stream.result``)."""
        return self.sync.result

    @property
    def buffered(self) -> int:
        """Items received and not yet taken."""
        return self.sync.buffered

    def close(self) -> None:
        """Cancel the script if it still runs.  Idempotent; never blocks."""
        self.sync.close()

    async def __aenter__(self) -> "AsyncStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<AsyncStream %r>" % (self.sync,)


class AsyncSession:
    """asyncio handle of a ``Session`` (``AsyncVMManager.create_session``).

    Attributes:
        id: the session id.
        vm: the ``AsyncVM`` behind it.
        sync: the plain ``Session``.
    """

    def __init__(self, session: "Session", vm: "AsyncVM") -> None:
        self.sync = session
        self.id = session.id
        self.vm = vm

    def __repr__(self) -> str:
        return "<AsyncSession %r vm=%r>" % (self.id, self.vm.name)

    async def run(self, code: str, timeout: Optional[float] = None) -> Any:
        """Run ``code`` in expression mode; its value (see ``Session.run``)."""
        return await self.vm.execute(code, timeout=timeout, expr=True)

    async def set_state(self, state: dict) -> None:
        """Set globals from a dict (see ``Session.set_state``)."""
        await self.vm.set_globals(state)

    async def get_state(self) -> dict:
        """The globals this session created, data only (``Session.get_state``)."""
        return dict(await self.vm._await("get_state", {}, from_wire))

    async def reset(self) -> None:
        """A fresh state with the same limits."""
        await self.vm.reset()

    async def close(self) -> None:
        """Destroy the session's VM.  Idempotent."""
        self.sync._manager._session_table().pop(self.id, None)
        await self.vm.close()

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__ = ["AsyncStream", "AsyncSession"]
