"""AsyncSession: the asyncio face of a Session (sessions.py), over its AsyncVM."""

from __future__ import annotations

from typing import Any, Optional

from ..sessions import Session
from .handle import AsyncHandle
from .vm import AsyncVM


class AsyncSession(AsyncHandle):
    """asyncio handle of a ``Session`` (``AsyncVMManager.create_session``).

    Attributes:
        id: the session id.
        vm: the ``AsyncVM`` behind it.
        sync: the plain ``Session``.
    """

    sync: Session

    def __init__(self, session: Session, vm: AsyncVM) -> None:
        super().__init__(session, vm._hub)   # the loop the VM's awaits belong to
        self.id = session.id
        self.vm = vm

    def __repr__(self) -> str:
        return "<AsyncSession %r vm=%r>" % (self.id, self.vm.name)

    async def run(self, code: str, timeout: Optional[float] = None, *,
                  filename: Optional[str] = None, context: Optional[dict] = None) -> Any:
        """Run ``code`` in expression mode; its value (see ``Session.run``:
        ``filename``, ``context``)."""
        return await self._hub.wrap(self.sync.run_async(code, timeout, filename=filename,
                                                        context=context))

    async def set_state(self, state: dict) -> None:
        """Set globals from a dict (see ``Session.set_state``)."""
        await self._hub.wrap(self.sync.set_state_async(state))

    async def get_state(self) -> dict:
        """The globals this session created, data only (``Session.get_state``)."""
        return await self._hub.wrap(self.sync.get_state_async())

    async def reset(self) -> None:
        """A fresh state with the same limits."""
        await self._hub.wrap(self.sync.reset_async())

    async def close(self) -> None:
        """Destroy the session's VM.  Idempotent."""
        await super().close()


__all__ = ["AsyncSession"]
