"""Small combinators over concurrent.futures.Future, for ops made of steps.

Every op of the client is one ``x_async()`` returning a Future; when an op
needs a second request or a result computed from the reply, these chain it
without a thread: the steps run as done-callbacks (on the reader thread, so
they must never block).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Optional


def resolved(value: Any = None) -> Future:
    """A Future already done with ``value`` (an op with nothing to send)."""
    fut: Future = Future()
    fut.set_running_or_notify_cancel()
    fut.set_result(value)
    return fut


def chain(fut: Future, fn: Callable[[Any], Any],
          on_error: Optional[Callable[[BaseException], Any]] = None) -> Future:
    """A Future of ``fn(fut.result())``; when that is itself a Future, of its
    result.  A failure of ``fut`` goes to ``on_error`` (whose value, or
    exception, settles the outcome) or, without one, straight through.
    ``fn`` and ``on_error`` run where ``fut`` completes: never block there."""
    out: Future = Future()
    out.set_running_or_notify_cancel()

    def fail(e: BaseException) -> None:
        if not out.done():
            out.set_exception(e)

    def last(f: Future) -> None:
        e = f.exception()
        if e is not None:
            fail(e)
        else:
            out.set_result(f.result())

    def first(f: Future) -> None:
        try:
            e = f.exception()
            if e is None:
                r = fn(f.result())
            elif on_error is not None:
                r = on_error(e)
            else:
                fail(e)
                return
        except BaseException as x:  # noqa: BLE001 - handed to the caller
            fail(x)
            return
        if isinstance(r, Future):
            r.add_done_callback(last)
        else:
            out.set_result(r)
    fut.add_done_callback(first)
    return out


__all__ = ["resolved", "chain"]
