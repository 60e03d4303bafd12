"""VMManager: the user's entry point, one connection to one bioxen-manager.

With no address it starts a private embedded manager (embedded.py) and stops
it on close.  Owns opening and closing, metrics, mailboxes and pushed
events; creating and finding VMs is ManagerBase's (manager_base.py), and the
feature parts join it as typed subclasses of that base (net.py, pool.py,
sessions.py, projects.py).  The shared state lives in a Core (core.py) so a
forgotten manager is cleaned up by weakref.finalize.
"""

from __future__ import annotations

import os
import weakref
from concurrent.futures import Future
from typing import Any, Callable, Iterator, Optional

from .connection import Connection, connect
from .core import Core, Event
from .embedded import EmbeddedManager
from .errors import InvalidRequest, ManagerError
from .limits import check_limits
from .mailbox import Mailbox, open_mailbox, send_mail
from .clusterargs import cluster_args
from .metrics import history_n, metrics_args, metrics_opt_in
from .net_modes import NetManagerMixin
from .pool import PoolManagerMixin
from .projects import ProjectMixin
from .sessions import SessionMixin


class VMManager(NetManagerMixin, SessionMixin, ProjectMixin, PoolManagerMixin):
    """Creates and drives named Lua VMs through one bioxen-manager.

    Args:
        address: None to start a private embedded manager; ``"unix:/path"``
            or a plain path for a Unix socket; ``"tcp://host:port"`` for TCP
            (pass ``token=``).
        manager_path: the bioxen-manager executable for the embedded mode.
        start_timeout: seconds to wait for the manager to start or answer.
        token: authentication token for TCP listeners.
        module_dir: directory the embedded manager serves ``require`` from
            (``a.b`` is ``module_dir/a/b.lua``; see ``Policy.allow_import``).
        metrics_port: serve Prometheus ``GET /metrics`` from the embedded
            manager on this port (0: any free port; see ``metrics_port``).
        metrics_host: the address it listens on (default 127.0.0.1).
        cluster: ``"nats://HOST:PORT[,nats://...]"``: the embedded manager
            joins that cluster (docs/cluster.md); host_name is its name there
            (default: the machine's host name), cluster_name the subject
            prefix shared by the cluster's managers (default "bioxen").
        pool_min, pool_max, pool_idle_timeout: the manager-side pool behind
            ``run``/``map`` (pool.py): VMs kept warm, the most at once, and
            seconds an idle VM above pool_min lives.
        **default_limits: memory_limit, instruction_limit, timeout, cpu_limit,
            max_output applied to every VM created here unless overridden.

    Raises:
        ManagerError: the manager cannot be started or reached.
        InvalidRequest: a default limit is unknown or invalid.
    """

    def __init__(self, address: Optional[str] = None, *, manager_path: Optional[str] = None,
                 start_timeout: float = 10.0, token: Optional[str] = None,
                 module_dir: Optional[str] = None, metrics_port: Optional[int] = None,
                 metrics_host: Optional[str] = None, pool_min: int = 0, pool_max: int = 8,
                 pool_idle_timeout: float = 30.0, cluster: Optional[str] = None,
                 host_name: Optional[str] = None, cluster_name: Optional[str] = None,
                 **default_limits: Any) -> None:
        self.default_limits = check_limits(default_limits)
        extra = metrics_args(address, metrics_port, metrics_host)
        extra += cluster_args(address, cluster, host_name, cluster_name)
        self._pool_init(pool_min, pool_max, pool_idle_timeout)
        if module_dir is not None and (address is not None or not os.path.isdir(module_dir)):
            raise InvalidRequest("module_dir %r: it must be an existing directory, and it "
                                 "applies to the embedded manager only (start a shared "
                                 "manager with --module-dir)" % (module_dir,))
        s = self._core = Core()
        self._finalizer = weakref.finalize(self, s.close)
        try:
            if address is None:
                s.embedded = EmbeddedManager.start(manager_path, start_timeout, module_dir,
                                                    extra)
                address = "unix:" + s.embedded.socket_path
            sock, addr = connect(address, start_timeout)
            s.conn = Connection(sock, addr, s.on_push)
            self.address = addr
            if token is not None:
                s.conn.request("auth", {"token": token}).result(start_timeout)
            try:
                hello = s.conn.request("hello", {}).result(start_timeout)
            except ManagerError as e:
                if e.code == "AUTH_REQUIRED":
                    raise ManagerError("manager at %s requires authentication: pass "
                                       "token=... to VMManager" % address,
                                       code=e.code) from None
                raise
            self.server_info: dict = hello if isinstance(hello, dict) else {}
            s.conn.frame_max = int(self.server_info.get("frame_max") or s.conn.frame_max)
        except BaseException:
            self._finalizer()
            raise

    # -- figures --------------------------------------------------------

    def metrics_async(self) -> Future:
        """Future of ``metrics``."""
        return self._core.conn.request("metrics", {}, transform=dict)  # total_duration_ms too

    def metrics(self) -> dict:
        """The manager's figures (docs/protocol.md, "Metrics and history").

        Totals since the manager started: executions (= executions_total),
        errors (= errors_total), errors_by_code, vms_created_total,
        vms_crashed_total, vms_restarted_total, uptime_s, total_duration_ms
        (the sum of every known run duration, failed runs too); now: vms (=
        vms_alive), peak_mem_bytes, min/max_ms; avg/p50/p99_ms (nearest rank)
        over the last ``duration_window`` successful runs (at most
        ``duration_window_max``).
        """
        return self._core.conn.blocking(self.metrics_async)

    def history_async(self, n: int = 100) -> Future:
        """Future of ``history``.

        Raises:
            InvalidRequest: at once, ``n`` is not a non-negative integer.
        """
        return self._core.conn.request("history", {"n": history_n(n)}, transform=list)

    def history(self, n: int = 100) -> list[dict]:
        """The last ``n`` exec/call runs, newest last (at most 1024 are kept).

        Each is ``{ts, vm, op, duration_ms, ok, error, mem_bytes}``; ``error``
        is the error code or None, ``duration_ms`` None when not known.

        Raises:
            InvalidRequest: ``n`` is not a non-negative integer.
        """
        return self._core.conn.blocking(lambda: self.history_async(n))

    def hosts_async(self) -> Future:
        """Future of ``hosts``."""
        return self._core.conn.request("hosts", {}, transform=list)

    def hosts(self) -> list[dict]:
        """The cluster's managers as this one sees them (docs/cluster.md).

        Returns:
            One dict per host, this one first: ``name``, ``alive`` (heard
            within the last 3 s), ``vms``, ``executions`` (runs served since
            it started) and ``load`` (requests in flight on its VMs per CPU).
            ``[]`` for a manager that is not in a cluster.
        """
        return self._core.conn.blocking(self.hosts_async)

    @property
    def identity(self) -> str:
        """Who the manager takes this connection for: ``"uid:N"`` on the Unix
        socket, ``"token:NAME"`` over TCP ("" from a manager that predates
        identities)."""
        return str(self.server_info.get("identity") or "")

    @property
    def is_admin(self) -> bool:
        """True if this connection may ``shutdown`` the manager and reach
        every VM (docs/security.md, "Identity model")."""
        return bool(self.server_info.get("admin"))

    @property
    def metrics_port(self) -> Optional[int]:
        """The port of the manager's Prometheus endpoint, None if it has none."""
        port = self.server_info.get("metrics_port")
        return int(port) if port else None

    def ping_async(self) -> Future:
        """Future of ``ping``."""
        return self._core.conn.request("ping", {}, transform=lambda r: r == "pong")

    def ping(self) -> bool:
        """True if the manager answers."""
        return self._core.conn.blocking(self.ping_async)

    # -- mailboxes (mailbox.py) --------------------------------------

    def mailbox_async(self, name: str, size: Optional[int] = None) -> Future:
        """Future of ``mailbox``.

        Raises:
            InvalidRequest: at once, for a bad name.
        """
        return open_mailbox(self._core.conn, name, size)

    def mailbox(self, name: str, size: Optional[int] = None) -> Mailbox:
        """Open a mailbox of this connection named ``name`` (it must not be
        the name of a VM or another mailbox: VMExists); ``size`` bounds its
        message count (default 1024)."""
        return self._core.conn.blocking(lambda: self.mailbox_async(name, size))

    def send_to_async(self, to: str, value: Any, timeout: Optional[float] = None) -> Future:
        """Like send_to, returning a Future of True."""
        return send_mail(self._core.conn, to, value, None, timeout)

    def send_to(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the mailbox of VM ``to`` (or a client mailbox),
        as sender "@client".  Blocks while that mailbox is full; with
        ``timeout`` raises ExecutionTimeout instead (the message is not sent).

        Raises:
            VMNotFound: no VM or mailbox has that name.
        """
        return self._core.conn.blocking(lambda: self.send_to_async(to, value, timeout))

    # -- events -------------------------------------------------------

    def on(self, event_type: str, fn: Callable[[dict], Any]) -> None:
        """Call ``fn(event_dict)`` on a dispatcher thread for each event of a type.

        Args:
            event_type: e.g. ``"TIMEOUT"`` or ``"vm_crash"`` (case-insensitive),
                or ``"*"`` for every event.
            fn: receives ``{"ts", "vm", "type", "detail"}``.
        """
        key = "*" if event_type == "*" else event_type.upper()
        with self._core.lock:
            self._core.handlers.setdefault(key, []).append(fn)
        if key == "METRICS_RECORDED":
            metrics_opt_in(self)

    def metrics_events_async(self, on: bool = True) -> Future:
        """Future of ``metrics_events``."""
        return self._core.conn.request("metrics_events", {"on": bool(on)},
                                       transform=lambda r: None)

    def metrics_events(self, on: bool = True) -> None:
        """Ask for (or stop) a ``METRICS_RECORDED`` event per finished run on
        the VMs this connection sees: ``{op, ok, error, duration_ms,
        mem_bytes}`` (IsoBox's ``metrics:recorded``).  Off by default;
        ``on("METRICS_RECORDED", fn)`` turns it on by itself (a ``"*"``
        handler does not)."""
        self._core.conn.blocking(lambda: self.metrics_events_async(on))

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterate over pushed events as ``Event(ts, vm, type, detail)``.

        Args:
            timeout: stop when no event arrives for this many seconds
                (None: run until the manager is closed).

        Raises:
            RuntimeError: iterated on the loop of an AsyncVMManager (use
                its ``events()``).
        """
        while True:
            self._core.conn.check_may_block()
            ev = self._core.next_event(timeout)
            if ev is None:
                return
            yield ev

    # -- lifecycle ----------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._core.closed

    def close(self) -> None:
        """Destroy our VMs and stop the embedded manager (if any).  Idempotent.

        Raises:
            RuntimeError: called on the loop of an AsyncVMManager that is
                still open (``await m.close()`` there).
        """
        conn = self._core.conn
        if conn is not None and not self._core.closed:
            conn.check_may_block()
        self._finalizer()

    def __enter__(self) -> "VMManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<VMManager %s vms=%d%s>" % (getattr(self, "address", "?"),
                                            len(self._core.vms),
                                            " closed" if self.closed else "")
