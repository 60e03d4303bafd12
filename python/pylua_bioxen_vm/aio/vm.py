"""AsyncVM: the asyncio face of one VM handle (vm.py).

Each coroutine awaits its sync twin's ``x_async`` Future through the Hub;
``recv`` drives the VM's own receive state machine on the loop, and
``execute_file`` reads the file in the default executor.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..policy import Policy
from ..results import ExecResult
from ..vm import VM, read_text
from .handle import AsyncHandle
from .hub import Hub
from .stream import AsyncStream


class AsyncVM(AsyncHandle):
    """asyncio handle of one VM; the coroutines mirror ``VM``'s methods.

    Attributes:
        sync: the plain VM handle (same VM, same connection), for threads.
    """

    sync: VM

    def __init__(self, vm: VM, hub: Hub) -> None:
        super().__init__(vm, hub)

    name = property(lambda self: self.sync.name, doc="The VM's name in the manager.")
    pid = property(lambda self: self.sync.pid, doc="The node's pid at creation.")
    isolation = property(lambda self: self.sync.isolation,
                         doc="What the node got at creation (see VM.isolation).")

    @property
    def echo(self) -> bool:
        """Write captured print output to sys.stdout when a result arrives."""
        return self.sync.echo

    @echo.setter
    def echo(self, on: bool) -> None:
        self.sync.echo = on

    def __repr__(self) -> str:
        return "<Async%s" % repr(self.sync)[1:]

    async def execute(self, code: str, *, timeout: Optional[float] = None,
                      instruction_limit: Optional[int] = None,
                      chunkname: Optional[str] = None, expr: bool = False,
                      filename: Optional[str] = None, context: Optional[dict] = None) -> Any:
        """Run a Lua chunk and return its value (see ``VM.execute_async``;
        ``expr=True`` is the REPL's expression mode).

        Raises:
            LuaError, LuaSyntaxError, a LimitExceeded subclass, VMCrashed,
            VMNotFound, ManagerError: as the sync API.
        """
        return await self._hub.wrap(self.sync.execute_async(
            code, timeout=timeout, instruction_limit=instruction_limit, chunkname=chunkname,
            expr=expr, filename=filename, context=context))

    def stream(self, code: str, *, timeout: Optional[float] = None,
               instruction_limit: Optional[int] = None) -> AsyncStream:
        """``async for item in vm.stream(code)``: what the chunk prints,
        yields at its top level and ``post()``s, as it happens, then its
        result (see ``VM.stream``).  Sends the request at once; never blocks."""
        return AsyncStream(self.sync.stream(code, timeout=timeout,
                                            instruction_limit=instruction_limit), self._hub)

    async def execute_result(self, code: str, *, timeout: Optional[float] = None,
                             instruction_limit: Optional[int] = None,
                             chunkname: Optional[str] = None, filename: Optional[str] = None,
                             context: Optional[dict] = None) -> ExecResult:
        """Run a Lua chunk; its ExecResult (values, types, output, timing). Never echoes."""
        return await self._hub.wrap(self.sync.execute_result_async(
            code, timeout=timeout, instruction_limit=instruction_limit, chunkname=chunkname,
            filename=filename, context=context))

    async def execute_file(self, path: str, *, timeout: Optional[float] = None,
                           instruction_limit: Optional[int] = None) -> Any:
        """Run a Lua source file (read in the default executor).

        Raises:
            OSError: the file cannot be read.
        """
        code = await self._hub.loop.run_in_executor(None, read_text, path)
        return await self.execute(code, timeout=timeout, instruction_limit=instruction_limit,
                                  chunkname="@" + os.path.basename(path))

    async def call(self, func_name: str, *args: Any, timeout: Optional[float] = None,
                   instruction_limit: Optional[int] = None) -> Any:
        """Call a Lua function by (dotted) name; its value (see ``VM.call``)."""
        return await self._hub.wrap(self.sync.call_async(
            func_name, *args, timeout=timeout, instruction_limit=instruction_limit))

    async def call_result(self, func_name: str, *args: Any, timeout: Optional[float] = None,
                          instruction_limit: Optional[int] = None) -> ExecResult:
        """Like ``call`` but returns the ExecResult; never echoes."""
        return await self._hub.wrap(self.sync.call_result_async(
            func_name, *args, timeout=timeout, instruction_limit=instruction_limit))

    async def function_exists(self, name: str) -> bool:
        """True if the (dotted) global ``name`` is a callable Lua value."""
        return await self._hub.wrap(self.sync.function_exists_async(name))

    async def set_globals(self, values: dict) -> None:
        """Set several globals at once.

        Raises:
            ConversionError: a value cannot be sent to Lua.
            InvalidRequest: ``values`` is not a dict of str keys.
        """
        await self._hub.wrap(self.sync.set_globals_async(values))

    async def get_global(self, name: str) -> Any:
        """Value of the (dotted) global ``name`` (None if unset)."""
        return await self._hub.wrap(self.sync.get_global_async(name))

    async def reset(self) -> None:
        """Replace the Lua state by a fresh one (same limits and callbacks)."""
        await self._hub.wrap(self.sync.reset_async())

    async def stats(self) -> dict:
        """pid, mem_bytes, mem_limit, cpu_ms, rss_bytes, executions, errors..."""
        return await self._hub.wrap(self.sync.stats_async())

    async def set_policy(self, policy: Policy) -> None:
        """Hot-reload the VM's policy; returns once the VM has it."""
        await self._hub.wrap(self.sync.set_policy_async(policy))

    async def recv(self, timeout: Optional[float] = None) -> Any:
        """The next value the VM's Lua code gave to ``post(value)`` (one
        outbox with ``vm.sync.recv``, whichever API reads it).

        Raises:
            TimeoutError: nothing was posted within ``timeout`` seconds.
            VMNotFound: the VM is closed or was destroyed.
        """
        return await self._hub.drive(self.sync.recv_steps(timeout))

    async def close(self) -> None:
        """Destroy the VM (its node exits).  Idempotent."""
        await super().close()


__all__ = ["AsyncVM"]
