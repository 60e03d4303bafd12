"""AsyncStream: ``async for`` over a Stream's StreamCore (stream.py).

The reader thread pushes items into the core as for the sync iterator; the
core's ``on_ready`` hook posts a wake-up onto the loop through the Hub (the
same road replies and events take), so no thread is parked per stream or per
item.  Taking an item acknowledges it, so a slow ``async for`` body slows
the script exactly as a slow sync consumer does.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from ..stream import Stream, StreamEmpty, StreamItem
from .hub import Hub


class AsyncStream:
    """What ``AsyncVM.stream`` returns: ``async for item in s`` yields
    ``StreamItem(kind, value)``s, the last of kind "result"; errors raise
    from the iteration after the items before them.  ``async with`` (or
    ``close()``) cancels a script you stop reading early.

    Attributes:
        sync: the underlying ``Stream``.
    """

    def __init__(self, stream: Stream, hub: Hub) -> None:
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


__all__ = ["AsyncStream"]
