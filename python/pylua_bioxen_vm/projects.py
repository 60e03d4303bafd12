"""Multi-file projects: run an entrypoint whose ``require`` finds the
project's other files, mocks, and the policy's whitelisted modules only.

``manager.run_project(files={"/main.lua": ..., "/util.lua": ...},
entrypoint="/main.lua")`` creates a throwaway VM holding the files (the
``"project"`` field of create; docs/protocol.md "Projects"), runs the
entrypoint with chunk name ``@/main.lua``, and destroys the VM, also when
the run fails.  A part of VMManager (a ManagerBase).
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future
from typing import Any, Mapping, Optional

from .errors import InvalidRequest
from .manager_base import ManagerBase
from .policy import Policy
from .values import to_wire

def _project_field(files: Mapping[str, str], entrypoint: str,
                   mocks: Optional[Mapping[str, Any]]) -> dict:
    """The wire form of the project; the manager checks the paths."""
    if not isinstance(files, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise InvalidRequest("files must map absolute paths like '/util.lua' to "
                             "source text (str)")
    if entrypoint not in files:
        raise InvalidRequest("entrypoint %r is not one of the project's files %s"
                             % (entrypoint, sorted(files)[:10]))
    out: dict = {"files": dict(files)}
    if mocks:
        if not isinstance(mocks, Mapping) or not all(isinstance(k, str) for k in mocks):
            raise InvalidRequest("mocks must map module names (str) to values")
        out["mocks"] = {k: to_wire(v) for k, v in mocks.items()}
    return out


class ProjectMixin(ManagerBase):
    """``run_project`` / ``run_project_async`` for VMManager."""

    def run_project_async(self, files: Mapping[str, str], entrypoint: str = "/main.lua", *,
                          mocks: Optional[Mapping[str, Any]] = None,
                          policy: Optional[Policy] = None, timeout: Optional[float] = None,
                          echo: bool = True, **limits: Any) -> Future:
        """Start ``run_project``; a Future of the entrypoint's value(s).

        The Future completes after the throwaway VM is destroyed.

        Raises:
            InvalidRequest: at once, for a bad file map, entrypoint or limit.
        """
        project = _project_field(files, entrypoint, mocks)
        # unique across clients of a shared manager, not only in this process
        name = "project." + uuid.uuid4().hex[:20]
        out: Future = Future()
        out.set_running_or_notify_cancel()
        cf = self.create_vm_async(name, echo=echo, policy=policy,
                                  timeout=timeout, project=project, **limits)

        def finish(exec_fut: Future, vm: Any) -> None:
            vm._closed = True
            core = self._core
            core.vms.pop(name, None)

            def gone(_: Future) -> None:
                # the result is handed over once the VM is gone
                exc = exec_fut.exception()
                if exc is not None:
                    out.set_exception(exc)
                else:
                    out.set_result(exec_fut.result())
            try:
                core.conn.request("destroy", {}, vm=name).add_done_callback(gone)
            except BaseException:
                gone(exec_fut)

        def created(f: Future) -> None:
            exc = f.exception()
            if exc is not None:
                out.set_exception(exc)
                return
            vm = f.result()
            try:
                ef = vm.execute_async(files[entrypoint], chunkname="@" + entrypoint)
            except BaseException as e:  # the connection closed meanwhile
                ef = Future()
                ef.set_exception(e)
            ef.add_done_callback(lambda d: finish(d, vm))
        cf.add_done_callback(created)
        return out

    def run_project(self, files: Mapping[str, str], entrypoint: str = "/main.lua", *,
                    mocks: Optional[Mapping[str, Any]] = None, policy: Optional[Policy] = None,
                    timeout: Optional[float] = None, echo: bool = True, **limits: Any) -> Any:
        """Run a multi-file Lua project in a throwaway VM; return the
        entrypoint's value (None, one value, or a tuple).

        Inside, ``require(name)`` looks in this order: ``mocks`` (the value
        itself), the project's files (``"a.b"`` is ``/a/b.lua``, then
        ``/a/b/init.lua``; each runs once and is cached), then the modules
        the ``policy`` imports (from the manager's module directory).
        Anything else fails with PolicyViolation (and a SECURITY_VIOLATION
        event).

        Args:
            files: ``{"/main.lua": source, ...}``: absolute, normalised paths
                ending in ``.lua`` (at most 1024 files, 8 MiB in all).
            entrypoint: the file to run (chunk name ``@/main.lua``).
            mocks: ``{"module.name": value}`` served to ``require`` as is.
            policy: a ``Policy`` (its imports are the whitelisted modules).
            timeout: wall-clock seconds for the run.
            echo: write the run's ``print`` output to sys.stdout.
            **limits: memory_limit, instruction_limit, cpu_limit, max_output.

        Raises:
            InvalidRequest: a bad path (relative, ``..``, not ``.lua``), a
                missing entrypoint, a bad mock or limit.
            PolicyViolation: a ``require`` outside the project and policy.
            LuaError, LuaSyntaxError, a LimitExceeded: as ``VM.execute``.
        """
        return self._core.conn.blocking(lambda: self.run_project_async(
            files, entrypoint, mocks=mocks, policy=policy, timeout=timeout, echo=echo,
            **limits))


__all__ = ["ProjectMixin"]
