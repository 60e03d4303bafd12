"""Which manager the pyisolate face uses, and its live sandboxes.

pyisolate has no manager object: ``psi.spawn`` just makes a sandbox.  Here
every sandbox is a VM of one bioxen manager:

* by default a **shared embedded VMManager**, started on the first
  ``spawn`` (under a lock, so racing first spawns start one), private to
  this process, and closed at interpreter exit (atexit) or by
  ``psi.shutdown()``; a later spawn starts a fresh one;
* or one the caller made: ``psi.set_manager(VMManager(...))`` makes it the
  default for later spawns (a shared daemon, a module_dir, default limits;
  the face never closes it), and ``spawn(..., manager=m)`` picks one for
  a single sandbox.

Sandbox names are unique across the face (``list_active`` is keyed by
them), as they are within one manager.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Optional

from ..errors import VMExists
from ..manager import VMManager
from .events import events
from .policy import as_policy
from .sandbox import Sandbox

_lock = threading.Lock()
_shared: Optional[VMManager] = None    # ours: started lazily, closed at exit
_chosen: Optional[VMManager] = None    # set_manager's: never closed by us
_active: dict[str, Optional[Sandbox]] = {}   # None: being spawned


def get_manager() -> VMManager:
    """The manager ``spawn`` uses without ``manager=``: ``set_manager``'s if
    it is open, else the shared embedded one (started now if need be).

    Raises:
        ManagerError: the embedded manager cannot be started.
    """
    global _shared
    with _lock:
        if _chosen is not None and not _chosen.closed:
            return _chosen
        if _shared is None or _shared.closed:
            _shared = VMManager()
            events.attach(_shared)
        return _shared


def set_manager(manager: Optional[VMManager]) -> None:
    """Make ``manager`` the default of later spawns (None: back to the shared
    embedded one).  The face never closes a manager given here."""
    global _chosen
    if manager is not None and not isinstance(manager, VMManager):
        raise TypeError("set_manager takes a VMManager or None, not %s"
                        % type(manager).__name__)
    if manager is not None:
        events.attach(manager)
    with _lock:
        _chosen = manager


def spawn(name: str, policy: Any = None, allowed_imports: Any = None, *,
          manager: Optional[VMManager] = None, **create_kw: Any) -> Sandbox:
    """Create the sandbox ``name`` and return its handle (also a context
    manager: the sandbox closes when the block ends).

    Args:
        name: 1-64 characters of ``A-Za-z0-9_.:-``, unique in the face.
        policy: ``"defaults"`` or None (nothing granted), a ``Policy``, or a
            dict of its fields (``mem``, ``fs``, ``tcp``, ``imports``).
        allowed_imports: module names the guest may ``require`` (added to
            the policy's imports).
        manager: the VMManager to create it in (default: ``get_manager()``).
        **create_kw: bioxen's ``create_vm`` options, e.g. ``timeout=``,
            ``instruction_limit=``, ``cpu_limit=``, ``networked=``,
            ``full_isolation=`` (a bioxen extension: pyisolate has none).

    Raises:
        PolicyError: the policy is not one (unknown name, field, bad grant).
        VMExists: a live sandbox (or VM) already has that name.
        InvalidRequest: a bad name or option.
        IsolationUnavailable, ManagerError: as ``create_vm``.
    """
    p = as_policy(policy, allowed_imports)
    if "policy" in create_kw:
        raise TypeError("spawn() got the policy twice")
    m = manager if manager is not None else get_manager()
    if manager is not None:
        if not isinstance(manager, VMManager):
            raise TypeError("manager must be a VMManager, not %s" % type(manager).__name__)
        events.attach(manager)
    with _lock:
        if name in _active:
            raise VMExists("a sandbox named %r is already active (close it first)"
                           % (name,), vm=name, code="VM_EXISTS")
        _active[name] = None
    try:
        vm = m.create_vm(name, policy=p, **create_kw)
    except BaseException:
        with _lock:
            _active.pop(name, None)
        raise
    sb = Sandbox(name, vm, m, p, _forget)
    with _lock:
        _active[name] = sb
    return sb


def _forget(sb: Sandbox) -> None:
    with _lock:
        if _active.get(sb.name) is sb:
            del _active[sb.name]


def list_active() -> dict[str, Sandbox]:
    """The sandboxes spawned and not yet closed, by name (a copy)."""
    with _lock:
        return {n: sb for n, sb in _active.items() if sb is not None}


def shutdown(timeout: float = 0.2) -> None:
    """Close every active sandbox (``close(timeout)`` each), then the shared
    embedded manager if one runs.  A later spawn starts a new one."""
    global _shared
    for sb in list_active().values():
        try:
            sb.close(timeout)
        except Exception:  # noqa: BLE001 - its manager may be gone already
            _forget(sb)
    with _lock:
        m, _shared = _shared, None
    if m is not None:
        m.close()


def _at_exit() -> None:
    # The sandboxes die with the shared manager; one of the user's keeps
    # its VMs until its connection closes (they are not persistent).
    global _shared
    with _lock:
        m, _shared = _shared, None
        _active.clear()
    if m is not None:
        m.close()


atexit.register(_at_exit)

__all__ = ["spawn", "list_active", "get_manager", "set_manager", "shutdown"]
