"""ManagerBase: the part of VMManager every other part builds on.

Holds the Core (core.py) and the default limits, and creates, finds, lists
and destroys VMs.  The feature parts of VMManager (net_modes.py, pool.py,
sessions.py, projects.py) subclass it, so what they use is declared here
once and typed; manager.py joins them and opens the connection.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Optional

from .core import Core
from .errors import InvalidRequest, VMNotFound
from .futures import chain, resolved
from .limits import check_cpu_share, check_limits
from .mailbox import NAME_RE
from .policy import Policy, check_policy
from .vm import VM


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


class ManagerBase:
    """VMs of one manager connection (see VMManager for the whole API).

    Attributes:
        default_limits: the limits every VM created here gets unless its
            create_vm overrides them.
    """

    _core: Core
    default_limits: dict[str, Any]

    # -- VMs ----------------------------------------------------------

    def create_vm_async(self, name: str, networked: bool = False, *,
                        memory_limit: Optional[int] = None,
                        instruction_limit: Optional[int] = None,
                        timeout: Optional[float] = None, cpu_limit: Optional[float] = None,
                        max_output: Optional[int] = None,
                        callbacks: Optional[dict[str, Callable]] = None,
                        persistent: bool = False, shared: bool = False, echo: bool = True,
                        mailbox_size: Optional[int] = None,
                        outbox_size: Optional[int] = None,
                        full_isolation: bool = False, uid: Optional[int] = None,
                        gid: Optional[int] = None, restart: str = "never",
                        policy: Optional[Policy] = None,
                        project: Optional[dict] = None,
                        host: Optional[str] = None,
                        cpu_share: Optional[float] = None) -> Future:
        """Start creating a VM; return a Future of its VM handle.

        Args: see ``create_vm``.

        Raises:
            InvalidRequest: at once, for a bad name, limit or callback table.
        """
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidRequest("bad VM name %r: use 1-64 characters from "
                                 "A-Z a-z 0-9 _ . : -" % (name,))
        limits = dict(self.default_limits)
        limits.update(check_limits({
            "memory_limit": memory_limit, "instruction_limit": instruction_limit,
            "timeout": timeout, "cpu_limit": cpu_limit, "max_output": max_output}))
        cbs = dict(callbacks or {})
        for k, fn in cbs.items():
            if not isinstance(k, str) or not NAME_RE.match(k) or not callable(fn):
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
        if shared:  # sent only when asked: older managers know no "shared"
            fields["shared"] = True
        if mailbox_size is not None:
            fields["mailbox_size"] = mailbox_size
        if outbox_size is not None:
            fields["outbox_size"] = outbox_size
        if policy is not None:
            fields["policy"] = check_policy(policy)
            # a TCP grant is for a networked VM: it turns networking on
            fields["networked"] = fields["networked"] or bool(policy.tcp)
        if cpu_share is not None:  # sent only when asked: older managers know none
            fields["cpu_share"] = check_cpu_share(cpu_share)
        if project is not None:  # wire form from projects.py (run_project)
            fields["project"] = project
        if host is not None:  # another host of the cluster, or "*"
            if not isinstance(host, str):
                raise InvalidRequest("host must be a host name or '*', not %r" % (host,))
            fields["host"] = host

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
            shared: let every identity of a shared manager use the VM (exec,
                call, globals, ...; ``bioxen repl NAME`` from another
                account); only its owner or an admin may destroy it.
                Without it, other identities get ``VMNotFound``.
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
            cpu_share: CPUs the node may use (``0.5``: half a core), a
                cgroup ``cpu`` quota per 100 ms period: a busy VM is
                throttled, not killed, and ``CPU_THROTTLE`` events report it
                (``vm.stats()["throttled_ms"]``). From 0.01 to the host's
                CPU count; a manager without the cpu controller (or with
                ``--no-cgroups``) refuses it with ``IsolationUnavailable``.
            host: on a clustered manager, the host to create the VM on
                (``None``: this manager; ``"*"``: the least loaded live
                host). The handle works through this manager either way.

        Returns:
            The VM handle; ``vm.isolation`` says what the node got.

        Raises:
            VMExists: the name is taken.
            IsolationUnavailable: the isolation asked for (full_isolation,
                cpu_share) cannot be had here.
            InvalidRequest: bad name, negative or mistyped limit or cpu_share.
            ManagerError: the manager failed or is gone.
        """
        return self._core.conn.blocking(lambda: self.create_vm_async(name, networked, **kw))

    def get_vm_async(self, name: str) -> Future:
        """Future of ``get_vm``: at once for a VM of ours, else after a list."""
        vm = self._core.vms.get(name)
        if vm is not None:
            return resolved(vm)
        core = self._core

        def find(infos: list) -> VM:
            for info in infos:
                if info.get("name") == name:
                    return VM(core, name, info.get("pid"))
            raise VMNotFound("VM %r: no VM of that name (create it with create_vm() "
                             "first)" % name, vm=name, code="VM_NOT_FOUND")

        def find_here(infos: list) -> Any:
            if any(info.get("name") == name for info in infos):
                return infos
            # not on this host: on another of the cluster? (a lone manager
            # answers the same list again)
            return self.list_vms_async(cluster=True)
        return chain(chain(self.list_vms_async(), find_here), find)

    def get_vm(self, name: str) -> VM:
        """Handle of an existing VM (ours, or a persistent one by name; on a
        clustered manager, one on any live host: its ops go through this one).

        Raises:
            VMNotFound: no VM of that name.
        """
        return self._core.conn.blocking(lambda: self.get_vm_async(name))

    def list_vms_async(self, cluster: bool = False) -> Future:
        """Future of ``list_vms``."""
        fields = {"cluster": True} if cluster else {}
        return self._core.conn.request("list", fields, transform=list)

    def list_vms(self, cluster: bool = False) -> list[dict]:
        """One dict per VM this connection may use: name, pid, state, pending,
        persistent, networked, pool, owner (the creator's identity), shared.
        ``cluster=True``: the VMs of every live host, each with ``host``."""
        return self._core.conn.blocking(lambda: self.list_vms_async(cluster))

    def vm_stats_async(self, name: str) -> Future:
        """Future of ``vm_stats``."""
        return self._core.conn.request("stats", {}, vm=name, transform=dict)

    def vm_stats(self, name: str) -> dict:
        """The stats of VM ``name`` (as ``VM.stats``), by name: for a VM of
        another connection (``bioxen top``) without listing to get a handle.

        Raises:
            VMNotFound: no VM of that name.
        """
        return self._core.conn.blocking(lambda: self.vm_stats_async(name))

    def destroy_vm_async(self, name: str) -> Future:
        """Future of ``destroy_vm`` (None once the node is gone)."""
        core = self._core
        vm = core.vms.pop(name, None)
        if vm is not None:      # our handle: closed from now on
            vm._closed = True
            core.callbacks.pop(name, None)
        return core.conn.request("destroy", {}, vm=name, transform=_none)

    def destroy_vm(self, name: str) -> None:
        """Destroy VM ``name`` by name, ours or another connection's
        (``bioxen kill``); a handle of ours to it is closed.

        Raises:
            VMNotFound: no VM of that name (unlike ``VM.close``, which is
                idempotent).
        """
        self._core.conn.blocking(lambda: self.destroy_vm_async(name))

    def shutdown_all_async(self) -> Future:
        """Future of ``shutdown_all``."""
        core = self._core

        def forget(n: Any) -> int:
            for vm in list(core.vms.values()):
                vm._closed = True
            core.vms.clear()
            core.callbacks.clear()
            return int(n or 0)
        return core.conn.request("shutdown_all", {}, transform=forget)

    def shutdown_all(self) -> int:
        """Destroy every VM of this connection, and the persistent VMs of its
        identity (an admin's: every persistent VM); return the count."""
        return self._core.conn.blocking(self.shutdown_all_async)


def _none(_: Any) -> None:
    return None


__all__ = ["ManagerBase"]
