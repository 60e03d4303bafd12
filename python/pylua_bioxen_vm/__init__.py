"""pylua_bioxen_vm: run many sandboxed Lua 5.4 VMs from Python.

    from pylua_bioxen_vm import VMManager
    with VMManager() as m:
        vm = m.create_vm("vm1", memory_limit=16 << 20, timeout=2.0)
        vm.execute("return math.sqrt(16)")      # 4.0

VMManager (manager.py) talks to bioxen-manager over one connection
(connection.py); VM (vm.py) is the handle of one VM; errors.py holds the
exception hierarchy; values.py the Python <-> Lua value mapping.  The
asyncio faces are in aio/, the ``bioxen`` command in cli/, faces of other
libraries' APIs in compat/ (LuaWard) and pyisolate/ (pyisolate's, imported
as ``pylua_bioxen_vm.pyisolate``).
"""

from .aio import AsyncMailbox, AsyncSession, AsyncStream, AsyncVM, AsyncVMManager
from .errors import (AccessDenied, BioxenError, ConversionError, CPULimitExceeded, ExecutionTimeout,
                     InstructionLimitExceeded, InvalidRequest, IsolationUnavailable,
                     LimitExceeded, LuaError,
                     LuaSyntaxError, ManagerError, MemoryLimitExceeded, PolicyViolation,
                     ProtocolError, VMCrashed, VMExists, VMNotFound)
from .compat import IsolatedLuaVM
from .mailbox import Mailbox
from .manager import VMManager
from .net import NotNetworked
from .net_modes import NetJob
from .policy import Policy
from .sessions import Session
from .core import Event
from .values import LuaOpaque
from .results import ExecResult
from .vm import VM
from .stream import Stream, StreamItem

__version__ = "0.1.0"

__all__ = [
    "VMManager", "VM", "Policy", "Session", "Mailbox", "ExecResult", "Event", "LuaOpaque", "IsolatedLuaVM",
    "BioxenError", "LuaError", "LuaSyntaxError", "LimitExceeded", "ExecutionTimeout",
    "MemoryLimitExceeded", "CPULimitExceeded", "InstructionLimitExceeded", "VMCrashed",
    "VMNotFound", "VMExists", "PolicyViolation", "ConversionError", "ManagerError",
    "ProtocolError", "InvalidRequest", "NotNetworked", "NetJob", "IsolationUnavailable",
    "AccessDenied",
    "AsyncVMManager", "AsyncVM", "AsyncMailbox", "AsyncStream", "AsyncSession",
    "Stream", "StreamItem",
]
