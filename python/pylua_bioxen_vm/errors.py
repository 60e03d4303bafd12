"""The whole exception hierarchy of pylua_bioxen_vm, under one base class.

Owns the mapping from wire error codes (docs/protocol.md "Error codes") to
classes, in the one dict ``_ERRORS``.  connection.py calls ``error_from_wire``
for every error reply; nothing else builds exceptions from the wire.
"""

from __future__ import annotations

from typing import Any, Optional


class BioxenError(Exception):
    """Base class of every error raised by pylua_bioxen_vm.

    Attributes:
        vm: name of the VM the failed request was for, or None.
        code: the wire error code (e.g. ``"LUA_ERROR"``), or None for
            errors raised on the client side.
        detail: the ``detail`` object of the error reply, if any.
    """

    def __init__(self, message: str, *, vm: Optional[str] = None,
                 code: Optional[str] = None, detail: Any = None) -> None:
        super().__init__(message)
        self.vm = vm
        self.code = code
        self.detail = detail


class LuaError(BioxenError, RuntimeError):
    """A Lua runtime error (also a ``RuntimeError``, as LuaWard documents).

    Attributes:
        lua_message: the error message as Lua produced it.
        traceback: the Lua traceback as text ("" if none was sent); it is also
            attached as ``__cause__`` so Python prints it under the error.
        output: what the script printed before it failed.
    """

    def __init__(self, message: str, *, lua_message: str = "",
                 traceback: str = "", output: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.lua_message = lua_message
        self.traceback = traceback
        self.output = output


class LuaSyntaxError(LuaError):
    """The code did not compile."""


# The kinds of failure by pyisolate's names (pylua_bioxen_vm.pyisolate): each
# is a base of the bioxen classes of its kind, so ``except MemoryExceeded``
# also catches MemoryLimitExceeded.  Added as bases, not as a second set of
# classes, so one raise satisfies both styles of ``except``.

class PolicyError(BioxenError):
    """A policy problem: an operation the policy refused (PolicyViolation)
    or a malformed policy (InvalidPolicy).  pyisolate's ``PolicyError``."""


class SandboxTimeout(BioxenError, TimeoutError):
    """Something did not finish, or nothing arrived, in time: base of
    ExecutionTimeout and InstructionLimitExceeded, and what
    ``pyisolate.Sandbox.recv`` raises when nothing came.  pyisolate's
    ``TimeoutError`` (and a builtin ``TimeoutError`` too)."""


class MemoryExceeded(BioxenError, MemoryError):
    """Memory ran out: base of MemoryLimitExceeded.  pyisolate's
    ``MemoryExceeded`` (and a builtin ``MemoryError`` too)."""


class CPUExceeded(BioxenError):
    """CPU time ran out: base of CPULimitExceeded.  pyisolate's ``CPUExceeded``."""


class LimitExceeded(BioxenError):
    """Base of the limit errors.

    Attributes:
        restarted: True if the VM's node was killed and restarted fresh
            (its globals are gone); False if the VM is still usable as it was.
        output: what the script printed before the limit hit.
    """

    def __init__(self, message: str, *, restarted: bool = False,
                 output: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.restarted = restarted
        self.output = output


class ExecutionTimeout(LimitExceeded, SandboxTimeout):
    """The call outlived its wall-clock ``timeout`` (also a ``TimeoutError``)."""


class MemoryLimitExceeded(LimitExceeded, MemoryExceeded):
    """The Lua heap would have grown past ``memory_limit`` (also a ``MemoryError``)."""


class CPULimitExceeded(LimitExceeded, CPUExceeded):
    """The node used up its ``cpu_limit`` seconds of CPU (RLIMIT_CPU)."""


class InstructionLimitExceeded(LimitExceeded, SandboxTimeout):
    """The call ran more than ``instruction_limit`` VM instructions (also a
    ``TimeoutError``, as LuaWard documents)."""


class VMCrashed(BioxenError):
    """The VM's node died (signal/exit) or was destroyed with calls pending.

    Attributes:
        restarted: True if the manager started a fresh node under the name.
    """

    def __init__(self, message: str, *, restarted: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.restarted = restarted


class VMNotFound(BioxenError):
    """No VM of that name."""


class VMExists(BioxenError):
    """A VM of that name already exists."""


class PolicyViolation(PolicyError):
    """The sandbox policy refused the operation."""


class IsolationUnavailable(BioxenError):
    """The isolation asked for (namespaces, uid drop, seccomp) cannot be had
    here, so the VM was not created: never a silent downgrade."""


class AccessDenied(BioxenError):
    """An admin act by a client that is no admin: ``shutdown``, or
    destroying a shared VM of another identity (docs/security.md,
    "Identity model").  A VM of another identity that is not shared is not
    denied but invisible: it raises ``VMNotFound``."""


class ConversionError(BioxenError, TypeError):
    """A value cannot cross the Python <-> Lua boundary."""


class ManagerError(BioxenError):
    """The manager is unreachable, died, is shutting down, or failed."""


class ProtocolError(BioxenError):
    """The manager and the client disagree about the wire protocol."""


class InvalidRequest(ProtocolError, ValueError):
    """The request was malformed: bad name, negative limit, unknown op..."""


class InvalidPolicy(InvalidRequest, PolicyError):
    """A policy that cannot be: a bad grant, an unknown field or policy name
    (raised by ``pylua_bioxen_vm.pyisolate``'s Policy and spawn)."""


class LuaTraceback(Exception):
    """Carries a Lua traceback as text; set as ``__cause__`` of a LuaError.

    Like concurrent.futures.process._RemoteTraceback: printing the chained
    exception shows the Lua side of the failure.
    """

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\"\"\"\n%s\n\"\"\"" % self.tb


_ERRORS: dict[str, type[BioxenError]] = {
    "BAD_REQUEST": InvalidRequest,
    "UNKNOWN_OP": InvalidRequest,
    "FRAME_TOO_LARGE": ProtocolError,
    "AUTH_REQUIRED": ManagerError,
    "LUA_ERROR": LuaError,
    "SYNTAX_ERROR": LuaSyntaxError,
    "TIMEOUT": ExecutionTimeout,
    "MEMORY_LIMIT": MemoryLimitExceeded,
    "INSTRUCTION_LIMIT": InstructionLimitExceeded,
    "CPU_LIMIT": CPULimitExceeded,
    "VM_CRASHED": VMCrashed,
    "VM_NOT_FOUND": VMNotFound,
    "VM_EXISTS": VMExists,
    "POLICY_VIOLATION": PolicyViolation,
    "ISOLATION_UNAVAILABLE": IsolationUnavailable,
    "CONVERSION_ERROR": ConversionError,
    "SHUTTING_DOWN": ManagerError,
    "INTERNAL": ManagerError,
    "FORBIDDEN": AccessDenied,
    "CLUSTER_UNAVAILABLE": ManagerError,
}

# What to tell the user after a limit, by (code, restarted).
_LIMIT_ADVICE = {
    False: "the VM is still usable and keeps its globals",
    True: "the node was killed and restarted fresh: its globals are gone",
}


def _vm_prefix(vm: Optional[str]) -> str:
    return "VM %r: " % vm if vm else ""


def _limit_message(code: str, vm: Optional[str], msg: str, restarted: bool) -> str:
    what = {
        "TIMEOUT": "wall-clock timeout exceeded",
        "MEMORY_LIMIT": "memory limit exceeded",
        "INSTRUCTION_LIMIT": "instruction limit exceeded",
        "CPU_LIMIT": "CPU time limit exceeded",
    }[code]
    text = "%s%s (%s); %s" % (_vm_prefix(vm), what, msg, _LIMIT_ADVICE[restarted])
    if code == "TIMEOUT":
        text += "; raise timeout= if the work is legitimate"
    elif code == "MEMORY_LIMIT":
        text += "; raise memory_limit= or build smaller tables/strings"
    elif code == "INSTRUCTION_LIMIT":
        text += "; raise instruction_limit= if the work is legitimate"
    return text


def error_from_wire(err: Any, vm: Optional[str] = None) -> BioxenError:
    """Build the exception for an ``error`` object of a reply.

    Args:
        err: the reply's ``error`` value (a dict with ``code``/``message``).
        vm: name of the VM the request was for, to name it in the message.

    Returns:
        An instance of the class ``_ERRORS`` maps the code to
        (ProtocolError for an unknown code).
    """
    if not isinstance(err, dict):
        return ProtocolError("%smalformed error object from manager: %r"
                             % (_vm_prefix(vm), err), vm=vm)
    code = str(err.get("code", ""))
    msg = str(err.get("message", "")) or code
    cls = _ERRORS.get(code, ProtocolError)
    kw: dict[str, Any] = {"vm": vm, "code": code, "detail": err.get("detail")}
    output = err.get("output") or ""
    restarted = bool(err.get("restarted", False))
    if issubclass(cls, LuaError):
        tb = err.get("traceback") or ""
        exc: BioxenError = cls("%s%s" % (_vm_prefix(vm), msg), lua_message=msg,
                               traceback=tb, output=output, **kw)
        if tb:
            exc.__cause__ = LuaTraceback(tb)
        return exc
    if issubclass(cls, LimitExceeded):
        return cls(_limit_message(code, vm, msg, restarted),
                   restarted=restarted, output=output, **kw)
    if cls is VMCrashed:
        state = ("a fresh node was started under the same name" if restarted
                 else "recreate it with create_vm() to continue")
        return cls("%s%s; %s" % (_vm_prefix(vm), msg, state),
                   restarted=restarted, **kw)
    if cls is VMNotFound:
        return cls("%s%s (create it with create_vm() first)"
                   % (_vm_prefix(vm), msg), **kw)
    if cls is ProtocolError and code not in _ERRORS:
        msg = "unknown error code %r from manager: %s" % (code, msg)
    return cls("%s%s" % (_vm_prefix(vm), msg), **kw)
