"""The manager-side pool of stateless VMs: ``run``, ``map`` and friends.

A part of VMManager (a ManagerBase, like net_modes.py's NetManagerMixin).  The pool lives in the
manager, one per connection (docs/protocol.md "Pool"): a run goes to an idle
pool VM, which the manager resets right behind it, so no run sees another's
globals or stdlib changes.  The pool is configured lazily, on the first run or
warmup, with the VMManager's ``pool_min``/``pool_max``/``pool_idle_timeout``
and default limits.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import Future
from typing import Any, Iterable, Optional

from .errors import InvalidRequest
from .futures import chain
from .limits import check_limit
from .manager_base import ManagerBase
from .runopts import add_run_options
from .values import from_wire, to_wire

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

# One chunk of a map: apply the function to each item of the globals' list.
_MAP_CHUNK = ("local f = %s\n"
              "local items, out = __bx_items, {}\n"
              "for i = 1, __bx_n do out[i] = f(items[i]) end\n"
              "return out, __bx_n")


def _value(r: Any) -> Any:
    vals = from_wire((r or {}).get("values") or [])
    if not vals:
        return None
    return vals[0] if len(vals) == 1 else tuple(vals)


def _chunk_values(r: Any) -> list:
    vals = from_wire((r or {}).get("values") or [])
    out, n = (vals + [None, 0])[:2]
    if isinstance(out, dict):   # a Lua table of n results (empty or with nil holes)
        return [out.get(i + 1) for i in range(int(n))]
    out = list(out or [])
    return out + [None] * (int(n) - len(out))


class PoolManagerMixin(ManagerBase):
    """run/map over the connection's pool of stateless VMs (VMManager part)."""

    def _pool_init(self, pool_min: int, pool_max: int, pool_idle_timeout: float) -> None:
        for key, v in (("pool_min", pool_min), ("pool_max", pool_max)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 4096:
                raise InvalidRequest("%s must be an integer from 0 to 4096, not %r" % (key, v))
        if pool_max < 1 or pool_min > pool_max:
            raise InvalidRequest("pool_max must be at least 1 and at least pool_min")
        check_limit("timeout", pool_idle_timeout)
        self._pool_cfg = {"min": pool_min, "max": pool_max,
                          "idle_timeout": float(pool_idle_timeout)}
        self._pool_lock = threading.Lock()
        self._pool_ready = False

    def _pool_configure(self) -> None:
        # The request is pipelined ahead of the first run on the same
        # connection, so the run never waits for its reply.
        if self._pool_ready:
            return
        with self._pool_lock:
            if not self._pool_ready:
                fields = dict(self._pool_cfg, limits=dict(self.default_limits))
                self._core.conn.request("pool_config", fields)
                self._pool_ready = True

    def configure_pool(self, *, min: Optional[int] = None, max: Optional[int] = None,
                       idle_timeout: Optional[float] = None, **limits: Any) -> None:
        """Change the pool's size bounds, idle timeout or VM limits (the
        manager's defaults unless given).  VMs of other limits are replaced
        as soon as they are idle."""
        cfg = dict(self._pool_cfg)
        for k, v in (("min", min), ("max", max), ("idle_timeout", idle_timeout)):
            if v is not None:
                cfg[k] = v
        lim = dict(self.default_limits)
        lim.update(limits)
        self._core.conn.call("pool_config", dict(cfg, limits=lim))
        with self._pool_lock:
            self._pool_cfg = cfg
            self._pool_ready = True

    def warmup_pool_async(self) -> Future:
        """Future of ``warmup_pool``: how many pool VMs are ready."""
        self._pool_configure()
        return self._core.conn.request("pool_warmup", {},
                                       transform=lambda r: int((r or {}).get("ready", 0)))

    def warmup_pool(self, timeout: Optional[float] = None) -> int:
        """Wait until ``pool_min`` pool VMs are started; return how many are ready."""
        return self._core.conn.blocking(self.warmup_pool_async, timeout)

    def run_async(self, code: str, *, timeout: Optional[float] = None,
                  globals: Optional[dict] = None, chunkname: Optional[str] = None,
                  expr: bool = False, filename: Optional[str] = None,
                  context: Optional[dict] = None) -> Future:
        """Run a Lua chunk on an idle pool VM; a Future of its value.

        The VM is reset after the run: nothing it set survives.  ``globals``
        are set before the chunk runs; ``context`` too (IsoBox's name; on a
        pool VM the two differ only in that ``context`` is set by the exec
        itself and restored after it, which the reset makes moot);
        ``filename`` names the chunk in error messages (``"calc.lua:3:
        boom"``); ``expr=True`` is expression mode (``run("1 + 2",
        expr=True)`` -> 3; see ``VM.execute_async``).  Fails like
        ``VM.execute_async`` (LuaError, ExecutionTimeout, VMCrashed, ...).
        """
        return self._run_raw(code, timeout, globals, chunkname, _value, expr, filename, context)

    def _run_raw(self, code: str, timeout: Optional[float], globals: Optional[dict],
                 chunkname: Optional[str] = None, transform: Any = None,
                 expr: bool = False, filename: Optional[str] = None,
                 context: Optional[dict] = None) -> Future:
        if not isinstance(code, str):
            raise InvalidRequest("code must be a str, not %s" % type(code).__name__)
        fields: dict[str, Any] = {"code": code}
        if timeout is not None:
            fields["timeout"] = check_limit("timeout", timeout)
        if chunkname is not None:
            fields["chunkname"] = chunkname
        add_run_options(fields, filename, context, chunkname)
        if expr:
            fields["expr"] = True
        if globals:
            if not isinstance(globals, dict) or not all(isinstance(k, str) for k in globals):
                raise InvalidRequest("globals must be a dict with str keys")
            fields["globals"] = {k: to_wire(v) for k, v in globals.items()}
        self._pool_configure()
        return self._core.conn.request("run", fields, transform=transform)

    def run(self, code: str, *, timeout: Optional[float] = None,
            globals: Optional[dict] = None, chunkname: Optional[str] = None,
            expr: bool = False, filename: Optional[str] = None,
            context: Optional[dict] = None) -> Any:
        """Run a Lua chunk on a fresh pool VM and return its value (see run_async)."""
        return self._core.conn.blocking(lambda: self.run_async(
            code, timeout=timeout, globals=globals, chunkname=chunkname, expr=expr,
            filename=filename, context=context))

    def map_async(self, func_name_or_code: str, items: Iterable, *,
                  chunksize: Optional[int] = None,
                  timeout: Optional[float] = None) -> list:
        """Start applying a Lua function to each item over the pool.

        Args:
            func_name_or_code: a dotted global function name (``"string.upper"``)
                or Lua code that evaluates to a function
                (``"function(x) return x * x end"``).
            items: values sent to the VMs as globals.
            chunksize: items per run; None (the default) picks one like
                ``multiprocessing.Pool.map``: about four chunks per pool VM,
                since every run costs a fresh Lua state.
            timeout: wall seconds per chunk.

        Returns:
            One Future per chunk, in order, each of the list of that chunk's results.
        """
        return [chain(f, _chunk_values) for f in self._map_runs(func_name_or_code, items,
                                                                 chunksize, timeout)]

    def _map_runs(self, f: Any, items: Iterable, chunksize: Any,
                  timeout: Optional[float]) -> list:
        """The run Futures of a map, one per chunk (raw chunk replies)."""
        if not isinstance(f, str) or not f.strip():
            raise InvalidRequest("map needs a function name or Lua code as a str")
        items = list(items)
        if chunksize is None:
            chunksize = max(1, -(-len(items) // (4 * self._pool_cfg["max"])))
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise InvalidRequest("chunksize must be a positive integer, not %r" % (chunksize,))
        code = _MAP_CHUNK % (f if _DOTTED.match(f) else "(%s)" % f)
        futs = []
        for i in range(0, len(items), chunksize):
            part = items[i:i + chunksize]
            futs.append(self._run_raw(code, timeout,
                                      {"__bx_items": part, "__bx_n": len(part)}))
        return futs

    def map(self, func_name_or_code: str, items: Iterable, *,
            chunksize: Optional[int] = None,
            timeout: Optional[float] = None) -> list:
        """Apply a Lua function to each item over the pool; results in order
        (see map_async).  The first failing chunk's error is raised."""
        self._core.conn.check_may_block()   # before sending anything
        out: list = []
        for fut in self.map_async(func_name_or_code, items, chunksize=chunksize,
                                  timeout=timeout):
            out.extend(self._core.conn.wait(fut))
        return out
