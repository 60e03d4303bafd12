"""One NDJSON connection to bioxen-manager: ids, parked futures, the reader thread.

Data flow (see docs/protocol.md):

  caller thread --request()--> [id -> Future in _pending] --sendall--> manager
  manager --reply line--> reader thread --_pending.pop(id)--> Future resolved
  manager --event/callback line--> reader thread --> on_push(msg) (the owner
                                   hands it to its own threads at once)

The caller gets a concurrent.futures.Future per request.  The reader is the
only thread that reads the socket; a send lock keeps frames whole.  When the
connection is lost, every pending future fails with ManagerError, as
concurrent.futures.process._terminate_broken fails a broken pool's work.
Created and owned by manager.VMManager.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional

from .errors import BioxenError, InvalidRequest, ManagerError, ProtocolError, error_from_wire

# transform(result) -> value; runs on the reader thread when a reply arrives.
Transform = Optional[Callable[[Any], Any]]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode


class Connection:
    """A socket to the manager with many requests in flight.

    Args:
        sock: a connected stream socket; the Connection owns and closes it.
        address: printable address, for error messages.
        on_push: called on the reader thread with every event or callback
            frame; it must not block (hand work to another thread).
    """

    def __init__(self, sock: socket.socket, address: str,
                 on_push: Callable[[dict], None]) -> None:
        self._sock = sock
        self.address = address
        self._on_push = on_push
        # Two locks: the reader thread must never wait behind a sender blocked
        # in sendall (the manager may stop reading us until we read it).
        self._send_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        # id -> (future, vm name, transform); guarded by _pending_lock.
        self._pending: dict[int, tuple[Future, Optional[str], Transform]] = {}
        self._broken: Optional[str] = None
        self.frame_max = 16 << 20
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name="bioxen-reader")
        self._reader.start()

    # -- sending ----------------------------------------------------------

    def request(self, op: str, fields: dict, *, vm: Optional[str] = None,
                transform: Transform = None) -> Future:
        """Send one request and return the Future of its reply.

        Args:
            op: the operation name.
            fields: the other fields of the request (no id/op); ``vm`` is
                added when given.
            vm: the VM name, also used to name it in error messages.
            transform: optional function applied to the ``result`` on the
                reader thread; an exception it raises fails the future.

        Returns:
            A Future resolved with the (transformed) result, or failed with
            the BioxenError of the error reply.
        """
        fut: Future = Future()
        msg = {"op": op}
        if vm is not None:
            msg["vm"] = vm
        msg.update(fields)
        try:
            body = _dumps(msg)
        except (TypeError, ValueError) as e:
            fut.set_exception(InvalidRequest("cannot encode request: %s" % e, vm=vm))
            return fut
        with self._pending_lock:
            if self._broken is not None:
                fut.set_exception(ManagerError(self._broken, vm=vm))
                return fut
            rid = next(self._ids)
            # The id goes last: splice it in rather than re-encoding.
            line = (body[:-1] + ',"id":%d}' % rid).encode("utf-8") + b"\n"
            if len(line) > self.frame_max:
                fut.set_exception(InvalidRequest(
                    "request of %d bytes is over the manager's frame limit of %d"
                    % (len(line), self.frame_max), vm=vm))
                return fut
            self._pending[rid] = (fut, vm, transform)
        try:
            with self._send_lock:
                self._sock.sendall(line)
        except OSError as e:
            with self._pending_lock:
                entry = self._pending.pop(rid, None)
            if entry is not None:
                fut.set_exception(ManagerError(
                    "lost connection to manager at %s: %s" % (self.address, e), vm=vm))
        return fut

    def send_frame(self, msg: dict) -> None:
        """Send a frame that gets no reply (cb_result).  Errors are ignored:
        a lost connection is reported by the reader thread."""
        line = _dumps(msg).encode("utf-8") + b"\n"
        if self._broken is not None:
            return
        try:
            with self._send_lock:
                self._sock.sendall(line)
        except OSError:
            pass

    # -- reading (reader thread only) ---------------------------------------

    def _read_loop(self) -> None:
        reason = "connection to manager at %s closed" % self.address
        parts: list[bytes] = []
        try:
            while True:
                chunk = self._sock.recv(1 << 18)
                if not chunk:
                    break
                if b"\n" not in chunk:
                    parts.append(chunk)
                    continue
                parts.append(chunk)
                lines = b"".join(parts).split(b"\n")
                parts = [lines.pop()] if lines[-1] else []
                for line in lines:
                    if line:
                        self._dispatch(line)
        except OSError as e:
            reason = "lost connection to manager at %s: %s" % (self.address, e)
        except BaseException as e:  # a bug here must not hang every caller
            reason = "reader thread failed: %r" % (e,)
        last = getattr(self, "_last_unmatched", None)
        if last is not None:
            reason += " (manager said: %s)" % last
        self._terminate(reason)

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return  # the manager only sends JSON; ignore garbage, keep going
        if not isinstance(msg, dict):
            return
        rid = msg.get("id")
        if rid is None:
            if "event" in msg or "callback" in msg:
                self._on_push(msg)
            elif "error" in msg:
                # id null: the manager could not parse one of our frames.
                self._fail_unmatched(msg["error"])
            return
        with self._pending_lock:
            entry = self._pending.pop(rid, None)
        if entry is None:
            return
        fut, vm, transform = entry
        if "error" in msg:
            fut.set_exception(error_from_wire(msg["error"], vm))
            return
        try:
            value = msg.get("result")
            fut.set_result(transform(value) if transform else value)
        except BioxenError as e:
            fut.set_exception(e)
        except Exception as e:  # a transform bug must still resolve the future
            fut.set_exception(ProtocolError("bad reply for VM %r: %r" % (vm, e), vm=vm))

    def _fail_unmatched(self, err: Any) -> None:
        # Not tied to a request (e.g. FRAME_TOO_LARGE before the manager
        # closes us): remembered so a following disconnect can say why.
        self._last_unmatched: Optional[BioxenError] = error_from_wire(err)

    def _terminate(self, reason: str) -> None:
        with self._pending_lock:
            if self._broken is None:
                self._broken = reason
            pending, self._pending = self._pending, {}
        for fut, vm, _ in pending.values():
            if not fut.done():
                fut.set_exception(ManagerError("%s; request for VM %r failed"
                                               % (reason, vm) if vm else reason, vm=vm))

    # -- lifecycle ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._broken is not None

    def close(self, timeout: float = 5.0) -> None:
        """Close the socket, fail pending futures, and join the reader."""
        with self._pending_lock:
            if self._broken is None:
                self._broken = "connection to manager at %s was closed by the client" \
                               % self.address
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout)
        self._terminate(self._broken or "closed")
        self._sock.close()
