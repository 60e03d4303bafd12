"""One NDJSON connection to bioxen-manager: ids, parked futures, dispatch.

Data flow (see docs/protocol.md):

  caller thread --request()--> [id -> Future in _pending] --sendall--> manager
  manager --reply line--> reader --_pending.pop(id)--> Future resolved
  manager --event/callback line--> reader --> on_push(msg) (the owner hands it
                                   to its own threads at once)

"The reader" is a role (reader.py): a synchronous caller (``call``/``wait``)
reads its own reply when nobody else is reading; otherwise a background
thread does.  Either way one thread at a time reads, and it dispatches every
frame.  A send lock keeps frames whole.  When the connection is lost, every
pending future fails with ManagerError, as
concurrent.futures.process._terminate_broken fails a broken pool's work.
Created and owned by manager.VMManager.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import sys
import threading
import time
from asyncio import _get_running_loop
from concurrent.futures import Future
from typing import Any, Callable, Optional

from .errors import BioxenError, InvalidRequest, ManagerError, ProtocolError, error_from_wire
from .reader import ReaderRole

# transform(result) -> value; run by the reader when a reply arrives.
Transform = Optional[Callable[[Any], Any]]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode
# The JSON string literal of a str, exactly as _dumps writes one; lets the hot
# path build a request from pre-encoded pieces.
encode_str = json.encoder.encode_basestring
# json.loads(bytes) minus its per-call encoding sniffing: the manager only
# sends UTF-8 (a bad line still raises ValueError and is skipped).
_decode_json = json.JSONDecoder().decode


# The fixed end of every reply line: our integer id, last (see _fail_garbled).
_GARBLED_ID = re.compile(rb',?"id":(\d+)\}\s*$')


def _loads(line: bytes) -> Any:
    return _decode_json(line.decode("utf-8", "surrogatepass"))


class Connection:
    """A socket to the manager with many requests in flight.

    Args:
        sock: a connected stream socket; the Connection owns and closes it.
        address: printable address, for error messages.
        on_push: called by the reader with every event or callback frame; it
            must not block (hand work to another thread).
    """

    def __init__(self, sock: socket.socket, address: str,
                 on_push: Callable[[dict], None]) -> None:
        self._sock = sock
        self.address = address
        self._on_push = on_push
        # Two locks: the reader must never wait behind a sender blocked in
        # sendall (the manager may stop reading us until we read it).
        self._send_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        # id -> (future, vm name, transform); guarded by _pending_lock.
        self._pending: dict[int, tuple[Future, Optional[str], Transform]] = {}
        # id -> stream sink (stream.Stream) of a streamed exec; guarded too.
        self._streams: dict[int, Any] = {}
        self._broken: Optional[str] = None
        self._last_unmatched: Optional[BioxenError] = None
        self.frame_max = 16 << 20
        #: The event loop of the AsyncVMManager riding on this connection
        #: (set by it when it opens): a blocking call made on that loop's
        #: thread raises instead of stalling it (``check_may_block``).
        self.async_loop: Any = None
        self._role = ReaderRole(self, sock)
        self._reader = self._role.thread
        self._reader.start()

    # -- sending ----------------------------------------------------------

    def request(self, op: str, fields: dict, *, vm: Optional[str] = None,
                transform: Transform = None, about: Optional[str] = None) -> Future:
        """Send one request and return the Future of its reply.

        Args:
            op: the operation name.
            fields: the other fields of the request (no id/op); ``vm`` is
                added when given.
            vm: the VM name, also used to name it in error messages.
            about: a name for error messages that is not sent (an op that
                names its target in another field, as mail_send's "to";
                the manager refuses fields an op does not take).
            transform: optional function applied to the ``result`` by the
                reader; an exception it raises fails the future.

        Returns:
            A Future resolved with the (transformed) result, or failed with
            the BioxenError of the error reply.
        """
        fut = self._send(_encode(op, fields, vm), vm or about, transform)
        self._role.sent_async()
        return fut

    def request_body(self, body: str, vm: Optional[str] = None,
                     transform: Transform = None) -> Future:
        """``request`` for a request already encoded as one JSON object
        without its id (the hot path builds it from pre-encoded pieces)."""
        fut = self._send(body, vm, transform)
        self._role.sent_async()
        return fut

    def request_stream(self, op: str, fields: dict, *, vm: Optional[str] = None,
                       transform: Transform = None, sink: Any = None) -> Future:
        """``request`` whose stream frames go to ``sink``: it is told the id
        (``sink.stream_started(id)``) before the request is sent, then gets
        ``sink.stream_push(kind, value)`` on the reader thread for each item,
        until ``forget_stream(id)``."""
        fut = self._send(_encode(op, fields, vm), vm, transform, sink)
        self._role.sent_async()
        return fut

    def forget_stream(self, rid: int) -> None:
        """Stop routing stream frames of request ``rid``."""
        with self._pending_lock:
            self._streams.pop(rid, None)

    def call(self, op: str, fields: dict, *, vm: Optional[str] = None,
             transform: Transform = None) -> Any:
        """``request(...).result()``, with the caller reading its own reply."""
        return self.call_body(_encode(op, fields, vm), vm, transform)

    def call_body(self, body: Any, vm: Optional[str] = None,
                  transform: Transform = None) -> Any:
        """``call`` for a pre-encoded request (see ``request_body``)."""
        return self.blocking(lambda: self._send(body, vm, transform))

    def blocking(self, send: Callable[[], Future], timeout: Optional[float] = None) -> Any:
        """``send().result(timeout)`` for an op of this connection, with the
        caller reading its own reply: the blocking face of every ``x_async``.

        Args:
            send: sends the op's request(s) and returns its Future (it may
                raise at once, e.g. InvalidRequest).

        Raises:
            concurrent.futures.TimeoutError: not done within ``timeout``.
            The future's own exception, as ``Future.result`` does.
        """
        self.check_may_block()
        deadline = None if timeout is None else time.monotonic() + timeout
        role = self._role
        role.enter()  # before sending: the reply may beat us back
        try:
            fut = send()
            if not fut.done():
                role.wait_for(fut, deadline)
        finally:
            role.leave()
        return _result(fut, deadline)

    def wait(self, fut: Future, timeout: Optional[float] = None) -> Any:
        """``fut.result(timeout)`` for a future of this connection, reading
        the socket on the caller's thread while nobody else does.

        Raises:
            concurrent.futures.TimeoutError: not done within ``timeout``.
            The future's own exception, as ``Future.result`` does.
        """
        if fut.done():
            return fut.result()
        self.check_may_block()
        deadline = None if timeout is None else time.monotonic() + timeout
        role = self._role
        role.enter()
        try:
            role.wait_for(fut, deadline)
        finally:
            role.leave()
        return _result(fut, deadline)

    def check_may_block(self) -> None:
        """Called by every blocking wait of the sync API before it waits.

        Raises:
            RuntimeError: the caller runs on the loop of the AsyncVMManager
                of this connection.  Blocking there would stall every other
                task until the reply is in, and a Lua call of a coroutine
                callback could never finish (it needs the loop we block).
                Only that loop is refused: a plain VMManager used in, say, a
                notebook (whose cells run on a loop) keeps working.
        """
        loop = self.async_loop
        if loop is not None and _get_running_loop() is loop:
            raise RuntimeError(
                "%s would block the event loop of this AsyncVMManager: await the "
                "AsyncVMManager/AsyncVM method instead, or call the sync one from "
                "another thread (await asyncio.to_thread(...))" % _api_name())

    def _send(self, body: Any, vm: Optional[str], transform: Transform,
              sink: Any = None) -> Future:
        fut: Future = Future()
        # A request cannot be taken back once it may be on the wire, so its
        # Future is "running" from the start: cancel() returns False, and the
        # reply can never meet a cancelled Future (InvalidStateError).
        fut.set_running_or_notify_cancel()
        if isinstance(body, BaseException):  # _encode's verdict
            fut.set_exception(body)
            return fut
        with self._pending_lock:
            if self._broken is not None:
                fut.set_exception(ManagerError(self._broken, vm=vm))
                return fut
            rid = next(self._ids)
            # The id goes last: splice it in rather than re-encoding.
            line = (body[:-1] + ',"id":%d}\n' % rid).encode("utf-8")
            if len(line) > self.frame_max:
                fut.set_exception(InvalidRequest(
                    "request of %d bytes is over the manager's frame limit of %d"
                    % (len(line), self.frame_max), vm=vm))
                return fut
            self._pending[rid] = (fut, vm, transform)
            if sink is not None:
                self._streams[rid] = sink
                sink.stream_started(rid)
        try:
            with self._send_lock:
                self._sock.sendall(line)
        except OSError as e:
            with self._pending_lock:
                entry = self._pending.pop(rid, None)
            self._streams.pop(rid, None)
            if entry is not None:
                fut.set_exception(ManagerError(
                    "lost connection to manager at %s: %s" % (self.address, e), vm=vm))
        return fut

    def send_frame(self, msg: dict) -> None:
        """Send a frame that gets no reply (cb_result).  Errors are ignored:
        a lost connection is reported by the reader."""
        line = _dumps(msg).encode("utf-8") + b"\n"
        if self._broken is not None:
            return
        try:
            with self._send_lock:
                self._sock.sendall(line)
        except OSError:
            pass

    # -- dispatch (called by the reader role's holder) -------------------------

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = _loads(line)
        except ValueError:
            self._fail_garbled(line)
            return
        if type(msg) is not dict:
            return
        rid = msg.get("id")
        if rid is None:
            if "stream" in msg:
                sid = msg["stream"]
                with self._pending_lock:
                    sink = self._streams.get(sid) if type(sid) is int else None
                if sink is not None:
                    sink.stream_push(msg.get("kind"), msg.get("value"))
            elif "event" in msg or "callback" in msg:
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

    def _fail_garbled(self, line: bytes) -> None:
        # Reply bytes from a node reach us unparsed by the manager, which puts
        # our id last (docs/protocol.md): a garbled reply still names the
        # request it answers, so that one request fails instead of hanging.
        m = _GARBLED_ID.search(line)
        if m is None:
            return
        with self._pending_lock:
            entry = self._pending.pop(int(m.group(1)), None)
        if entry is not None:
            fut, vm, _ = entry
            fut.set_exception(ProtocolError(
                "VM %r sent a reply that is not valid JSON (%d bytes); the VM's "
                "node may be compromised or broken" % (vm, len(line)), vm=vm))

    def _fail_unmatched(self, err: Any) -> None:
        # Not tied to a request (e.g. FRAME_TOO_LARGE before the manager
        # closes us): remembered so a following disconnect can say why.
        self._last_unmatched = error_from_wire(err)

    def _terminate(self, reason: str) -> None:
        if self._last_unmatched is not None and self._broken is None:
            reason += " (manager said: %s)" % self._last_unmatched
        with self._pending_lock:
            if self._broken is None:
                self._broken = reason
            pending, self._pending = self._pending, {}
            self._streams = {}
        for fut, vm, _ in pending.values():
            if not fut.done():
                fut.set_exception(ManagerError("%s; request for VM %r failed"
                                               % (reason, vm) if vm else reason, vm=vm))
        self._role.wake_all()

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
        self._role.stop(timeout)
        self._terminate(self._broken or "closed")
        self._sock.close()


_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _api_name() -> str:
    """``Class.method()`` its user called: the outermost frame of the stack
    still inside this package, named after its ``self``'s class (VMManager,
    not the part of it that defines the method)."""
    name, f = "this call", sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG):
        owner = f.f_locals.get("self")
        name = f.f_code.co_name if owner is None else \
            "%s.%s" % (type(owner).__name__, f.f_code.co_name)
        f = f.f_back
    return name + "()"


def _result(fut: Future, deadline: Optional[float]) -> Any:
    # Done; or past the deadline (0 left: TimeoutError); or the connection
    # is ending and _terminate is failing every pending future.
    return fut.result(None if deadline is None else max(0.0, deadline - time.monotonic()))


def connect(address: str, timeout: float) -> tuple[socket.socket, str]:
    """A connected socket to the manager at ``address`` (``tcp://host:port``,
    ``unix:/path`` or a plain path) and its printable address.

    Raises:
        InvalidRequest: a TCP address that is not ``tcp://host:port``.
        ManagerError: nobody answers there.
    """
    if address.startswith("tcp://"):
        host, _, port = address[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit():
            raise InvalidRequest("TCP address must look like tcp://host:port, got %r"
                                 % address)
        try:
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout)
        except OSError as e:
            raise ManagerError("cannot connect to manager at %s: %s" % (address, e)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        path = address[len("unix:"):] if address.startswith("unix:") else address
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise ManagerError("cannot connect to manager at %s: %s" % (path, e)) from None
    sock.settimeout(None)  # the reader thread blocks in recv; no timeouts there
    return sock, address


def _encode(op: str, fields: dict, vm: Optional[str]) -> Any:
    """The request as JSON text without its id, or the InvalidRequest to
    fail its future with."""
    msg = {"op": op}
    if vm is not None:
        msg["vm"] = vm
    msg.update(fields)
    try:
        return _dumps(msg)
    except (TypeError, ValueError) as e:
        return InvalidRequest("cannot encode request: %s" % e, vm=vm)
