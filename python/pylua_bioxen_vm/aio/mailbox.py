"""AsyncMailbox: the asyncio face of a client mailbox (mailbox.py).

``send`` and ``close`` await the sync twin's Futures through the Hub;
``recv`` drives the mailbox's own receive state machine on the loop.
"""

from __future__ import annotations

from typing import Any, Optional

from ..mailbox import Mailbox
from .hub import Hub


class AsyncMailbox:
    """asyncio handle of a client mailbox (see ``Mailbox``)."""

    def __init__(self, mailbox: Mailbox, hub: Hub) -> None:
        self.sync = mailbox
        self._hub = hub

    @property
    def name(self) -> str:
        return self.sync.name

    def __repr__(self) -> str:
        return "<Async%s" % repr(self.sync)[1:]

    async def send(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the VM or mailbox ``to``, as this mailbox; waits
        (without blocking the loop) while the target is full."""
        return await self._hub.wrap(self.sync.send_async(to, value, timeout))

    async def recv(self, timeout: Optional[float] = None) -> tuple[str, Any]:
        """The next ``(sender, value)``.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            VMNotFound: the mailbox was closed.
        """
        return await self._hub.drive(self.sync.recv_steps(timeout))

    async def close(self) -> None:
        """Close the mailbox; messages still in it are dropped with it."""
        await self._hub.wrap(self.sync.close_async())

    async def __aenter__(self) -> "AsyncMailbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__ = ["AsyncMailbox"]
