"""pyisolate's API over bioxen, with the guest code in Lua.

    import pylua_bioxen_vm.pyisolate as psi

    sb = psi.spawn("guest42", policy="defaults")
    sb.exec("post(math.sqrt(2))")
    result = sb.recv(timeout=1)            # 1.4142135623730951
    sb.close()

    from pylua_bioxen_vm.pyisolate.policy import Policy
    cust = (Policy(mem="256MiB")
            .allow_fs("/srv/data/*.parquet")
            .allow_tcp("127.0.0.1:9200")
            .allow_import("math"))
    with psi.spawn("etl", policy=cust) as sb:
        ...

For code written against pyisolate (its API.md v0.1); it is a thin face:
a sandbox is a bioxen VM (a node process under the manager's limits and
policy), ``post``/``recv`` are the VM's outbox, ``psi.events`` are the
manager's events.  The pieces: registry.py (which manager, ``spawn``,
``list_active``), sandbox.py (``Sandbox``, ``Stats``), outbox.py (exec
errors in order with posts), policy.py (``Policy``), events.py
(``psi.events``).  docs/python.md, "pyisolate", maps each call and says
what differs.

Exceptions by pyisolate's names are bioxen's own classes (errors.py), so
either name catches what bioxen raises:

    SandboxError    = BioxenError (the base of every error here)
    PolicyError     base of PolicyViolation and InvalidPolicy
    TimeoutError    SandboxTimeout: base of ExecutionTimeout and
                    InstructionLimitExceeded, raised by recv (and a builtin
                    TimeoutError as well)
    MemoryExceeded  base of MemoryLimitExceeded (a MemoryError as well)
    CPUExceeded     base of CPULimitExceeded
"""

from __future__ import annotations

from ..errors import BioxenError as SandboxError
from ..errors import CPUExceeded, InvalidPolicy, MemoryExceeded, PolicyError
from ..errors import SandboxTimeout as TimeoutError  # noqa: A001 - pyisolate's name
from .events import SandboxEvent, events
from .policy import Policy
from .registry import get_manager, list_active, set_manager, shutdown, spawn
from .sandbox import Sandbox, Stats

__all__ = [
    "spawn", "list_active", "events", "Sandbox", "Stats", "Policy", "SandboxEvent",
    "get_manager", "set_manager", "shutdown",
    "SandboxError", "PolicyError", "TimeoutError", "MemoryExceeded", "CPUExceeded",
    "InvalidPolicy",
]
