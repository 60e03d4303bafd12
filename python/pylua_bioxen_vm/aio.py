"""asyncio front end: AsyncVMManager, AsyncVM and AsyncMailbox.

    async with AsyncVMManager() as m:
        vm = await m.create_vm("vm1", timeout=2.0)
        print(await vm.execute("return 6 * 7"))          # 42

No second protocol stack: an AsyncVMManager owns a plain VMManager, and every
coroutine sends its request through the same Connection (connection.py),
whose reader (reader.py) resolves a concurrent.futures.Future as for the
Futures API.  The Hub below carries that result onto the event loop:

  event loop --request()--> Connection --> manager
  reader thread --Future done--> Hub.post: append to a locked list; if the
                                 no drain is queued yet, loop.call_soon_threadsafe(drain)
  event loop --Hub._drain--> set every finished asyncio future at once

So no thread is made or parked per call, and a burst of N replies costs the
loop one wake-up, not N (asyncio.wrap_future would schedule one callback per
reply).  The reader never waits on the loop: a done-callback only appends to
a list, so thousands of awaits in flight cannot deadlock it.  Pushed events
take the same road from Core's event thread (one "*" handler) into a bounded
buffer read by ``async for ev in m.events()``.

Cancelling a task that awaits a request cancels only its asyncio future: the
request is on the wire and cannot be taken back, its reply arrives later and
is dropped, and the connection carries on.

Blocking steps (starting the embedded manager, connecting, closing) run once
each in the loop's default executor.  An AsyncVMManager belongs to the loop
that opened it; ``m.sync`` is the underlying VMManager, usable from other
threads (never block the loop with it).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import os
import threading
import time
from concurrent.futures import Future
from typing import Any, AsyncIterator, Callable, Optional

from .aio_more import AsyncSession, AsyncStream
from .core import EVENT_BUFFER, Event
from .errors import InvalidRequest, ManagerError, VMNotFound
from .mailbox import Mailbox, Puller, send_mail
from .metrics import history_n
from .manager import _NAME_RE, VMManager
from .policy import Policy
from .sessions import Session, session_vm_name
from .values import from_wire
from .vm import VM, ExecResult

# Seconds a pull may outlive its own deadline before we stop awaiting it (the
# manager answers an empty pull at the deadline; this is slack, as in Puller).
_PULL_SLACK = 5.0


class Hub:
    """Carries results and events from the client's threads onto one loop.

    Any thread may call ``wrap``'s done-callbacks and ``push_event``; only the
    loop runs ``_drain``, the handlers and the event waiters.  Holds no
    reference to the VMManager, so Core's handler table (which references the
    Hub) cannot keep a forgotten manager alive.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 handlers: dict[str, list[Callable]]) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._ready: list[tuple[Callable, tuple]] = []   # (fn, args) to run on the loop
        self._scheduled = False                   # a _drain is queued on the loop
        # Loop-only state below.
        self.events: collections.deque = collections.deque(maxlen=EVENT_BUFFER)
        self._waiters: set[asyncio.Future] = set()
        self.handlers = handlers                  # AsyncVMManager.on's table
        self._tasks: set[asyncio.Task] = set()    # handler tasks, kept from GC
        self.closed = False

    # -- any thread ----------------------------------------------------------

    def wrap(self, cfut: Future) -> asyncio.Future:
        """An asyncio future (of this loop) that settles like ``cfut``.

        Raises:
            RuntimeError: called from outside the Hub's loop.
        """
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("this AsyncVMManager belongs to another event loop; "
                               "use m.sync from other threads and loops")
        afut = self.loop.create_future()
        if cfut.done():
            _settle(afut, cfut)
        else:
            cfut.add_done_callback(functools.partial(self.post, _settle, afut))
        return afut

    def push_event(self, ev: dict) -> None:
        """Core's "*" event handler (runs on Core's event thread)."""
        self.post(self._deliver, Event(**ev))

    def post(self, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon, from any thread, without
        waiting; calls posted before the loop gets to them share one wake-up.
        (The way to feed anything else, e.g. stream items, to the loop.)"""
        with self._lock:
            self._ready.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            pass  # the loop is closed: nobody can await these any more

    # -- the loop ------------------------------------------------------------

    def _drain(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
            self._scheduled = False
        for fn, args in ready:
            try:
                fn(*args)
            except Exception as e:  # one bad call must not strand the rest of the batch
                self.loop.call_exception_handler({
                    "message": "bioxen: %r failed on the event loop" % (fn,), "exception": e})

    def _deliver(self, ev: Event) -> None:
        self.events.append(ev)       # a full buffer drops its oldest event
        self.wake()
        for fn in self.handlers.get(ev.type, []) + self.handlers.get("*", []):
            try:
                ret = fn(ev._asdict())
                if inspect.isawaitable(ret):
                    task = asyncio.ensure_future(ret)
                    self._tasks.add(task)
                    task.add_done_callback(self._handler_done)
            except Exception as e:  # a handler bug must not stop the others
                self.loop.call_exception_handler({
                    "message": "bioxen event handler %r failed" % (fn,), "exception": e})

    def _handler_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.loop.call_exception_handler({
                "message": "bioxen event handler task failed",
                "exception": task.exception(), "task": task})

    def wake(self) -> None:
        """Wake every ``next_event`` waiter (an event came, or we closed)."""
        for w in self._waiters:
            if not w.done():
                w.set_result(None)

    async def next_event(self, timeout: Optional[float]) -> Optional[Event]:
        """The oldest buffered event; None after ``timeout`` s or on close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.events:
            if self.closed:
                return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            w = self.loop.create_future()
            self._waiters.add(w)
            try:
                await asyncio.wait_for(w, left)
            except asyncio.TimeoutError:
                return None
            finally:
                self._waiters.discard(w)
        return self.events.popleft()


def _settle(afut: asyncio.Future, cfut: Future) -> None:
    if afut.cancelled():
        return  # its task was cancelled: the late reply is dropped
    exc = cfut.exception()
    if exc is not None:
        afut.set_exception(exc)
    else:
        afut.set_result(cfut.result())


def _thread_callback(fn: Callable, loop: asyncio.AbstractEventLoop) -> Callable:
    """A Lua->Python callback as Core's callback threads run it: a plain
    function as is (on a worker thread); a coroutine function as a task on
    ``loop``, whose concurrent Future Core answers Lua from when it is done,
    so no thread waits while the coroutine runs."""
    if not inspect.iscoroutinefunction(fn):
        return fn

    @functools.wraps(fn)
    def run(*args: Any) -> Future:
        return asyncio.run_coroutine_threadsafe(fn(*args), loop)
    return run


async def _pull(hub: Hub, puller: Puller, timeout: Optional[float]) -> tuple[str, Any]:
    """Puller.recv for the loop: the same one parked pull per queue and the
    same inbox, so a value is never lost to a cancelled or timed-out await
    (the pull's answer lands in the inbox whoever asked)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        with puller._lock:
            if puller._inbox:
                return puller._inbox.popleft()
            fut = puller._pull
            started = fut is None or fut.done()
            if started:
                fields: dict = dict(puller._fields, max=256)
                if left is not None:
                    fields["timeout"] = left
                fut = puller._pull = puller._conn.request(puller._op, fields)
        if started:
            fut.add_done_callback(puller._keep)   # before ours: the inbox fills first
        try:
            await asyncio.wait_for(hub.wrap(fut), None if left is None else left + _PULL_SLACK)
        except asyncio.TimeoutError:
            pass
        with puller._lock:
            if puller._inbox:
                return puller._inbox.popleft()
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError("nothing in %s within %ss" % (puller._what, timeout))


class AsyncVM:
    """asyncio handle of one VM; the coroutines mirror ``VM``'s methods.

    Attributes:
        sync: the plain VM handle (same VM, same connection), for threads.
    """

    def __init__(self, vm: VM, hub: Hub) -> None:
        self.sync = vm
        self._hub = hub

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
        return "<AsyncVM %r pid=%s%s>" % (self.name, self.pid,
                                          " closed" if self.sync._closed else "")

    def _await(self, op: str, fields: dict, transform: Any = None) -> asyncio.Future:
        return self._hub.wrap(self.sync._request(op, fields, transform))

    async def execute(self, code: str, *, timeout: Optional[float] = None,
                      instruction_limit: Optional[int] = None,
                      chunkname: Optional[str] = None, expr: bool = False) -> Any:
        """Run a Lua chunk and return its value (see ``VM.execute_async``;
        ``expr=True`` is the REPL's expression mode).

        Raises:
            LuaError, LuaSyntaxError, a LimitExceeded subclass, VMCrashed,
            VMNotFound, ManagerError: as the sync API.
        """
        return await self._hub.wrap(self.sync.execute_async(
            code, timeout=timeout, instruction_limit=instruction_limit, chunkname=chunkname,
            expr=expr))

    def stream(self, code: str, *, timeout: Optional[float] = None,
               instruction_limit: Optional[int] = None) -> AsyncStream:
        """``async for item in vm.stream(code)``: what the chunk prints,
        yields at its top level and ``post()``s, as it happens, then its
        result (see ``VM.stream``).  Sends the request at once; never blocks."""
        return AsyncStream(self.sync.stream(code, timeout=timeout,
                                            instruction_limit=instruction_limit), self._hub)

    async def execute_result(self, code: str, *, timeout: Optional[float] = None,
                             instruction_limit: Optional[int] = None,
                             chunkname: Optional[str] = None) -> ExecResult:
        """Run a Lua chunk; its ExecResult (values, output, timing). Never echoes."""
        return await self._hub.wrap(self.sync.execute_result_async(
            code, timeout=timeout, instruction_limit=instruction_limit, chunkname=chunkname))

    async def execute_file(self, path: str, *, timeout: Optional[float] = None,
                           instruction_limit: Optional[int] = None) -> Any:
        """Run a Lua source file (read in the default executor).

        Raises:
            OSError: the file cannot be read.
        """
        code = await self._hub.loop.run_in_executor(None, _read_text, path)
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
        return await self._hub.wrap(self.sync._call(
            func_name, args, False, timeout, instruction_limit))

    async def function_exists(self, name: str) -> bool:
        """True if the (dotted) global ``name`` is a callable Lua value."""
        return await self._await("exists", {"fn": name}, bool)

    async def set_globals(self, values: dict) -> None:
        """Set several globals at once.

        Raises:
            ConversionError: a value cannot be sent to Lua.
            InvalidRequest: ``values`` is not a dict of str keys.
        """
        await self._await("set_globals", self.sync._globals_fields(values), _none)

    async def get_global(self, name: str) -> Any:
        """Value of the (dotted) global ``name`` (None if unset)."""
        return await self._await("get_global", {"name": name}, from_wire)

    async def reset(self) -> None:
        """Replace the Lua state by a fresh one (same limits and callbacks)."""
        await self._await("reset", {}, _none)

    async def stats(self) -> dict:
        """pid, mem_bytes, mem_limit, cpu_ms, rss_bytes, executions, errors..."""
        return await self._await("stats", {})

    async def set_policy(self, policy: Policy) -> None:
        """Hot-reload the VM's policy; returns once the VM has it."""
        await self._hub.wrap(self.sync.set_policy_async(policy))

    async def recv(self, timeout: Optional[float] = None) -> Any:
        """The next value the VM's Lua code gave to ``post(value)``.

        Raises:
            TimeoutError: nothing was posted within ``timeout`` seconds.
            VMNotFound: the VM is closed or was destroyed.
        """
        vm = self.sync
        if vm._closed:
            raise VMNotFound("VM %r was closed; create a new one with create_vm()"
                             % vm.name, vm=vm.name)
        if vm._outbox is None:
            # Shared with vm.recv(): one inbox, whichever API reads it.
            vm._outbox = Puller(vm._core.conn, "outbox_recv", {"vm": vm.name},
                                "the outbox of VM %r" % vm.name)
        return (await _pull(self._hub, vm._outbox, timeout))[1]

    async def close(self) -> None:
        """Destroy the VM (its node exits).  Idempotent."""
        fut = self.sync._close_async()
        if fut is None:
            return
        try:
            await self._hub.wrap(fut)
        except VMNotFound:
            pass

    async def __aenter__(self) -> "AsyncVM":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class AsyncMailbox:
    """asyncio handle of a client mailbox (see ``Mailbox``)."""

    def __init__(self, mailbox: Mailbox, hub: Hub) -> None:
        self.sync = mailbox
        self._hub = hub

    @property
    def name(self) -> str:
        return self.sync.name

    def __repr__(self) -> str:
        return "<AsyncMailbox %r%s>" % (self.name, " closed" if self.sync._closed else "")

    async def send(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the VM or mailbox ``to``, as this mailbox; waits
        (without blocking the loop) while the target is full."""
        return await self._hub.wrap(send_mail(self.sync._conn, to, value, self.name, timeout))

    async def recv(self, timeout: Optional[float] = None) -> tuple[str, Any]:
        """The next ``(sender, value)``.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            VMNotFound: the mailbox was closed.
        """
        return await _pull(self._hub, self.sync._puller, timeout)

    async def close(self) -> None:
        """Close the mailbox; messages still in it are dropped with it."""
        mb = self.sync
        if not mb._closed:
            mb._closed = True
            await self._hub.wrap(mb._conn.request("mailbox_close", {"name": mb.name}))

    async def __aenter__(self) -> "AsyncMailbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


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

    async def __aenter__(self) -> "AsyncVMManager":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        if self.sync is None:
            return "<AsyncVMManager not open>"
        return "<AsyncVMManager %s vms=%d%s>" % (self.sync.address, len(self.sync._core.vms),
                                                 " closed" if self.closed else "")

    def _parts(self) -> tuple[VMManager, Hub]:
        if self.sync is None or self._hub is None:
            raise ManagerError("AsyncVMManager is not open: use `async with "
                               "AsyncVMManager() as m` or `await m.open()`")
        return self.sync, self._hub

    def _request(self, op: str, fields: dict, transform: Any = None) -> asyncio.Future:
        m, hub = self._parts()
        return hub.wrap(m._core.conn.request(op, fields, transform=transform))

    # -- VMs ---------------------------------------------------------------

    async def create_vm(self, name: str, networked: bool = False, **kw: Any) -> AsyncVM:
        """Create a named VM; arguments as ``VMManager.create_vm``.
        ``callbacks`` may hold coroutine functions: they run on this loop.

        Raises:
            VMExists, IsolationUnavailable, InvalidRequest, ManagerError.
        """
        m, hub = self._parts()
        cbs = kw.get("callbacks")
        if isinstance(cbs, dict):
            kw["callbacks"] = {k: _thread_callback(fn, hub.loop) if callable(fn) else fn
                               for k, fn in cbs.items()}
        vm = await hub.wrap(m.create_vm_async(name, networked, **kw))
        return AsyncVM(vm, hub)

    async def get_vm(self, name: str) -> AsyncVM:
        """Handle of an existing VM (ours, or a persistent one by name).

        Raises:
            VMNotFound: no VM of that name.
        """
        m, hub = self._parts()
        vm = m._core.vms.get(name)
        if vm is None:
            for info in await self.list_vms():
                if info.get("name") == name:
                    vm = VM(m._core, name, info.get("pid"))
                    break
            else:
                raise VMNotFound("VM %r: no VM of that name (create it with create_vm() "
                                 "first)" % name, vm=name, code="VM_NOT_FOUND")
        return AsyncVM(vm, hub)

    async def list_vms(self) -> list[dict]:
        """One dict per VM: name, pid, state, pending, persistent, networked."""
        return await self._request("list", {}, list)

    async def shutdown_all(self) -> int:
        """Destroy every VM of this connection (and persistent ones); the count."""
        n = await self._request("shutdown_all", {})
        s = self.sync._core  # type: ignore[union-attr]
        for vm in list(s.vms.values()):
            vm._closed = True
        s.vms.clear()
        s.callbacks.clear()
        return int(n or 0)

    async def metrics(self) -> dict:
        """As ``VMManager.metrics``."""
        return await self._request("metrics", {}, dict)

    async def history(self, n: int = 100) -> list[dict]:
        """As ``VMManager.history``: the last ``n`` runs, newest last."""
        return await self._request("history", {"n": history_n(n)}, list)

    async def ping(self) -> bool:
        """True if the manager answers."""
        return await self._request("ping", {}) == "pong"

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
        m._pool_configure()
        r = await hub.wrap(m._core.conn.request("pool_warmup", {}))
        return int((r or {}).get("ready", 0))

    # -- sessions and projects ----------------------------------------------

    async def create_session(self, session_id: str, **create_vm_kwargs: Any) -> AsyncSession:
        """A session whose state persists across runs (``VMManager.create_session``).

        Raises:
            VMExists, InvalidRequest, ManagerError.
        """
        m, _ = self._parts()
        vm = await self.create_vm(session_vm_name(session_id), **create_vm_kwargs)
        s = Session(m, session_id, vm.sync)
        m._session_table()[session_id] = s
        return AsyncSession(s, vm)

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
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidRequest("bad mailbox name %r" % (name,))
        fields: dict = {"name": name}
        if size is not None:
            fields["size"] = size
        await self._request("mailbox_open", fields)
        return AsyncMailbox(Mailbox(m._core.conn, name), hub)

    async def send_to(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the mailbox of VM ``to`` (or a client mailbox) as
        "@client"; waits while it is full (``timeout``: ExecutionTimeout).

        Raises:
            VMNotFound: no VM or mailbox has that name.
        """
        m, hub = self._parts()
        return await hub.wrap(send_mail(m._core.conn, to, value, None, timeout))

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


def _none(_: Any) -> None:
    return None


def _read_text(path: str) -> str:
    with open(path, "r", encoding="utf-8") as f:
        return f.read()


__all__ = ["AsyncVMManager", "AsyncVM", "AsyncMailbox", "AsyncStream", "AsyncSession"]
