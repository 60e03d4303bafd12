"""AsyncHandle: what every asyncio handle of one thing shares: its sync twin
(``.sync``), the Hub of its loop, and ``async with`` closing it."""

from __future__ import annotations

from typing import Any

from .hub import Hub


class AsyncHandle:
    """Base of AsyncVM, AsyncMailbox and AsyncSession.

    Attributes:
        sync: the plain handle (same thing, same connection), for threads.
    """

    def __init__(self, sync: Any, hub: Hub) -> None:
        self.sync = sync
        self._hub = hub

    async def close(self) -> None:
        """Close the thing; each handle says what that means."""
        await self._hub.wrap(self.sync.close_async())

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__ = ["AsyncHandle"]
