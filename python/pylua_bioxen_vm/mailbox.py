"""Mailboxes by name, held by the manager (docs/protocol.md "Mailboxes").

Every VM has a mailbox under its own name; a client opens more with
``VMManager.mailbox(name)``.  ``send_mail`` backs ``VMManager.send_to`` and
``Mailbox.send``.  ``Puller`` pulls messages in batches into a local inbox,
for a Mailbox (op ``mail_recv``) and for a VM's outbox (``outbox_recv``,
behind ``VM.recv``).
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from typing import Any, Optional

from .errors import InvalidRequest
from .values import from_wire, to_wire


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
    return conn.request("mail_send", fields, vm=to)


class Puller:
    """Batched reads of one manager queue: a client mailbox or a VM's outbox.

    The manager parks one pull per queue; its answer lands in a local inbox
    even when the recv that asked has given up, so nothing is lost.  Internal:
    used by Mailbox.recv and VM.recv.
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

    def recv(self, timeout: Optional[float] = None) -> tuple[str, Any]:
        """The next ``(sender, value)``.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            VMNotFound: the queue is gone (mailbox closed, VM destroyed).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._lock:
                if self._inbox:
                    return self._inbox.popleft()
                fut = self._pull
                started = fut is None or fut.done()
                if started:
                    fields: dict = dict(self._fields, max=256)
                    if left is not None:
                        fields["timeout"] = left
                    fut = self._pull = self._conn.request(self._op, fields)
            if started:
                # Outside the lock: a reply that is already in runs _keep
                # right here, on this thread, and _keep takes the lock.
                fut.add_done_callback(self._keep)
            try:
                fut.result(None if left is None else left + 5.0)
            except TimeoutError:
                pass
            with self._lock:
                if self._inbox:
                    return self._inbox.popleft()
            # An empty answer before the deadline means a newer pull of the
            # same queue (another handle) displaced ours: ask again.
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("nothing in %s within %ss" % (self._what, timeout))


class Mailbox:
    """A named mailbox of this client: VMs reach it with ``mailbox.send(name, v)``.

    Closed by ``close()``, by leaving a ``with`` block, or with the connection.
    """

    def __init__(self, conn: Any, name: str) -> None:
        self._conn = conn
        self.name = name
        self._puller = Puller(conn, "mail_recv", {"name": name}, "mailbox %r" % name)
        self._closed = False

    def send(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the VM or mailbox ``to``, as this mailbox."""
        return send_mail(self._conn, to, value, self.name, timeout).result()

    def send_async(self, to: str, value: Any, timeout: Optional[float] = None) -> Future:
        return send_mail(self._conn, to, value, self.name, timeout)

    def recv(self, timeout: Optional[float] = None) -> tuple[str, Any]:
        """Return the next ``(sender, value)``; senders are VM names,
        ``"@client"`` or a client mailbox's name.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            VMNotFound: the mailbox was closed.
        """
        return self._puller.recv(timeout)

    def close(self) -> None:
        """Close the mailbox; messages still in it are dropped with it."""
        if not self._closed:
            self._closed = True
            self._conn.request("mailbox_close", {"name": self.name}).result()

    def __enter__(self) -> "Mailbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<Mailbox %r%s>" % (self.name, " closed" if self._closed else "")
