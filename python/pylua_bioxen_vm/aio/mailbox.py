"""AsyncMailbox: the asyncio face of a client mailbox (mailbox.py).

``send`` and ``close`` await the sync twin's Futures through the Hub;
``recv`` drives the mailbox's own receive state machine on the loop.
"""

from __future__ import annotations

from typing import Any, Optional

from ..mailbox import Mailbox
from .handle import AsyncHandle
from .hub import Hub


class AsyncMailbox(AsyncHandle):
    """asyncio handle of a client mailbox (see ``Mailbox``)."""

    sync: Mailbox

    def __init__(self, mailbox: Mailbox, hub: Hub) -> None:
        super().__init__(mailbox, hub)

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
        await super().close()


__all__ = ["AsyncMailbox"]
