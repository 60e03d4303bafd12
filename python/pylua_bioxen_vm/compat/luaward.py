"""LuaWard compatibility: IsolatedLuaVM, one sandboxed VM behind a private manager.

For code written against LuaWard's ``IsolatedLuaVM``; new code should use
VMManager directly.  Each instance owns a VMManager with exactly one VM.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import Future
from typing import Any, Callable, Optional

from ..manager import VMManager

_seq = itertools.count(1)


class IsolatedLuaVM:
    """A single Lua VM in its own sandboxed process (LuaWard's API).

    Args:
        memory_limit: bytes of Lua heap.
        callbacks: ``{"lua_name": python_fn}`` callable from Lua.
        instruction_limit: VM instructions per execute/call.
        uid, gid: drop the node process to these ids (needs a root manager).
        full_isolation: new namespaces and a seccomp allow-list as well
            (see ``VMManager.create_vm``).
        cpu_limit: CPU seconds for the node process.
        timeout: wall-clock seconds per execute/call.

    Raises:
        IsolationUnavailable: the isolation asked for cannot be had here.
        ManagerError: the manager cannot be started.
    """

    def __init__(self, memory_limit: Optional[int] = None,
                 callbacks: Optional[dict[str, Callable]] = None,
                 instruction_limit: Optional[int] = None, uid: Optional[int] = None,
                 gid: Optional[int] = None, full_isolation: bool = False,
                 cpu_limit: Optional[float] = None, timeout: Optional[float] = None) -> None:
        self._manager = VMManager()
        try:
            self._vm = self._manager.create_vm(
                "luaward-%d-%d" % (os.getpid(), next(_seq)),
                memory_limit=memory_limit, instruction_limit=instruction_limit,
                cpu_limit=cpu_limit, timeout=timeout, callbacks=callbacks,
                full_isolation=full_isolation, uid=uid, gid=gid)
        except BaseException:
            self._manager.close()
            raise

    def execute(self, code: str) -> Any:
        """Run Lua code; return None, its value, or a tuple of values."""
        return self._vm.execute(code)

    def execute_async(self, code: str) -> Future:
        """Run Lua code; return a Future of its value."""
        return self._vm.execute_async(code)

    def call(self, func_name: str, *args: Any) -> Any:
        """Call a Lua function by (dotted) name."""
        return self._vm.call(func_name, *args)

    def function_exists(self, name: str) -> bool:
        """True if ``name`` is a callable Lua global."""
        return self._vm.function_exists(name)

    def stats(self) -> dict:
        """The VM's stats (pid, mem_bytes, cpu_ms, executions...)."""
        return self._vm.stats()

    def close(self) -> None:
        """Destroy the VM and stop its manager.  Idempotent."""
        self._manager.close()

    def __enter__(self) -> "IsolatedLuaVM":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
