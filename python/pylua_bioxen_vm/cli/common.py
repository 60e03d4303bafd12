"""Helpers shared by the ``bioxen`` subcommands (cli/): exit statuses,
parsing of sizes and durations, finding and connecting to a manager, and
printing Lua values the way a Lua programmer reads them.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import Any, Optional

from ..errors import BioxenError, LimitExceeded, LuaError, ManagerError, PolicyViolation
from ..manager import VMManager
from ..values import LuaOpaque

# Exit statuses of every subcommand (docs/cli.md "Exit status").
EXIT_OK = 0
EXIT_LUA = 1        # a Lua error in the script, or a failed command (unknown VM...)
EXIT_USAGE = 2      # bad command line (argparse uses 2 too)
EXIT_LIMIT = 3      # a resource limit stopped the script
EXIT_MANAGER = 4    # no manager, the VM crashed, the manager failed

_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000 ** 2,
               "mb": 1000 ** 2, "mib": 1024 ** 2, "g": 1000 ** 3, "gb": 1000 ** 3,
               "gib": 1024 ** 3}
_DUR_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "m": 60.0, "min": 60.0, "h": 3600.0}
_NUM_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """``16M``, ``64KiB``, ``1.5G``, ``4096`` -> bytes.

    K/M/G are powers of 1024 like ``ulimit`` and the Lua docs use for memory
    (``16M`` = 16 MiB); KB/MB/GB are powers of 1000; KiB/MiB/GiB of 1024.
    """
    number, unit = _number_unit(text, _SIZE_UNITS, "a size: use a number with an optional "
                                "unit, e.g. 16M, 64KiB, 512k, 1000000")
    mult = 1024 ** " kmg".index(unit) if unit in ("k", "m", "g") else _SIZE_UNITS[unit]
    return int(number * mult)


def parse_duration(text: str) -> float:
    """``2s``, ``500ms``, ``1.5``, ``1m`` -> seconds."""
    number, unit = _number_unit(text, _DUR_UNITS, "a duration: use seconds with an "
                                "optional unit, e.g. 2s, 500ms, 1.5, 1m")
    return number * _DUR_UNITS[unit]


def _number_unit(text: str, units: dict, what: str) -> tuple[float, str]:
    """``text`` as (number, lower-case unit of ``units``); argparse's error else."""
    m = _NUM_RE.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in units:
        raise argparse.ArgumentTypeError("%r is not %s" % (text, what))
    return float(m.group(1)), unit


def parse_count(text: str) -> int:
    """``1000000``, ``10M``, ``500k`` -> a whole number (k/M/G are 10^3/6/9)."""
    m = _NUM_RE.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in ("", "k", "m", "g"):
        raise argparse.ArgumentTypeError("%r is not a count: use e.g. 1000000, 500k or 10M"
                                         % text)
    return int(float(m.group(1)) * 1000 ** " kmg".index(unit or " "))


def positive_float(text: str) -> float:
    """A duration that must be > 0 (e.g. ``top --interval``)."""
    v = parse_duration(text)
    if v <= 0:
        raise argparse.ArgumentTypeError("%r must be more than 0" % text)
    return v


# -- addresses ---------------------------------------------------------------

def default_socket() -> str:
    """Where ``bioxen serve`` listens and the other commands look by default:
    ``$XDG_RUNTIME_DIR/bioxen/manager.sock``, else ``/tmp/bioxen-<uid>/manager.sock``."""
    run = os.environ.get("XDG_RUNTIME_DIR")
    if run and os.path.isdir(run):
        return os.path.join(run, "bioxen", "manager.sock")
    return "/tmp/bioxen-%d/manager.sock" % os.getuid()


def normalize_address(addr: str) -> str:
    """Turn what a user types into what VMManager takes: ``host:port`` becomes
    ``tcp://host:port``; anything else names a Unix socket."""
    if addr.startswith(("tcp://", "unix:")):
        return addr
    if "/" not in addr and re.match(r"^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):[0-9]+$", addr):
        return "tcp://" + addr
    return "unix:" + addr


def explicit_address(args: argparse.Namespace) -> Optional[str]:
    """The address from ``--address`` or ``BIOXEN_ADDRESS``, or None."""
    return getattr(args, "address", None) or os.environ.get("BIOXEN_ADDRESS") or None


def read_token(args: argparse.Namespace) -> Optional[str]:
    """The TCP token from ``--token``, ``--token-file`` (TOKEN or NAME:TOKEN)
    or ``BIOXEN_TOKEN``."""
    if getattr(args, "token", None):
        return args.token
    path = getattr(args, "token_file", None)
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                tok = f.read().strip()
        except OSError as e:
            raise CliError("cannot read the token file %s: %s" % (path, e.strerror),
                           EXIT_USAGE) from None
        # a line of the manager's own file, NAME:TOKEN, works as the client's
        # file too (a NAME never holds a colon, so the first one ends it)
        tok = tok.split(":", 1)[1].strip() if ":" in tok else tok
        if not tok:
            raise CliError("the token file %s is empty" % path, EXIT_USAGE)
        return tok
    return os.environ.get("BIOXEN_TOKEN") or None


class CliError(Exception):
    """A failure the CLI reports as one line on stderr and an exit status."""

    def __init__(self, message: str, status: int = EXIT_LUA) -> None:
        super().__init__(message)
        self.status = status


def connect(args: argparse.Namespace, *, embedded_ok: bool = False,
            **limits: Any) -> VMManager:
    """Connect to the manager the user points at.

    Order: ``--address``, ``BIOXEN_ADDRESS``, then (unless ``embedded_ok``)
    the default socket of ``bioxen serve``.  With ``embedded_ok`` and no
    address given, a private embedded manager is started instead.

    Raises:
        CliError: nothing answers, with advice on how to fix it.
    """
    addr = explicit_address(args)
    module_dir = getattr(args, "module_dir", None)
    if addr is None and embedded_ok:
        return private_manager(module_dir, **limits)
    if module_dir:
        raise CliError("--module-dir applies to an embedded manager only; start the shared "
                       "one with `bioxen serve --module-dir DIR`", EXIT_USAGE)
    where = normalize_address(addr or default_socket())
    path = where[len("unix:"):] if where.startswith("unix:") else None
    hint = ("start one with `bioxen serve`%s or pass --address (or set BIOXEN_ADDRESS)"
            % ("" if addr is None else " --socket %s" % path if path else ""))
    if path is not None and not os.path.exists(path):
        raise CliError("no manager at %s: %s" % (path, hint), EXIT_MANAGER)
    token = read_token(args)
    try:
        return VMManager(where, token=token, start_timeout=5.0, **limits)
    except ManagerError as e:
        if e.code == "AUTH_REQUIRED" and token is not None:
            raise CliError("the manager at %s refused the token: check --token-file (or "
                           "--token, BIOXEN_TOKEN)" % where, EXIT_MANAGER) from None
        if e.code == "AUTH_REQUIRED":
            raise CliError("the manager at %s needs a token: pass --token-file FILE (or "
                           "--token, or set BIOXEN_TOKEN)" % where, EXIT_MANAGER) from None
        raise CliError("no manager answers at %s (%s): %s" % (path or where, e, hint),
                       EXIT_MANAGER) from None


def private_manager(module_dir: Optional[str], **limits: Any) -> VMManager:
    """A VMManager on a manager of its own (``VMManager()``): it runs in a
    session of its own, so a Ctrl-C typed at the terminal (the repl's "drop
    this line") reaches us, not it; closing the VMManager stops it, and so
    does our death (``--exit-with-stdin``)."""
    if module_dir is not None and not os.path.isdir(module_dir):
        raise CliError("--module-dir %s is not a directory" % module_dir, EXIT_USAGE)
    try:
        return VMManager(module_dir=module_dir, start_timeout=30.0, **limits)
    except ManagerError as e:
        raise CliError("cannot start a private manager: %s" % e, EXIT_MANAGER) from None


def error_status(e: BaseException) -> int:
    """The exit status for an exception escaping a script."""
    if isinstance(e, LimitExceeded):
        return EXIT_LIMIT
    if isinstance(e, (LuaError, PolicyViolation)):
        return EXIT_LUA
    if isinstance(e, BioxenError):
        return EXIT_MANAGER
    return EXIT_LUA


def report_error(e: BaseException, prog: str = "bioxen") -> None:
    """Print a script's failure to stderr: what printed before it, the message,
    and the Lua traceback if there is one."""
    out = getattr(e, "output", "") or ""
    if out:
        sys.stdout.write(out)
        sys.stdout.flush()
    if isinstance(e, LuaError):
        msg = e.lua_message or str(e)
        sys.stderr.write("%s: %s\n" % (prog, msg))
        if e.traceback:
            sys.stderr.write(e.traceback.rstrip("\n") + "\n")
    elif isinstance(e, LimitExceeded) and e.code in _LIMIT_TEXT:
        what, opt = _LIMIT_TEXT[e.code]
        sys.stderr.write("%s: %s exceeded; raise %s if the work is legitimate%s\n"
                         % (prog, what, opt, "" if not e.restarted else
                            " (the VM was restarted: its globals are gone)"))
    else:
        sys.stderr.write("%s: %s\n" % (prog, e))
    sys.stderr.flush()


# Limit error code -> (what hit, the option that raises it).
_LIMIT_TEXT = {
    "TIMEOUT": ("wall-clock timeout", "--timeout"),
    "MEMORY_LIMIT": ("memory limit", "--memory"),
    "INSTRUCTION_LIMIT": ("instruction limit", "--instructions"),
    "CPU_LIMIT": ("CPU time limit", "--cpu"),
}


# -- printing Lua values -----------------------------------------------------

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LUA_ESC = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def _lua_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in _LUA_ESC:
            out.append(_LUA_ESC[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append("\\%d" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _lua_num(x: float) -> str:
    if math.isnan(x):
        return "nan" if math.copysign(1, x) > 0 else "-nan"
    if math.isinf(x):
        return "math.huge" if x > 0 else "-math.huge"
    if x == int(x) and abs(x) < 1e16:
        return "%.1f" % x          # Lua 5.4 prints floats with integral values as 1.0
    return "%.14g" % x


def lua_repr(v: Any, depth: int = 0) -> str:
    """Render a value that came back from Lua as Lua source would write it:
    ``nil``, ``true``, ``"text"``, ``{1, 2, x = 3}``, ``<function>``."""
    if v is None:
        return "nil"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _lua_num(v)
    if isinstance(v, str):
        return _lua_str(v)
    if isinstance(v, (bytes, bytearray)):
        return _lua_str(bytes(v).decode("latin-1"))
    if isinstance(v, LuaOpaque):
        return "<%s>" % v.type
    if depth > 20:
        return "{...}"
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua_repr(x, depth + 1) for x in v) + "}"
    if isinstance(v, dict):
        parts = []
        n = 1
        while n in v:           # the sequence part first, without keys
            parts.append(lua_repr(v[n], depth + 1))
            n += 1
        for k, x in v.items():
            if isinstance(k, int) and not isinstance(k, bool) and 1 <= k < n:
                continue
            key = k if isinstance(k, str) and _IDENT.match(k) else "[%s]" % lua_repr(k, depth + 1)
            parts.append("%s = %s" % (key, lua_repr(x, depth + 1)))
        return "{" + ", ".join(parts) + "}"
    return repr(v)


def print_values(values: tuple) -> None:
    """Print return values tab-separated on one line (as Lua's print would
    order them); nothing for no values."""
    if values:
        sys.stdout.write("\t".join(lua_repr(v) for v in values) + "\n")
        sys.stdout.flush()


def human_bytes(n: Any) -> str:
    """``1536`` -> ``1.5 KiB``; ``-`` for a missing value."""
    if not isinstance(n, (int, float)) or isinstance(n, bool):
        return "-"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(x) < 1024 or unit == "GiB":
            return ("%d %s" % (x, unit)) if unit == "B" else ("%.1f %s" % (x, unit))
        x /= 1024
    return str(n)
