"""VMManager: the user's entry point, one connection to one bioxen-manager.

With no address it starts a private embedded manager (embedded.py) and stops
it on close.  It creates VM handles (vm.py), lists and measures VMs, and
exposes pushed events.  The shared state lives in a Core (core.py) so a
forgotten manager is cleaned up by weakref.finalize.
"""

from __future__ import annotations

import os
import re
import socket
import weakref
from concurrent.futures import Future
from typing import Any, Callable, Iterator, Optional

from .connection import Connection
from .embedded import EmbeddedManager
from .errors import InvalidRequest, ManagerError, VMNotFound
from .limits import check_limits
from .mailbox import Mailbox, send_mail
from .metrics import history_n, metrics_args
from .net import NetManagerMixin
from .pool import PoolManagerMixin
from .policy import Policy, check_policy
from .core import Core, Event
from .projects import ProjectMixin
from .sessions import SessionMixin
from .vm import VM

_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _connect(address: str, timeout: float) -> tuple[socket.socket, str]:
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


def _isolation_fields(full: bool, uid: Optional[int], gid: Optional[int],
                      restart: str) -> dict:
    out: dict = {}
    if not isinstance(full, bool):
        raise InvalidRequest("full_isolation must be True or False, not %r" % (full,))
    if full:
        out["full_isolation"] = True
    for key, v in (("uid", uid), ("gid", gid)):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 0xFFFFFFFF:
            raise InvalidRequest("%s must be an integer from 0 to 4294967294, not %r" % (key, v))
        out[key] = v
    if restart not in ("never", "on-crash"):
        raise InvalidRequest('restart must be "never" or "on-crash", not %r' % (restart,))
    if restart != "never":
        out["restart"] = restart
    return out


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
                 pool_idle_timeout: float = 30.0, **default_limits: Any) -> None:
        self.default_limits = check_limits(default_limits)
        extra = metrics_args(address, metrics_port, metrics_host)
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
            sock, addr = _connect(address, start_timeout)
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

    # -- VMs ----------------------------------------------------------

    def create_vm_async(self, name: str, networked: bool = False, *,
                        memory_limit: Optional[int] = None,
                        instruction_limit: Optional[int] = None,
                        timeout: Optional[float] = None, cpu_limit: Optional[float] = None,
                        max_output: Optional[int] = None,
                        callbacks: Optional[dict[str, Callable]] = None,
                        persistent: bool = False, echo: bool = True,
                        mailbox_size: Optional[int] = None,
                        outbox_size: Optional[int] = None,
                        full_isolation: bool = False, uid: Optional[int] = None,
                        gid: Optional[int] = None, restart: str = "never",
                        policy: Optional[Policy] = None,
                        project: Optional[dict] = None) -> Future:
        """Start creating a VM; return a Future of its VM handle.

        Args: see ``create_vm``.

        Raises:
            InvalidRequest: at once, for a bad name, limit or callback table.
        """
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidRequest("bad VM name %r: use 1-64 characters from "
                                 "A-Z a-z 0-9 _ . : -" % (name,))
        limits = dict(self.default_limits)
        limits.update(check_limits({
            "memory_limit": memory_limit, "instruction_limit": instruction_limit,
            "timeout": timeout, "cpu_limit": cpu_limit, "max_output": max_output}))
        cbs = dict(callbacks or {})
        for k, fn in cbs.items():
            if not isinstance(k, str) or not _NAME_RE.match(k) or not callable(fn):
                raise InvalidRequest("callbacks must map Lua global names to "
                                     "callables; bad entry %r" % (k,))
        s = self._core
        # Registered before the request so a callback can never find no table;
        # only if the name is not already one of ours (VM_EXISTS must not
        # clobber the live VM's table).
        ours = name in s.vms
        if cbs and not ours:
            s.callbacks[name] = cbs
        fields = {"name": name, "limits": limits, "callbacks": sorted(cbs),
                  "networked": bool(networked), "persistent": bool(persistent)}
        fields.update(_isolation_fields(full_isolation, uid, gid, restart))
        if mailbox_size is not None:
            fields["mailbox_size"] = mailbox_size
        if outbox_size is not None:
            fields["outbox_size"] = outbox_size
        if policy is not None:
            fields["policy"] = check_policy(policy)
            # a TCP grant is for a networked VM: it turns networking on
            fields["networked"] = fields["networked"] or bool(policy.tcp)
        if project is not None:  # wire form from projects.py (run_project)
            fields["project"] = project

        def made(r: Any) -> VM:
            r = r if isinstance(r, dict) else {}
            vm = VM(s, name, r.get("pid"), echo, r.get("isolation"))
            s.vms[name] = vm
            return vm
        fut = s.conn.request("create", fields, vm=None, transform=made)
        if cbs and not ours:
            def forget(f: Future) -> None:
                if f.exception() is not None and name not in s.vms:
                    s.callbacks.pop(name, None)
            fut.add_done_callback(forget)
        return fut

    def create_vm(self, name: str, networked: bool = False, **kw: Any) -> VM:
        """Create a named VM and return its handle.

        Args:
            name: 1-64 characters of ``A-Za-z0-9_.:-``, unique in the manager.
            networked: load LuaSocket into the VM (issue 4).
            memory_limit: bytes of Lua heap.
            instruction_limit: VM instructions per execute/call.
            timeout: wall-clock seconds per execute/call.
            cpu_limit: CPU seconds for the node process.
            max_output: bytes of captured print output per execute.
            callbacks: ``{"lua_name": python_fn}`` callable from Lua.
            persistent: keep the VM when this connection closes.
            mailbox_size: messages the VM's mailbox holds (default 1024).
            outbox_size: values the VM's outbox (Lua ``post``, read with
                ``vm.recv``) holds (default 1024).
            echo: write captured print output to sys.stdout on execute/call.
            full_isolation: also run the node in new PID, mount, IPC, UTS and
                (unless networked) network namespaces, under a seccomp
                allow-list, as ``uid``/``gid`` (nobody when the manager runs as
                root and none is given). See docs/security.md.
            uid, gid: drop the node to these ids (needs a root manager).
            restart: ``"on-crash"`` restarts a VM whose node dies, with a
                growing back-off; ``"never"`` (default) removes it.
            policy: a ``Policy`` (memory, TCP, files, imports); its ``mem``
                replaces ``memory_limit``, a TCP grant makes the VM networked.

        Returns:
            The VM handle; ``vm.isolation`` says what the node got.

        Raises:
            VMExists: the name is taken.
            IsolationUnavailable: the isolation asked for cannot be had here.
            InvalidRequest: bad name, negative or mistyped limit.
            ManagerError: the manager failed or is gone.
        """
        return self._core.conn.wait(self.create_vm_async(name, networked, **kw))

    def get_vm(self, name: str) -> VM:
        """Handle of an existing VM (ours, or a persistent one by name).

        Raises:
            VMNotFound: no VM of that name.
        """
        vm = self._core.vms.get(name)
        if vm is not None:
            return vm
        for info in self.list_vms():
            if info.get("name") == name:
                return VM(self._core, name, info.get("pid"))
        raise VMNotFound("VM %r: no VM of that name (create it with create_vm() first)"
                         % name, vm=name, code="VM_NOT_FOUND")

    def list_vms(self) -> list[dict]:
        """One dict per VM: name, pid, state, pending, persistent, networked."""
        return list(self._core.conn.call("list", {}))

    def shutdown_all(self) -> int:
        """Destroy every VM of this connection (and persistent ones); return the count."""
        n = self._core.conn.call("shutdown_all", {})
        s = self._core
        for vm in list(s.vms.values()):
            vm._closed = True
        s.vms.clear()
        s.callbacks.clear()
        return int(n or 0)

    def metrics(self) -> dict:
        """The manager's figures (docs/protocol.md, "Metrics and history").

        Totals since the manager started: executions (= executions_total),
        errors (= errors_total), errors_by_code, vms_created_total,
        vms_crashed_total, vms_restarted_total, uptime_s; now: vms (=
        vms_alive), peak_mem_bytes, min/max_ms; avg/p50/p99_ms (nearest rank)
        over the last ``duration_window`` successful runs (at most
        ``duration_window_max``).
        """
        return dict(self._core.conn.call("metrics", {}))

    def history(self, n: int = 100) -> list[dict]:
        """The last ``n`` exec/call runs, newest last (at most 1024 are kept).

        Each is ``{ts, vm, op, duration_ms, ok, error, mem_bytes}``; ``error``
        is the error code or None, ``duration_ms`` None when not known.

        Raises:
            InvalidRequest: ``n`` is not a non-negative integer.
        """
        return list(self._core.conn.call("history", {"n": history_n(n)}))

    @property
    def metrics_port(self) -> Optional[int]:
        """The port of the manager's Prometheus endpoint, None if it has none."""
        port = self.server_info.get("metrics_port")
        return int(port) if port else None

    def ping(self) -> bool:
        """True if the manager answers."""
        return self._core.conn.call("ping", {}) == "pong"

    # -- mailboxes (mailbox.py) --------------------------------------

    def mailbox(self, name: str, size: Optional[int] = None) -> Mailbox:
        """Open a mailbox of this connection named ``name`` (it must not be
        the name of a VM or another mailbox: VMExists); ``size`` bounds its
        message count (default 1024)."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidRequest("bad mailbox name %r" % (name,))
        fields: dict = {"name": name}
        if size is not None:
            fields["size"] = size
        self._core.conn.request("mailbox_open", fields).result()
        return Mailbox(self._core.conn, name)

    def send_to(self, to: str, value: Any, timeout: Optional[float] = None) -> bool:
        """Send ``value`` to the mailbox of VM ``to`` (or a client mailbox),
        as sender "@client".  Blocks while that mailbox is full; with
        ``timeout`` raises ExecutionTimeout instead (the message is not sent).

        Raises:
            VMNotFound: no VM or mailbox has that name.
        """
        return send_mail(self._core.conn, to, value, None, timeout).result()

    def send_to_async(self, to: str, value: Any, timeout: Optional[float] = None) -> Future:
        """Like send_to, returning a Future of True."""
        return send_mail(self._core.conn, to, value, None, timeout)

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

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterate over pushed events as ``Event(ts, vm, type, detail)``.

        Args:
            timeout: stop when no event arrives for this many seconds
                (None: run until the manager is closed).
        """
        while True:
            ev = self._core.next_event(timeout)
            if ev is None:
                return
            yield ev

    # -- lifecycle ----------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._core.closed

    def close(self) -> None:
        """Destroy our VMs and stop the embedded manager (if any).  Idempotent."""
        self._finalizer()

    def __enter__(self) -> "VMManager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<VMManager %s vms=%d%s>" % (getattr(self, "address", "?"),
                                            len(self._core.vms),
                                            " closed" if self.closed else "")
