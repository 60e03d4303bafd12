"""The state one VMManager shares with its VM handles and helper threads.

Owns the Connection, the embedded manager (if any), the per-VM callback
tables, the event handlers and buffer, and the two small thread pools that
run callbacks and event handlers off the reader thread.  It holds no
reference to the VMManager, so ``weakref.finalize(manager, session.close)``
can clean up a manager the user forgot to close.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, NamedTuple, Optional

from .connection import Connection
from .embedded import EmbeddedManager
from .values import from_wire, to_wire

EVENT_BUFFER = 10000


class Event(NamedTuple):
    """One pushed event: ``(ts, vm, type, detail)``."""
    ts: float
    vm: Optional[str]
    type: str
    detail: dict


class Core:
    """Connection plus everything the reader thread hands work to (not a
    user session: see sessions.py).  Shared by a VMManager and its handles.
    """

    def __init__(self) -> None:
        self.conn: Optional[Connection] = None
        self.embedded: Optional[EmbeddedManager] = None
        self.vms: dict[str, Any] = {}                # name -> VM handle
        self.callbacks: dict[str, dict[str, Callable]] = {}
        self.handlers: dict[str, list[Callable]] = {}
        self.lock = threading.Lock()
        self._events: collections.deque = collections.deque(maxlen=EVENT_BUFFER)
        self._events_cv = threading.Condition()
        self._cb_pool = ThreadPoolExecutor(8, thread_name_prefix="bioxen-cb")
        self._ev_pool = ThreadPoolExecutor(1, thread_name_prefix="bioxen-events")
        self.closed = False

    # -- pushes from the reader thread ------------------------------------

    def on_push(self, msg: dict) -> None:
        """Called on the reader thread for each event/callback frame."""
        if "callback" in msg:
            self._submit(self._cb_pool, self._run_callback, msg)
            return
        detail = msg.get("detail")
        ev = Event(float(msg.get("ts") or time.time()), msg.get("vm"),
                   str(msg.get("event")), detail if isinstance(detail, dict) else {})
        with self._events_cv:
            self._events.append(ev)
            self._events_cv.notify_all()
        with self.lock:
            fns = self.handlers.get(ev.type, []) + self.handlers.get("*", [])
        for fn in fns:
            self._submit(self._ev_pool, _run_handler, fn, ev)

    @staticmethod
    def _submit(pool: ThreadPoolExecutor, fn: Callable, *args: Any) -> None:
        try:
            pool.submit(fn, *args)
        except RuntimeError:
            pass  # pool shut down: the session is closing

    def _run_callback(self, msg: dict) -> None:
        vm, key, name = msg.get("vm"), msg.get("callback"), msg.get("fn")
        fn = self.callbacks.get(vm, {}).get(name)
        try:
            if fn is None:
                raise LookupError("no Python callback %r registered for VM %r"
                                  % (name, vm))
            ret = fn(*from_wire(msg.get("args") or []))
        except BaseException as e:  # noqa: any exception becomes a Lua error
            self._answer_callback(vm, key, None, e)
            return
        if isinstance(ret, Future):
            # Answered when done, holding no thread meanwhile (aio.py's
            # coroutine callbacks return the Future of their task).
            def done(f: Future) -> None:
                try:
                    self._answer_callback(vm, key, f.result(), None)
                except BaseException as e:  # noqa: failed or cancelled
                    self._answer_callback(vm, key, None, e)
            ret.add_done_callback(done)
            return
        self._answer_callback(vm, key, ret, None)

    def _answer_callback(self, vm: Any, key: Any, ret: Any,
                         err: Optional[BaseException]) -> None:
        reply: dict[str, Any] = {"op": "cb_result", "vm": vm, "callback": key}
        try:
            if err is not None:
                raise err
            vals = list(ret) if isinstance(ret, tuple) else [] if ret is None else [ret]
            reply["result"] = to_wire(vals)
        except BaseException as e:  # noqa: any exception becomes a Lua error
            reply["error"] = "%s: %s" % (type(e).__name__, e)
        if self.conn is not None:
            self.conn.send_frame(reply)

    # -- events for the user ----------------------------------------------

    def next_event(self, timeout: Optional[float]) -> Optional[Event]:
        """Pop the oldest buffered event, waiting up to ``timeout`` s."""
        with self._events_cv:
            ok = self._events_cv.wait_for(lambda: self._events or self.closed, timeout)
            if not ok or not self._events:
                return None
            return self._events.popleft()

    # -- teardown ----------------------------------------------------------

    def close(self) -> None:
        """Shut down the embedded manager (if ours), close the connection,
        stop the pools.  Idempotent; safe from a finalizer."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
        conn, emb = self.conn, self.embedded
        if conn is not None and emb is not None and not conn.closed:
            try:
                conn.request("shutdown", {}).result(timeout=2.0)
            except Exception:
                pass  # it may already be gone; stop() kills it if needed
        if conn is not None:
            conn.close()
        if emb is not None:
            emb.stop()
        with self._events_cv:
            self._events_cv.notify_all()
        for pool in (self._cb_pool, self._ev_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        for vm in list(self.vms.values()):
            vm._closed = True
        self.vms.clear()
        self.callbacks.clear()


def _run_handler(fn: Callable, ev: Event) -> None:
    try:
        fn(ev._asdict())
    except Exception:
        import traceback
        traceback.print_exc()
