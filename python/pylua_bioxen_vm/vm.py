"""The VM handle: run code and call functions in one named Lua VM.

Created by VMManager.create_vm/get_vm.  Every op is written once, as an
``x_async`` method that sends its request over the manager's Connection and
returns a concurrent.futures Future; the plain ``x`` runs it with the caller
reading its own reply (``Connection.blocking``), and the asyncio handle awaits
the same Future (aio/vm.py).  Safe to use from many threads.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any, Callable, Generator, Optional

from .connection import encode_str
from .errors import InvalidRequest, VMNotFound
from .futures import chain, resolved
from .limits import check_limit
from .mailbox import Puller, drive
from .net import NetVMMixin
from .policy import Policy, check_policy
from .results import TRANSFORMS, ExecResult
from .runopts import add_run_options
from .stream import Stream
from .values import from_wire, to_wire


class VM(NetVMMixin):
    """Handle of one named Lua VM living in its own sandboxed node process.

    Attributes:
        name: the VM's name in the manager.
        pid: the node's pid when the handle was made (see ``stats()`` for the
            current one after a restart).
        echo: if True, ``execute``/``call`` write captured output to
            ``sys.stdout`` when the result arrives.
    """

    def __init__(self, core: Any, name: str, pid: Optional[int] = None,
                 echo: bool = True, isolation: Optional[dict] = None) -> None:
        self._core = core
        self.name = name
        self.pid = pid
        #: What the node got at creation: namespaces, seccomp, uid/gid, cgroup.
        self.isolation: dict = dict(isolation or {})
        self.echo = echo
        self._closed = False
        self._outbox: Optional[Puller] = None   # made by the first recv
        # Every plain exec request starts with these bytes: encode them once.
        self._exec_head = '{"op":"exec","vm":%s,"code":' % encode_str(name)

    def __repr__(self) -> str:
        return "<VM %r pid=%s%s>" % (self.name, self.pid, " closed" if self._closed else "")

    def _check_open(self) -> None:
        if self._closed:
            raise VMNotFound("VM %r was closed; create a new one with create_vm()"
                             % self.name, vm=self.name)

    def _request(self, op: str, fields: dict, transform: Any = None) -> Future:
        self._check_open()
        return self._core.conn.request(op, fields, vm=self.name, transform=transform)

    def _blocking(self, send: Callable[[], Future]) -> Any:
        # The plain (blocking) face of an op: Connection.blocking lets the
        # caller's thread read its own reply (see reader.py).
        return self._core.conn.blocking(send)

    def _wait(self, fut: Future) -> Any:
        # The result of an op already sent (or done without a connection).
        return fut.result() if fut.done() else self._core.conn.wait(fut)

    # -- execute --------------------------------------------------------

    def _exec(self, code: str, want_value: bool, timeout: Optional[float],
              instruction_limit: Optional[int], chunkname: Optional[str],
              expr: bool = False, filename: Optional[str] = None,
              context: Optional[dict] = None) -> Future:
        """Send an exec; its Future."""
        if not isinstance(code, str):
            raise InvalidRequest("code must be a str, not %s" % type(code).__name__,
                                 vm=self.name)
        self._check_open()
        transform = TRANSFORMS[self.echo, want_value]
        conn = self._core.conn
        if (chunkname is None and timeout is None and instruction_limit is None and not expr
                and filename is None and context is None):
            # Hot path: the same bytes _encode would write, without a dict.
            body = self._exec_head + encode_str(code) + "}"
            return conn.request_body(body, self.name, transform)
        fields: dict[str, Any] = {"code": code}
        if chunkname is not None:
            fields["chunkname"] = chunkname
        add_run_options(fields, filename, context, chunkname)
        if expr:
            fields["expr"] = True
        _per_call(fields, timeout, instruction_limit)
        return conn.request("exec", fields, vm=self.name, transform=transform)

    def stream(self, code: str, *, timeout: Optional[float] = None,
               instruction_limit: Optional[int] = None) -> Stream:
        """Run a Lua chunk and get what it prints, yields at its top level
        (``coroutine.yield(v, ...)``) and ``post()``s as it happens.

        Returns a ``Stream``: iterate it for ``StreamItem(kind, value)``s,
        the last of kind "result" (value: what ``execute`` returns).  Errors
        raise from the iteration.  Leaving a ``with vm.stream(...) as s``
        block (or ``s.close()``) early cancels the script.  See stream.py.
        """
        if not isinstance(code, str):
            raise InvalidRequest("code must be a str, not %s" % type(code).__name__,
                                 vm=self.name)
        self._check_open()
        return Stream(self._core.conn, self, code, timeout, instruction_limit)

    def execute_async(self, code: str, *, timeout: Optional[float] = None,
                      instruction_limit: Optional[int] = None,
                      chunkname: Optional[str] = None, expr: bool = False,
                      filename: Optional[str] = None,
                      context: Optional[dict] = None) -> Future:
        """Run a Lua chunk; return a Future of its return value.

        Args:
            code: Lua source text (binary chunks are refused by the VM).
            timeout: wall-clock seconds for this call, overriding the VM's.
            instruction_limit: instruction budget for this call.
            chunkname: raw Lua chunk name used in error messages ("=name"
                or "@file", as ``lua_load`` takes it).
            expr: expression mode, like the ``lua`` REPL: ``code`` is first
                compiled as ``"return " .. code`` (so ``"x + 5"`` returns its
                value), and as itself when that is not valid Lua (so
                statements still run; a syntax error reports on ``code``).
            filename: the name error messages and tracebacks give the chunk
                (``"calc.lua:3: boom"``), IsoBox's ``filename``; 1-255 bytes,
                no control characters; not together with ``chunkname``.
            context: globals for this run only (IsoBox's ``context``): set
                before the chunk runs, and afterwards each of those names
                holds again what it held before (absent stays absent), even
                when the run fails or times out.  Other globals the chunk
                assigns persist as usual.

        Returns:
            Future of None (no value), the value (one), or a tuple (several).
            It fails with LuaError, LuaSyntaxError, a LimitExceeded subclass,
            VMCrashed, VMNotFound or ManagerError.
        """
        return self._exec(code, True, timeout, instruction_limit, chunkname, expr,
                          filename, context)

    def execute(self, code: str, *, timeout: Optional[float] = None,
                instruction_limit: Optional[int] = None,
                chunkname: Optional[str] = None, expr: bool = False,
                filename: Optional[str] = None, context: Optional[dict] = None) -> Any:
        """Run a Lua chunk and return its value; see ``execute_async``."""
        return self._blocking(lambda: self._exec(code, True, timeout, instruction_limit,
                                                 chunkname, expr, filename, context))

    def execute_result_async(self, code: str, *, timeout: Optional[float] = None,
                             instruction_limit: Optional[int] = None,
                             chunkname: Optional[str] = None,
                             filename: Optional[str] = None,
                             context: Optional[dict] = None) -> Future:
        """Like ``execute_async`` but the Future holds an ExecResult; never echoes."""
        return self._exec(code, False, timeout, instruction_limit, chunkname, False,
                          filename, context)

    def execute_result(self, code: str, *, timeout: Optional[float] = None,
                       instruction_limit: Optional[int] = None,
                       chunkname: Optional[str] = None, filename: Optional[str] = None,
                       context: Optional[dict] = None) -> ExecResult:
        """Run a Lua chunk; return values, their Lua types, output, duration
        and memory (an ExecResult)."""
        return self._blocking(lambda: self._exec(code, False, timeout, instruction_limit,
                                                 chunkname, False, filename, context))

    def execute_file(self, path: str, *, timeout: Optional[float] = None,
                     instruction_limit: Optional[int] = None) -> Any:
        """Run a Lua source file (chunk name ``@<basename>``) and return its value.

        Raises:
            OSError: the file cannot be read.
        """
        return self.execute(read_text(path), timeout=timeout,
                            instruction_limit=instruction_limit,
                            chunkname="@" + os.path.basename(path))

    # -- call ---------------------------------------------------------

    def _call(self, func_name: str, args: tuple, want_value: bool,
              timeout: Optional[float], instruction_limit: Optional[int]) -> Future:
        if not isinstance(func_name, str) or not func_name:
            raise InvalidRequest("function name must be a non-empty str", vm=self.name)
        fields: dict[str, Any] = {"fn": func_name, "args": to_wire(list(args))}
        _per_call(fields, timeout, instruction_limit)
        return self._request("call", fields, TRANSFORMS[self.echo, want_value])

    def call_async(self, func_name: str, *args: Any, timeout: Optional[float] = None,
                   instruction_limit: Optional[int] = None) -> Future:
        """Call a Lua function by (dotted) name; return a Future of its value.

        Args:
            func_name: e.g. ``"greet"`` or ``"string.format"``.
            *args: arguments, converted as docs/protocol.md "Values" says.
            timeout, instruction_limit: per-call overrides of the VM's limits.

        Raises:
            ConversionError: at once, if an argument cannot be sent to Lua.
        """
        return self._call(func_name, args, True, timeout, instruction_limit)

    def call(self, func_name: str, *args: Any, timeout: Optional[float] = None,
             instruction_limit: Optional[int] = None) -> Any:
        """Call a Lua function by (dotted) name, e.g. ``call("string.format", "%d", 4)``.

        Returns:
            None, the value, or a tuple of values.
        """
        return self._blocking(lambda: self._call(func_name, args, True, timeout, instruction_limit))

    def call_result_async(self, func_name: str, *args: Any,
                          timeout: Optional[float] = None,
                          instruction_limit: Optional[int] = None) -> Future:
        """Like ``call_async`` but the Future holds an ExecResult; never echoes."""
        return self._call(func_name, args, False, timeout, instruction_limit)

    def call_result(self, func_name: str, *args: Any, timeout: Optional[float] = None,
                    instruction_limit: Optional[int] = None) -> ExecResult:
        """Like ``call`` but returns the ExecResult (output, timing); never echoes."""
        return self._blocking(lambda: self._call(func_name, args, False, timeout,
                                            instruction_limit))

    # -- state --------------------------------------------------------

    def function_exists_async(self, name: str) -> Future:
        """Future of ``function_exists``."""
        return self._request("exists", {"fn": name}, bool)

    def function_exists(self, name: str) -> bool:
        """True if the (dotted) global ``name`` is a callable Lua value."""
        return self._blocking(lambda: self.function_exists_async(name))

    def set_globals_async(self, values: dict) -> Future:
        """Future of ``set_globals`` (None once they are set).

        Raises:
            ConversionError, InvalidRequest: at once, as ``set_globals``.
        """
        if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
            raise InvalidRequest("set_globals takes a dict with str keys", vm=self.name)
        return self._request("set_globals", {"globals": {k: to_wire(v) for k, v in
                                                         values.items()}}, _none)

    def set_globals(self, values: dict) -> None:
        """Set several globals at once.

        Raises:
            ConversionError: a value cannot be sent to Lua.
            InvalidRequest: ``values`` is not a dict of str keys.
        """
        self._blocking(lambda: self.set_globals_async(values))

    def get_global_async(self, name: str) -> Future:
        """Future of ``get_global``."""
        return self._request("get_global", {"name": name}, from_wire)

    def get_global(self, name: str) -> Any:
        """Value of the (dotted) global ``name`` (None if unset)."""
        return self._blocking(lambda: self.get_global_async(name))

    def reset_async(self) -> Future:
        """Future of ``reset`` (None once the state is fresh)."""
        return self._request("reset", {}, _none)

    def reset(self) -> None:
        """Replace the Lua state by a fresh one (same limits and callbacks)."""
        self._blocking(self.reset_async)

    def stats_async(self) -> Future:
        """Future of ``stats``."""
        return self._request("stats", {})

    def stats(self) -> dict:
        """pid, mem_bytes (Lua heap), mem_limit, cpu_ms, rss_bytes (live RSS),
        executions, errors, restarts, last_error ({code, message, ts} or None).

        executions, errors and last_error are the manager's and span node
        restarts (a timeout kill counts); cpu_ms and rss_bytes are the
        current node's. A VM created with ``cpu_share`` also has cpu_share,
        throttled_ms (time its cgroup quota held it back, across restarts)
        and nr_throttled (periods in which it was)."""
        return self._blocking(self.stats_async)

    # -- policy ---------------------------------------------------------

    def set_policy_async(self, policy: Policy) -> Future:
        """Hot-reload the VM's policy; a Future of None.

        The manager swaps it at once (file grants apply to the next
        ``fs.read`` even of a running script) and the VM takes its TCP,
        memory and import grants before its next request; globals stay.
        Emits ``POLICY_HOTLOAD`` with the new policy as detail.  A TCP grant
        turns networking on in the VM, as a networking method does.

        Raises:
            InvalidRequest: at once, when ``policy`` is not a Policy.
        """
        fields = {"policy": check_policy(policy)}
        if policy.tcp and not self._net_on:
            self._request("net_enable", {})
            self._net_on = True
        return self._request("set_policy", fields, _none)

    def set_policy(self, policy: Policy) -> None:
        """Hot-reload the VM's policy and wait until the VM has it (see
        ``set_policy_async``).

        Raises:
            InvalidRequest: ``policy`` is not a Policy.
            VMNotFound: the VM is gone.
        """
        self._blocking(lambda: self.set_policy_async(policy))

    # -- outbox ---------------------------------------------------------

    def recv_steps(self, timeout: Optional[float] = None) -> Generator[Any, None, Any]:
        """The state machine of ``recv`` (mailbox.Puller.steps), for a
        driver: ``recv`` here, the asyncio handle's ``recv`` on the loop.
        Both share this VM's one outbox puller, so a value is never lost
        to a driver that gave up.

        Raises:
            VMNotFound: at once, the VM is closed.
        """
        self._check_open()
        if self._outbox is None:
            self._outbox = Puller(self._core.conn, "outbox_recv", {"vm": self.name},
                                  "the outbox of VM %r" % self.name)
        return self._outbox.steps(timeout, pick=1)

    def recv(self, timeout: Optional[float] = None) -> Any:
        """Return the next value the VM's Lua code gave to ``post(value)``.

        Posts wait in the VM's outbox in the manager (``outbox_size``
        values, default 1024); while it is full, ``post`` blocks in the VM.

        Raises:
            TimeoutError: nothing was posted within ``timeout`` seconds.
            VMNotFound: the VM is closed or was destroyed.
            RuntimeError: called on the loop of an AsyncVMManager.
        """
        self._core.conn.check_may_block()
        return drive(self.recv_steps(timeout))

    # -- lifecycle ----------------------------------------------------

    def close_async(self) -> Future:
        """Forget the VM here and send its destroy; a Future of None once
        the node is gone (at once when there is nothing to send: already
        closed, no connection).  Idempotent."""
        if self._closed:
            return resolved()
        self._closed = True
        s = self._core
        s.vms.pop(self.name, None)
        s.callbacks.pop(self.name, None)
        if s.conn is None or s.conn.closed:
            return resolved()
        return chain(s.conn.request("destroy", {}, vm=self.name), _none, _gone_is_closed)

    def close(self) -> None:
        """Destroy the VM (its node exits).  Idempotent."""
        self._wait(self.close_async())

    def __enter__(self) -> "VM":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _per_call(fields: dict, timeout: Optional[float],
              instruction_limit: Optional[int]) -> None:
    if timeout is not None:
        fields["timeout"] = check_limit("timeout", timeout)
    if instruction_limit is not None:
        fields["instruction_limit"] = check_limit("instruction_limit", instruction_limit)


def _none(_: Any) -> None:
    return None


def _gone_is_closed(e: BaseException) -> None:
    # A destroy that finds the VM gone already did its job.
    if isinstance(e, VMNotFound):
        return None
    raise e


def read_text(path: str) -> str:
    """The text of a Lua source file (UTF-8)."""
    with open(path, "r", encoding="utf-8") as f:
        return f.read()


__all__ = ["VM", "ExecResult"]
