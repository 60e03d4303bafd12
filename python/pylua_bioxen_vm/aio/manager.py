"""AsyncVMManager: the asyncio face of VMManager (manager.py).

Opening and closing run the blocking VMManager steps in the loop's default
executor; every other coroutine awaits the VMManager's ``x_async`` Future
through the Hub (hub.py), and events reach ``on`` handlers and ``events()``
through the Hub's buffer.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, AsyncIterator, Callable, Optional

from ..core import Event
from ..errors import ManagerError
from ..manager import VMManager
from ..metrics import metrics_opt_in
from .hub import Hub, thread_callback
from .mailbox import AsyncMailbox
from .session import AsyncSession
from .vm import AsyncVM


class AsyncVMManager:
    """``VMManager`` for asyncio: ``async with AsyncVMManager(...) as m``.

    Args:
        address, **kwargs: exactly as ``VMManager`` (None starts a private
            embedded manager; ``manager_path``, ``start_timeout``, ``token``,
            ``module_dir`` and default limits).  They are checked when the
            manager opens (``async with`` or ``await m.open()``).

    Attributes:
        sync: the underlying VMManager once open (same connection), for use
            from other threads.
    """

    def __init__(self, address: Optional[str] = None, **kwargs: Any) -> None:
        self._args = (address, kwargs)
        self.sync: Optional[VMManager] = None
        self._hub: Optional[Hub] = None
        self._handlers: dict[str, list[Callable]] = {}   # on() works before open
        self._opening: Optional[asyncio.Future] = None

    # -- lifecycle ----------------------------------------------------------

    async def open(self) -> "AsyncVMManager":
        """Start or connect to the manager (blocking work in the default
        executor, once).  Idempotent.

        Raises:
            ManagerError: the manager cannot be started or reached.
            InvalidRequest: a default limit is unknown or invalid.
        """
        if self.sync is not None:
            return self
        if self._opening is None:
            # One start however many tasks open at once; a failed start may be retried.
            address, kwargs = self._args
            self._opening = asyncio.get_running_loop().run_in_executor(
                None, functools.partial(VMManager, address, **kwargs))
        opening = self._opening
        try:
            m = await asyncio.shield(opening)
        except BaseException:
            if opening.done() and self._opening is opening:
                self._opening = None
            raise
        if self.sync is None:
            self._hub = Hub(opening.get_loop(), self._handlers)
            m.on("*", self._hub.push_event)
            # the sync twin refuses to block this loop (Connection.check_may_block)
            m._core.conn.async_loop = self._hub.loop
            self.sync = m
        return self

    async def close(self) -> None:
        """Destroy our VMs and stop the embedded manager (if any), in the
        default executor.  Pending awaits fail with ManagerError; ``events()``
        iterations end.  Idempotent."""
        if self.sync is None and self._opening is not None:
            try:
                await self.open()    # a start under way: let it finish, then close
            except Exception:
                return               # it failed: nothing to close
        m, hub = self.sync, self._hub
        if m is None or hub is None:
            return
        if not m.closed:
            await hub.loop.run_in_executor(None, m.close)
        hub.closed = True
        hub.wake()

    @property
    def closed(self) -> bool:
        return self.sync is not None and self.sync.closed

    @property
    def address(self) -> Optional[str]:
        return None if self.sync is None else self.sync.address

    @property
    def server_info(self) -> dict:
        return {} if self.sync is None else self.sync.server_info

    @property
    def identity(self) -> str:
        """``VMManager.identity``: "uid:N" or "token:NAME"."""
        return str(self.server_info.get("identity") or "")

    @property
    def is_admin(self) -> bool:
        """``VMManager.is_admin``."""
        return bool(self.server_info.get("admin"))

    async def __aenter__(self) -> "AsyncVMManager":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        if self.sync is None:
            return "<AsyncVMManager not open>"
        return "<Async%s" % repr(self.sync)[1:]

    def _parts(self) -> tuple[VMManager, Hub]:
        if self.sync is None or self._hub is None:
            raise ManagerError("AsyncVMManager is not open: use `async with "
                               "AsyncVMManager() as m` or `await m.open()`")
        return self.sync, self._hub

    # -- VMs ---------------------------------------------------------------

    async def create_vm(self, name: str, networked: bool = False, **kw: Any) -> AsyncVM:
        """Create a named VM; arguments as ``VMManager.create_vm``.
        ``callbacks`` may hold coroutine functions: they run on this loop.

        Raises:
            VMExists, IsolationUnavailable, InvalidRequest, ManagerError.
        """
        m, hub = self._parts()
        vm = await hub.wrap(m.create_vm_async(name, networked, **_on_loop(kw, hub)))
        return AsyncVM(vm, hub)

    async def get_vm(self, name: str) -> AsyncVM:
        """Handle of an existing VM (ours, or a persistent one by name).

        Raises:
            VMNotFound: no VM of that name.
        """
        m, hub = self._parts()
        return AsyncVM(await hub.wrap(m.get_vm_async(name)), hub)

    async def list_vms(self, cluster: bool = False) -> list[dict]:
        """One dict per VM: name, pid, state, pending, persistent, networked
        (``cluster=True``: every live host's, each with ``host``)."""
        m, hub = self._parts()
        return await hub.wrap(m.list_vms_async(cluster))

    async def vm_stats(self, name: str) -> dict:
        """The stats of VM ``name``, by name (``VMManager.vm_stats``).

        Raises:
            VMNotFound: no VM of that name.
        """
        m, hub = self._parts()
        return await hub.wrap(m.vm_stats_async(name))

    async def destroy_vm(self, name: str) -> None:
        """Destroy VM ``name`` by name (``VMManager.destroy_vm``).

        Raises:
            VMNotFound: no VM of that name.
        """
        m, hub = self._parts()
        await hub.wrap(m.destroy_vm_async(name))

    async def shutdown_all(self) -> int:
        """Destroy every VM of this connection (and persistent ones); the count."""
        m, hub = self._parts()
        return await hub.wrap(m.shutdown_all_async())

    async def metrics(self) -> dict:
        """As ``VMManager.metrics``."""
        m, hub = self._parts()
        return await hub.wrap(m.metrics_async())

    async def history(self, n: int = 100) -> list[dict]:
        """As ``VMManager.history``: the last ``n`` runs, newest last."""
        m, hub = self._parts()
        return await hub.wrap(m.history_async(n))

    async def hosts(self) -> list[dict]:
        """As ``VMManager.hosts``: the cluster's managers."""
        m, hub = self._parts()
        return await hub.wrap(m.hosts_async())

    async def ping(self) -> bool:
        """True if the manager answers."""
        m, hub = self._parts()
        return await hub.wrap(m.ping_async())

    # -- the pool ----------------------------------------------------------

    async def run(self, code: str, **kw: Any) -> Any:
        """Run stateless code on a pooled VM; its value (``VMManager.run``:
        ``timeout``, ``globals``, ``chunkname``, ``expr``)."""
        m, hub = self._parts()
        return await hub.wrap(m.run_async(code, **kw))

    async def map(self, func_name_or_code: str, items: Any, **kw: Any) -> list:
        """Apply a Lua function to each item over the pool; results in order
        (``VMManager.map``: ``chunksize``, ``timeout``)."""
        m, hub = self._parts()
        out: list = []
        for part in await asyncio.gather(*(hub.wrap(f) for f in
                                           m.map_async(func_name_or_code, items, **kw))):
            out.extend(part)
        return out

    async def warmup_pool(self) -> int:
        """Wait until ``pool_min`` pool VMs are started; how many are ready."""
        m, hub = self._parts()
        return await hub.wrap(m.warmup_pool_async())

    # -- sessions and projects ----------------------------------------------

    async def create_session(self, session_id: str, **create_vm_kwargs: Any) -> AsyncSession:
        """A session whose state persists across runs (``VMManager.create_session``).

        Raises:
            VMExists, InvalidRequest, ManagerError.
        """
        m, hub = self._parts()
        s = await hub.wrap(m.create_session_async(session_id, **_on_loop(create_vm_kwargs, hub)))
        return AsyncSession(s, AsyncVM(s.vm, hub))

    async def run_project(self, files: Any, entrypoint: str = "/main.lua",
                          **kw: Any) -> Any:
        """Run a multi-file project on a throwaway VM; the entrypoint's value
        (arguments as ``VMManager.run_project``)."""
        m, hub = self._parts()
        return await hub.wrap(m.run_project_async(files, entrypoint, **kw))

    # -- mailboxes ---------------------------------------------------------

    async def mailbox(self, name: str, size: Optional[int] = None) -> AsyncMailbox:
        """Open a client mailbox (see ``VMManager.mailbox``)."""
        m, hub = self._parts()
        return AsyncMailbox(await hub.wrap(m.mailbox_async(name, size)), hub)

    async def send_to(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the mailbox of VM ``to`` (or a client mailbox) as
        "@client"; waits while it is full (``timeout``: ExecutionTimeout).

        Raises:
            VMNotFound: no VM or mailbox has that name.
        """
        m, hub = self._parts()
        return await hub.wrap(m.send_to_async(to, value, timeout))

    # -- events ------------------------------------------------------------

    def on(self, event_type: str, fn: Callable[[dict], Any]) -> None:
        """Call ``fn(event_dict)`` on this loop for each event of a type.

        Args:
            event_type: e.g. ``"TIMEOUT"`` (case-insensitive) or ``"*"``.
            fn: a plain function (called on the loop: it must not block) or
                a coroutine function (run as a task).
        """
        key = "*" if event_type == "*" else event_type.upper()
        self._handlers.setdefault(key, []).append(fn)
        if key == "METRICS_RECORDED":   # opt-in, as VMManager.on
            m, _ = self._parts()
            metrics_opt_in(m)

    async def metrics_events(self, on: bool = True) -> None:
        """As ``VMManager.metrics_events``: METRICS_RECORDED on or off."""
        m, hub = self._parts()
        await hub.wrap(m.metrics_events_async(on))

    async def events(self, timeout: Optional[float] = None) -> AsyncIterator[Event]:
        """``async for ev in m.events()``: pushed events as ``Event(ts, vm,
        type, detail)``, oldest first, from a buffer of the last 10,000.

        Args:
            timeout: stop when no event arrives for this many seconds
                (None: run until the manager is closed).
        """
        _, hub = self._parts()
        while True:
            ev = await hub.next_event(timeout)
            if ev is None:
                return
            yield ev


def _on_loop(create_vm_kwargs: dict, hub: Hub) -> dict:
    """create_vm's arguments with coroutine callbacks made to run on the loop."""
    cbs = create_vm_kwargs.get("callbacks")
    if not isinstance(cbs, dict):
        return create_vm_kwargs
    return dict(create_vm_kwargs, callbacks={
        k: thread_callback(fn, hub.loop) if callable(fn) else fn for k, fn in cbs.items()})


__all__ = ["AsyncVMManager"]
