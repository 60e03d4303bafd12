"""User sessions: a named VM whose Lua state persists across runs.

``manager.create_session("alice")`` creates the VM ``session.alice`` and
returns a ``Session``; ``run`` evaluates code in expression mode (like the
``lua`` REPL: ``run("x + 5")`` returns 15, ``run("x = 10")`` returns None),
``get_state``/``set_state`` read and write the globals the session made.
A part of VMManager (a ManagerBase); each method is one request or a few.
"""

from __future__ import annotations

import re
from concurrent.futures import Future
from typing import Any, Optional

from .errors import InvalidRequest, VMNotFound
from .futures import chain
from .manager_base import ManagerBase
from .values import from_wire

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,56}$")
PREFIX = "session."


def session_vm_name(session_id: str) -> str:
    """The VM name of a session id (``"session." + id``).

    Raises:
        InvalidRequest: the id is not 1-56 characters of ``A-Za-z0-9_.:-``.
    """
    if not isinstance(session_id, str) or not _ID_RE.match(session_id):
        raise InvalidRequest("bad session id %r: use 1-56 characters from "
                             "A-Z a-z 0-9 _ . : -" % (session_id,))
    return PREFIX + session_id


class Session:
    """A persistent Lua state for one user: state survives between runs.

    Attributes:
        id: the session id given to ``create_session``.
        vm: the VM behind it (named ``"session." + id``); its limits are the
            ones given to ``create_session``.
    """

    def __init__(self, manager: Any, session_id: str, vm: Any) -> None:
        self._manager = manager
        self.id = session_id
        self.vm = vm

    def __repr__(self) -> str:
        return "<Session %r vm=%r>" % (self.id, self.vm.name)

    def run_async(self, code: str, timeout: Optional[float] = None, *,
                  filename: Optional[str] = None, context: Optional[dict] = None) -> Future:
        """Start ``run``; a Future of its value."""
        return self.vm.execute_async(code, timeout=timeout, expr=True, filename=filename,
                                     context=context)

    def run(self, code: str, timeout: Optional[float] = None, *,
            filename: Optional[str] = None, context: Optional[dict] = None) -> Any:
        """Run ``code`` in expression mode and return its value.

        An expression returns its value (``"x + 5"``); a statement or block
        runs as written (``"x = 10"`` returns None, ``"return 1, 2"`` a
        tuple). Globals it sets stay for the next run.

        Args:
            filename: the chunk's name in error messages (``"calc.lua:3:
                boom"``), as IsoBox's ``filename``.
            context: globals for this run only (IsoBox's ``context``): the
                next run sees what those names held before (``VM.execute``).

        Raises:
            LuaSyntaxError: ``code`` is neither an expression nor a chunk
                (the message is about ``code`` itself).
            LuaError, ExecutionTimeout, ...: as ``VM.execute``.
        """
        return self.vm._blocking(lambda: self.run_async(code, timeout, filename=filename,
                                                        context=context))

    def set_state_async(self, state: dict) -> Future:
        """Start ``set_state``; a Future of None."""
        return self.vm.set_globals_async(state)

    def set_state(self, state: dict) -> None:
        """Set globals from a dict of str keys (values as ``set_globals``).

        Raises:
            InvalidRequest: ``state`` is not a dict of str keys.
            ConversionError: a value cannot be sent to Lua.
        """
        self.vm._blocking(lambda: self.set_state_async(state))

    def get_state(self) -> dict:
        """The globals this session created or replaced, as a dict.

        The sandbox's own names (``print``, ``string``, ...) are left out
        unless the session assigned them a new value. Only data is
        returned: globals holding functions, coroutines or userdata are
        skipped; a function nested inside a table comes back as a
        ``LuaOpaque("function")`` placeholder.

        Raises:
            ConversionError: a global cannot be converted (a table cycle).
        """
        return self.vm._blocking(self.get_state_async)

    def get_state_async(self) -> Future:
        """Future of ``get_state``."""
        return self.vm._request("get_state", {}, lambda r: dict(from_wire(r)))

    def reset_async(self) -> Future:
        """Start ``reset``; a Future of None."""
        return self.vm.reset_async()

    def reset(self) -> None:
        """Drop every global: a fresh state with the same limits."""
        self.vm._blocking(self.reset_async)

    def close_async(self) -> Future:
        """Forget the session and destroy its VM; a Future of None."""
        self._manager._session_table().pop(self.id, None)
        return self.vm.close_async()

    def close(self) -> None:
        """Destroy the session's VM.  Idempotent."""
        self.vm._wait(self.close_async())

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SessionMixin(ManagerBase):
    """``create_session`` / ``get_session`` for VMManager."""

    def _session_table(self) -> dict:
        # dict.setdefault is atomic, so two first callers share one table
        return self.__dict__.setdefault("_sessions", {})

    def create_session_async(self, session_id: str, **create_vm_kwargs: Any) -> Future:
        """Future of ``create_session``.

        Raises:
            InvalidRequest: at once, for a bad id or argument.
        """
        fut = self.create_vm_async(session_vm_name(session_id), **create_vm_kwargs)
        return chain(fut, lambda vm: self._session_made(session_id, vm))

    def _session_made(self, session_id: str, vm: Any) -> Session:
        s = Session(self, session_id, vm)
        self._session_table()[session_id] = s
        return s

    def create_session(self, session_id: str, **create_vm_kwargs: Any) -> Session:
        """Create a session: a VM named ``"session." + session_id`` whose
        state persists across ``run`` calls.

        Args:
            session_id: 1-56 characters of ``A-Za-z0-9_.:-``.
            **create_vm_kwargs: as ``create_vm`` (memory_limit, timeout,
                policy, callbacks, persistent, echo, ...).

        Raises:
            VMExists: a session (or VM) with that id exists already.
            InvalidRequest: a bad id or argument.
        """
        return self._core.conn.blocking(lambda: self.create_session_async(session_id,
                                                                     **create_vm_kwargs))

    def get_session(self, session_id: str) -> Session:
        """The session of that id: one made here, or a persistent one made
        by another client.

        Raises:
            VMNotFound: no such session.
        """
        name = session_vm_name(session_id)
        s = self._session_table().get(session_id)
        if s is not None and not s.vm._closed:
            return s
        try:
            vm = self.get_vm(name)
        except VMNotFound:
            raise VMNotFound("no session %r (create it with create_session())"
                             % (session_id,), vm=name, code="VM_NOT_FOUND") from None
        return self._session_made(session_id, vm)


__all__ = ["Session", "SessionMixin", "session_vm_name"]
