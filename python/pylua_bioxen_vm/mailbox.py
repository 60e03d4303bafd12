"""Mailboxes by name, held by the manager (docs/protocol.md "Mailboxes").

Every VM has a mailbox under its own name; a client opens more with
``VMManager.mailbox(name)`` (``open_mailbox``).  ``send_mail`` backs
``VMManager.send_to`` and ``Mailbox.send``.  ``Puller`` pulls messages in
batches into a local inbox, for a Mailbox (op ``mail_recv``) and for a VM's
outbox (``outbox_recv``, behind ``VM.recv``).
"""

from __future__ import annotations

import collections
import re
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Generator, Optional

from .errors import InvalidRequest
from .futures import resolved
from .values import from_wire, to_wire

#: VM and mailbox names: what the manager accepts (docs/protocol.md).
NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# Seconds a pull may outlive its own deadline before we stop waiting on it.
_SLACK = 5.0
# What Puller.steps yields: a Future to wait on, and for how long at most.
Wait = tuple[Future, Optional[float]]


def send_mail(conn: Any, to: str, value: Any, sender: Optional[str] = None,
              timeout: Optional[float] = None) -> Future:
    """Send one message; the Future resolves to True once the target mailbox
    has accepted it.  While that mailbox is full the manager holds the reply
    (back-pressure); with ``timeout`` it fails with ExecutionTimeout instead
    and the message is not delivered.  A missing name fails with VMNotFound."""
    if not isinstance(to, str):
        raise InvalidRequest("mailbox name must be a str, got %r" % (to,))
    fields: dict = {"to": to, "value": to_wire(value)}
    if sender is not None:
        fields["from"] = sender
    if timeout is not None:
        if timeout < 0:
            raise InvalidRequest("timeout must be non-negative")
        fields["timeout"] = float(timeout)
    return conn.request("mail_send", fields, about=to)


class Puller:
    """Batched reads of one manager queue: a client mailbox or a VM's outbox.

    The manager parks one pull per queue; its answer lands in a local inbox
    even when the recv that asked has given up, so nothing is lost.  The
    receive logic is one state machine, ``steps``; ``drive`` runs it on the
    caller's thread and the asyncio Hub on the loop (aio/hub.py).  Internal:
    used by Mailbox and VM.
    """

    def __init__(self, conn: Any, op: str, fields: dict, what: str) -> None:
        self._conn = conn
        self._op = op
        self._fields = fields
        self._what = what       # for the TimeoutError message
        self._lock = threading.Lock()
        self._inbox: collections.deque = collections.deque()
        self._pull: Optional[Future] = None

    def _keep(self, fut: Future) -> None:
        # Runs on the reader thread (or inline when already answered).
        if fut.exception() is None:
            with self._lock:
                self._inbox.extend((f, from_wire(v)) for f, v in fut.result())

    def _take(self) -> Optional[tuple[str, Any]]:
        with self._lock:
            return self._inbox.popleft() if self._inbox else None

    def steps(self, timeout: Optional[float] = None,
              pick: Optional[int] = None) -> Generator[Wait, None, Any]:
        """The next ``(sender, value)`` (or its item ``pick``), as a state
        machine: it yields ``(future, seconds)`` for its driver to wait on
        (a wait that times out is fine: send None and it decides) and
        returns the message.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            VMNotFound: (from the driver's wait) the queue is gone (mailbox
                closed, VM destroyed).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                msg = self._inbox.popleft() if self._inbox else None
                fut = self._pull
                started = msg is None and (fut is None or fut.done())
                if started:
                    fields: dict = dict(self._fields, max=256)
                    if left is not None:
                        fields["timeout"] = left
                    fut = self._pull = self._conn.request(self._op, fields)
            if msg is not None:
                return msg if pick is None else msg[pick]
            assert fut is not None
            if started:
                # Outside the lock: a reply that is already in runs _keep
                # right here, on this thread, and _keep takes the lock.
                fut.add_done_callback(self._keep)
            # The manager answers an empty pull at its deadline; the slack
            # only keeps a lost answer from holding us forever.
            yield fut, None if left is None else left + _SLACK
            msg = self._take()
            if msg is not None:
                return msg if pick is None else msg[pick]
            # An empty answer before the deadline means a newer pull of the
            # same queue (another handle) displaced ours: ask again.
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("nothing in %s within %ss" % (self._what, timeout))



def drive(steps: Generator[Wait, None, Any]) -> Any:
    """Run a ``Puller.steps`` state machine on this thread; its result."""
    try:
        fut, seconds = next(steps)
        while True:
            try:
                fut.result(seconds)
            except FutureTimeout:
                pass
            fut, seconds = steps.send(None)
    except StopIteration as done:
        return done.value


class Mailbox:
    """A named mailbox of this client: VMs reach it with ``mailbox.send(name, v)``.

    Closed by ``close()``, by leaving a ``with`` block, or with the connection.
    """

    def __init__(self, conn: Any, name: str) -> None:
        self._conn = conn
        self.name = name
        self._puller = Puller(conn, "mail_recv", {"name": name}, "mailbox %r" % name)
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    def send_async(self, to: str, value: Any, timeout: Optional[float] = None) -> Future:
        """Like ``send``, returning a Future of True."""
        return send_mail(self._conn, to, value, self.name, timeout)

    def send(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the VM or mailbox ``to``, as this mailbox."""
        return self._conn.blocking(lambda: self.send_async(to, value, timeout))

    def recv_steps(self, timeout: Optional[float] = None) -> Generator[Wait, None, Any]:
        """The state machine of ``recv`` (``Puller.steps``), for a driver
        such as the asyncio handle's ``recv``."""
        return self._puller.steps(timeout)

    def recv(self, timeout: Optional[float] = None) -> tuple[str, Any]:
        """Return the next ``(sender, value)``; senders are VM names,
        ``"@client"`` or a client mailbox's name.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            VMNotFound: the mailbox was closed.
            RuntimeError: called on the loop of an AsyncVMManager.
        """
        self._conn.check_may_block()
        return drive(self.recv_steps(timeout))

    def close_async(self) -> Future:
        """Close the mailbox (messages still in it are dropped with it); a
        Future of None.  Idempotent."""
        if self._closed:
            return resolved()
        self._closed = True
        return self._conn.request("mailbox_close", {"name": self.name}, transform=_none)

    def close(self) -> None:
        """Close the mailbox; messages still in it are dropped with it."""
        self._conn.blocking(self.close_async)

    def __enter__(self) -> "Mailbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<Mailbox %r%s>" % (self.name, " closed" if self._closed else "")


def open_mailbox(conn: Any, name: str, size: Optional[int] = None) -> Future:
    """Open the client mailbox ``name``; a Future of its Mailbox.

    Raises:
        InvalidRequest: at once, for a bad name.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidRequest("bad mailbox name %r" % (name,))
    fields: dict = {"name": name}
    if size is not None:
        fields["size"] = size
    return conn.request("mailbox_open", fields, transform=lambda _: Mailbox(conn, name))


def _none(_: Any) -> None:
    return None
