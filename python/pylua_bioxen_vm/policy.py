"""Policy: what a VM may reach beyond its own state (docs/protocol.md "Policy").

    policy = (Policy(mem="256MiB")
              .allow_tcp("127.0.0.1:9200")
              .allow_fs("/srv/data/*.csv")
              .allow_import("mymod"))
    vm = manager.create_vm("vm1", policy=policy)
    vm.set_policy(policy.allow_fs("/srv/more/*.json"))   # hot reload

Each grant is checked here, at the call, so a mistake fails where it was
made (InvalidRequest); the manager checks the same rules again.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Union

from .errors import InvalidRequest

_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_KERNEL_AREAS = ("/proc", "/sys", "/dev")

# Bounds the manager enforces (manager/validate.h).
TCP_MAX, FS_MAX, IMPORTS_MAX = 64, 256, 256


def parse_size(value: Union[int, str]) -> int:
    """Bytes from an int or a size text: "512k", "16M", "1G", "256MiB", "1.5GiB".

    Units are binary (k = 1024).

    Raises:
        InvalidRequest: not a non-negative whole number of bytes.
    """
    if isinstance(value, bool):
        raise InvalidRequest("mem must be a byte count or a size like '256MiB', not a bool")
    if isinstance(value, int):
        if value < 0:
            raise InvalidRequest("mem must be >= 0 bytes, got %d" % value)
        return value
    if not isinstance(value, str):
        raise InvalidRequest("mem must be an int or a size like '256MiB', not %s"
                             % type(value).__name__)
    m = _SIZE_RE.match(value)
    if not m or (m.group(3) and m.group(3).lower() == "i"):
        raise InvalidRequest("mem %r is not a size: use bytes or a number with k, M, G "
                             "or T (e.g. '512k', '16M', '256MiB', '1.5GiB')" % value)
    n = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if n != int(n):
        raise InvalidRequest("mem %r is not a whole number of bytes" % value)
    return int(n)


def _check_tcp(addr: Any) -> str:
    if not isinstance(addr, str) or "\0" in addr:
        raise InvalidRequest("allow_tcp takes a 'host:port' string, got %r" % (addr,))
    host, sep, port = addr.rpartition(":")
    if (not sep or not host or not port.isdigit() or len(port) > 5 or int(port) > 65535
            or any(c <= " " or c > "~" for c in host) or len(addr) > 255):
        raise InvalidRequest("allow_tcp %r: use 'host:port' with a port 0-65535, "
                             "e.g. '127.0.0.1:9200'" % (addr,))
    return addr


def _check_fs(glob: Any) -> str:
    if not isinstance(glob, str) or "\0" in glob:
        raise InvalidRequest("allow_fs takes an absolute path glob, got %r" % (glob,))
    if not glob.startswith("/"):
        raise InvalidRequest("allow_fs %r: the glob must be absolute (start with '/')" % glob)
    parts = [p for p in glob.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest("allow_fs %r: '..' is not allowed in a glob" % glob)
    if parts and "/" + parts[0] in _KERNEL_AREAS:
        raise InvalidRequest("allow_fs %r: /proc, /sys and /dev are never readable" % glob)
    if len(glob) > 4096:
        raise InvalidRequest("allow_fs glob is too long (4096 characters at most)")
    return glob


def _check_import(name: Any) -> str:
    # "pkg.*" grants the family below pkg (IsoBox's "@scope/*"): pkg.a,
    # pkg.a.b, but not pkg itself nor pkgx (net/modmatch.c decides).
    stem = name[:-2] if isinstance(name, str) and name.endswith(".*") else name
    if not isinstance(name, str) or len(name) > 255 or not _MODULE_RE.match(stem):
        raise InvalidRequest("allow_import %r: a module name is identifiers joined by "
                             "dots, e.g. 'mymod' or 'pkg.util', or a family 'pkg.*'"
                             % (name,))
    return name


class Policy:
    """What a VM may reach: memory, TCP peers, files to read, modules to require.

    Builder methods return ``self`` so grants chain.  Everything not granted
    is refused: the refusal raises ``PolicyViolation`` in Lua (and in Python
    when uncaught) and emits a ``SECURITY_VIOLATION`` event.

    Args:
        mem: the Lua heap limit (bytes, or a size text like "256MiB"); it
            replaces ``memory_limit``.  None leaves the VM's limit as it is.

    Attributes:
        mem: int bytes or None.
        tcp: "host:port" pairs a networked VM may connect/send/bind to
            besides the listeners of the manager's VMs.
        fs: absolute globs of files ``fs.read``/``fs.lines`` may read.
        imports: module names ``require`` may load from the manager's
            ``module_dir``.
    """

    def __init__(self, mem: Optional[Union[int, str]] = None) -> None:
        self.mem: Optional[int] = None if mem is None else parse_size(mem)
        self.tcp: list[str] = []
        self.fs: list[str] = []
        self.imports: list[str] = []

    @staticmethod
    def _add(lst: list, value: str, limit: int, what: str) -> None:
        if value in lst:
            return
        if len(lst) >= limit:
            raise InvalidRequest("a policy holds at most %d %s grants" % (limit, what))
        lst.append(value)

    def allow_tcp(self, addr: str) -> "Policy":
        """Let a networked VM connect, send or bind to ``"host:port"``.

        Without grants a networked VM reaches only the addresses other VMs
        of the same manager listen on; any other port, loopback included,
        needs a grant. Matched on the resolved address: ``localhost:9200``
        and ``127.0.0.1:9200`` are one grant (docs/security.md).
        """
        self._add(self.tcp, _check_tcp(addr), TCP_MAX, "allow_tcp")
        return self

    def allow_fs(self, glob: str) -> "Policy":
        """Let ``fs.read``/``fs.lines`` read regular files matching the
        absolute glob (``*`` does not cross ``/``), read-only."""
        self._add(self.fs, _check_fs(glob), FS_MAX, "allow_fs")
        return self

    def allow_import(self, name: str) -> "Policy":
        """Let ``require(name)`` load ``<module_dir>/a/b.lua`` for ``a.b``."""
        self._add(self.imports, _check_import(name), IMPORTS_MAX, "allow_import")
        return self

    def to_wire(self) -> dict:
        """The ``policy`` object of the create / set_policy requests."""
        return {"mem": self.mem, "tcp": list(self.tcp), "fs": list(self.fs),
                "imports": list(self.imports)}

    @classmethod
    def from_wire(cls, obj: dict) -> "Policy":
        """A Policy from a wire object (e.g. a POLICY_HOTLOAD event's detail).

        Raises:
            InvalidRequest: a field is missing its rules.
        """
        if not isinstance(obj, dict):
            raise InvalidRequest("a policy is a dict with mem, tcp, fs, imports")
        p = cls(obj.get("mem"))
        for a in obj.get("tcp") or []:
            p.allow_tcp(a)
        for g in obj.get("fs") or []:
            p.allow_fs(g)
        for m in obj.get("imports") or []:
            p.allow_import(m)
        return p

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self.to_wire() == other.to_wire()

    def __repr__(self) -> str:
        parts = ["Policy(mem=%r)" % self.mem]
        parts += [".allow_tcp(%r)" % a for a in self.tcp]
        parts += [".allow_fs(%r)" % g for g in self.fs]
        parts += [".allow_import(%r)" % m for m in self.imports]
        return "".join(parts)


def check_policy(policy: Any) -> dict:
    """The wire form of ``policy`` (a Policy).

    Raises:
        InvalidRequest: not a Policy.
    """
    if not isinstance(policy, Policy):
        raise InvalidRequest("policy must be a Policy (pylua_bioxen_vm.Policy), not %s"
                             % type(policy).__name__)
    return policy.to_wire()


__all__ = ["Policy", "parse_size", "check_policy"]
