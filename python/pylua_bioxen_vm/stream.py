"""Streamed execution: ``vm.stream(code)`` (docs/protocol.md, "Streaming").

The script's ``print`` lines, the values it yields at the top level of the
chunk (``coroutine.yield(v, ...)``) and what it ``post()``s arrive as
``StreamItem``s while it runs, then its result as a last item of kind
"result".  Back-pressure is end to end: the node stops after STREAM_WINDOW
items nobody has taken, and the consumer acknowledges items as it takes them.

Two layers:

* ``StreamCore``: a thread-safe buffer between the connection's reader (which
  ``push``es items and ``finish``es the stream) and one consumer (which
  ``take``s them).  Taking acknowledges, so a slow consumer slows the
  producer.  It knows nothing of threads waiting on it beyond a Condition and
  an optional ``on_ready`` callback, so an asyncio wrapper can reuse it: set
  ``on_ready`` to a function that calls ``loop.call_soon_threadsafe`` and use
  ``take_nowait`` from the event loop.
* ``Stream``: the blocking iterator and context manager a user gets.
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import Future
from typing import Any, Callable, NamedTuple, Optional

from .results import to_result
from .values import from_wire

#: Items the node may send before the consumer acknowledges (vmnode/stream.h).
STREAM_WINDOW = 32
# Acknowledge after this many taken items, or at once when the buffer runs
# dry (so a consumer about to wait never holds back the producer's window).
_ACK_EVERY = STREAM_WINDOW // 2

KINDS = ("print", "yield", "post", "result")


class StreamItem(NamedTuple):
    """One item of a stream.

    Attributes:
        kind: "print" (value: the line, without its newline), "yield" (value:
            the yielded values as a tuple), "post" (value: the posted value)
            or "result" (value: what ``execute`` would have returned).
    """
    kind: str
    value: Any


class StreamEmpty(Exception):
    """``take_nowait`` found nothing buffered (the stream is not over)."""


class StreamCore:
    """Buffer of one stream between a producer and one consumer.

    Args:
        ack: ``ack(n, cancel)`` sends a stream_ack for ``n`` taken items (or a
            cancel); called on the consumer's thread, outside the lock.

    The producer side (the connection's reader) calls ``push`` for each item
    and ``finish`` once; neither blocks.  The consumer calls ``take`` (or
    ``take_nowait``) until it returns the "result" item or raises the
    request's error; ``cancel`` ends the stream early.
    """

    def __init__(self, ack: Callable[[int, bool], None]) -> None:
        self._ack = ack
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._items: collections.deque[StreamItem] = collections.deque()
        self._end: Optional[tuple[Optional[StreamItem], Optional[BaseException]]] = None
        self._taken = 0          # taken since the last ack
        self._over = False       # the consumer has had the end (or cancelled)
        #: Called (on the reader thread, no lock held) after each push/finish.
        self.on_ready: Optional[Callable[[], None]] = None

    # -- producer ---------------------------------------------------------

    def push(self, kind: str, value: Any) -> None:
        """Add one item (reader thread).  Dropped after cancel/finish."""
        with self._cv:
            if self._over or self._end is not None:
                return
            self._items.append(StreamItem(kind, value))
            self._cv.notify_all()
        self._ready()

    def finish(self, result: Any = None, error: Optional[BaseException] = None) -> None:
        """End the stream with its result value or its error (reader thread)."""
        with self._cv:
            if self._end is not None:
                return
            self._end = (None, error) if error is not None else (StreamItem("result", result), None)
            self._cv.notify_all()
        self._ready()

    def _ready(self) -> None:
        cb = self.on_ready
        if cb is not None:
            cb()

    # -- consumer ---------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Items received and not yet taken (at most STREAM_WINDOW)."""
        with self._lock:
            return len(self._items)

    @property
    def done(self) -> bool:
        """True once the consumer has taken the end, or cancelled."""
        return self._over

    def take(self, timeout: Optional[float] = None) -> StreamItem:
        """The next item, waiting up to ``timeout`` s (None: until it comes).

        Raises:
            The request's BioxenError after the items before it.
            StopIteration: the end was already taken, or the stream cancelled.
            TimeoutError: nothing came within ``timeout``.
        """
        with self._cv:
            if not self._cv.wait_for(lambda: self._items or self._end is not None or self._over,
                                     timeout):
                raise TimeoutError("no stream item within %ss" % timeout)
        return self.take_nowait()

    def take_nowait(self) -> StreamItem:
        """``take`` without waiting: raises StreamEmpty when nothing is in."""
        n = 0
        with self._lock:
            if self._over:
                raise StopIteration
            if self._items:
                item = self._items.popleft()
                self._taken += 1
                if self._taken >= _ACK_EVERY or not self._items:
                    n, self._taken = self._taken, 0
            elif self._end is not None:
                self._over = True
                item, error = self._end
                if error is not None:
                    raise error
                assert item is not None
                return item
            else:
                raise StreamEmpty()
        if n:
            self._ack(n, False)
        return item

    def cancel(self) -> bool:
        """Stop consuming.  Returns True if the script was still running (a
        cancel went to the node, and its reply will be dropped)."""
        with self._cv:
            if self._over:
                return False
            self._over = True
            running = self._end is None
            self._items.clear()
            self._cv.notify_all()
        if running:
            self._ack(0, True)
        return running


class _Sink:
    """The connection's side of one stream: gets its id, items and reply on
    the reader thread and feeds the StreamCore.  Holds no reference to the
    Stream, so a Stream dropped unread is collected (and cancels itself)."""

    def __init__(self, conn: Any, vm: str, core: StreamCore) -> None:
        self.conn = conn
        self.vm = vm
        self.core = core
        self.rid: Optional[int] = None
        self.result: Optional[Any] = None

    def stream_started(self, rid: int) -> None:
        """The request's id, told before anything of it can arrive."""
        self.rid = rid

    def stream_push(self, kind: Any, value: Any) -> None:
        """One stream frame of this request (reader thread)."""
        try:
            if kind == "yield":
                value = tuple(from_wire(value if isinstance(value, list) else []))
            elif kind == "post":
                value = from_wire(value)
            elif kind != "print":
                return
        except Exception:
            return  # a value we cannot decode: the node is not ours to trust
        self.core.push(kind, value)

    def on_reply(self, fut: Future) -> None:
        if self.rid is not None:
            self.conn.forget_stream(self.rid)
        exc = fut.exception()
        if exc is not None:
            self.core.finish(error=exc)
        else:
            self.result = fut.result()
            self.core.finish(self.result.value)

    def send_ack(self, n: int, cancel: bool) -> None:
        if self.rid is None:
            return
        msg: dict[str, Any] = {"op": "stream_ack", "vm": self.vm, "stream": self.rid, "n": n}
        if cancel:
            msg["cancel"] = True
        self.conn.send_frame(msg)


class Stream:
    """What ``VM.stream`` returns: iterate it for ``StreamItem``s (the last
    one of kind "result"); use it in a ``with`` block, or call ``close()``,
    to cancel a script you stop reading early (a Stream dropped unfinished
    cancels too).

    Errors of the request (LuaError, ExecutionTimeout, ...) are raised by the
    iteration, after the items that came before them.

    Made by ``VM.stream`` (which checks the code and the VM first).

    Attributes:
        vm: the VM handle.
        future: the Future of the exec's ExecResult.
        core: the StreamCore (for wrappers such as an asyncio iterator).
    """

    def __init__(self, conn: Any, vm: Any, code: str, timeout: Optional[float] = None,
                 instruction_limit: Optional[int] = None) -> None:
        self.vm = vm
        self.core: StreamCore = StreamCore(lambda n, c: sink.send_ack(n, c))
        sink = self._sink = _Sink(conn, vm.name, self.core)
        fields: dict[str, Any] = {"code": code, "stream": True}
        if timeout is not None:
            fields["timeout"] = timeout
        if instruction_limit is not None:
            fields["instruction_limit"] = instruction_limit
        # never echoed: print lines are items
        self.future: Future = conn.request_stream(
            "exec", fields, vm=vm.name, transform=to_result, sink=sink)
        self.future.add_done_callback(sink.on_reply)

    @property
    def result(self) -> Optional[Any]:
        """The run's ExecResult once it ended well (its output_truncated says
        whether max_output dropped print lines; its output is empty)."""
        return self._sink.result

    @property
    def _rid(self) -> Optional[int]:
        return self._sink.rid

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> StreamItem:
        self._sink.conn.check_may_block()
        return self.core.take()

    def next(self, timeout: Optional[float] = None) -> StreamItem:
        """The next item, waiting at most ``timeout`` s (TimeoutError;
        RuntimeError on the loop of an AsyncVMManager)."""
        self._sink.conn.check_may_block()
        return self.core.take(timeout)

    @property
    def buffered(self) -> int:
        """Items received and not yet taken (at most STREAM_WINDOW)."""
        return self.core.buffered

    def close(self) -> None:
        """Cancel the script if it still runs (it gets the Lua error "stream
        cancelled"); later items and its reply are dropped.  Idempotent."""
        self.core.cancel()

    def __del__(self) -> None:
        try:
            self.core.cancel()
        except Exception:
            pass  # interpreter shutdown: nothing left to tell

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<Stream vm=%r id=%s%s>" % (self.vm.name, self._rid,
                                           " done" if self.core.done else "")


__all__ = ["Stream", "StreamCore", "StreamItem", "StreamEmpty", "STREAM_WINDOW"]
