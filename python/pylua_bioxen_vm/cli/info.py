"""``bioxen list``, ``stats``, ``top`` and ``kill``: look at and stop the VMs
of a running manager.

Fields the manager may or may not send (cpu_ms, rss_bytes, executions,
last_error...) are shown when present and as ``-`` when absent, so these
commands work against older and newer managers alike.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Optional

from ..errors import BioxenError, VMNotFound
from ..manager import VMManager
from .common import EXIT_LUA, EXIT_OK, CliError, connect, human_bytes

_LIST_COLS = ("name", "pid", "state", "pending", "persistent", "networked")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "%.4g" % v
    return str(v)


def table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned columns, two spaces apart, with a header line."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in [header] + rows]
    return "\n".join(lines) + "\n"


def _no_vm(name: str) -> CliError:
    return CliError("no VM named %r on this manager (see `bioxen list`)" % name, EXIT_LUA)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the manager's VMs."""
    with connect(args) as m:
        vms = sorted(m.list_vms(), key=lambda v: str(v.get("name")))
    if args.json:
        print(json.dumps(vms, indent=2))
    elif not vms:
        print("no VMs")
    else:
        sys.stdout.write(table([[_cell(v.get(c)) for c in _LIST_COLS] for v in vms],
                               [c.upper() for c in _LIST_COLS]))
    return EXIT_OK


def _fmt_stat(key: str, v: Any) -> str:
    if key.endswith("_bytes") or key in ("mem_limit",):
        return "%s (%s)" % (human_bytes(v), v) if isinstance(v, int) else _cell(v)
    if key == "error_rate" and isinstance(v, (int, float)):
        return "%.1f%%" % (100.0 * v)
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return _cell(v)


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the manager's metrics, or one VM's stats."""
    with connect(args) as m:
        if args.vm:
            try:
                data = m.vm_stats(args.vm)
            except VMNotFound:
                raise _no_vm(args.vm) from None
        else:
            data = m.metrics()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    width = max((len(k) for k in data), default=0)
    for k, v in data.items():
        print("%s  %s" % (k.ljust(width), _fmt_stat(k, v)))
    return EXIT_OK


# -- top ----------------------------------------------------------------------

_TOP_HEAD = ["NAME", "PID", "STATE", "HEAP", "RSS", "CPU ms", "EXECS", "ERRS", "LAST ERROR"]


def _top_rows(m: VMManager) -> list[list[str]]:
    vms = sorted(m.list_vms(), key=lambda v: str(v.get("name")))
    futs = [m.vm_stats_async(v["name"]) for v in vms]   # all at once
    rows = []
    for v, f in zip(vms, futs):
        try:
            st = dict(f.result(10.0))
        except (BioxenError, FutureTimeout, OSError):
            st = {}   # it went away between list and stats, or is busy dying
        err = st.get("last_error")
        if isinstance(err, dict):
            err = err.get("code") or err.get("message")
        rows.append([str(v.get("name")), _cell(st.get("pid", v.get("pid"))),
                     _cell(v.get("state")), human_bytes(st.get("mem_bytes")),
                     human_bytes(st.get("rss_bytes")), _cell(st.get("cpu_ms")),
                     _cell(st.get("executions")), _cell(st.get("errors")),
                     (str(err)[:40] if err else "-")])
    return rows


def _summary(m: VMManager) -> str:
    mt = m.metrics()
    rate = mt.get("error_rate")
    return ("bioxen top - %s  vms %s  executions %s  errors %s%s  uptime %s s"
            % (m.address, _cell(mt.get("vms")), _cell(mt.get("executions")),
               _cell(mt.get("errors")),
               (" (%.1f%%)" % (100 * rate)) if isinstance(rate, (int, float)) else "",
               _cell(mt.get("uptime_s"))))


class _Keys:
    """Single keypresses from a terminal stdin (cbreak mode), restored on exit;
    on a non-terminal stdin it only waits."""

    def __init__(self) -> None:
        self.fd: Optional[int] = None
        self.saved: Any = None
        self._idle = threading.Event()
        if sys.stdin is not None and sys.stdin.isatty():
            import termios
            import tty
            self.fd = sys.stdin.fileno()
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def wait_quit(self, seconds: float) -> bool:
        """Wait ``seconds``; True if the user pressed q."""
        if self.fd is None:
            self._idle.wait(seconds)
            return False
        r, _, _ = select.select([self.fd], [], [], seconds)
        return bool(r) and os.read(self.fd, 32).lower().startswith(b"q")

    def restore(self) -> None:
        if self.fd is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def cmd_top(args: argparse.Namespace) -> int:
    """Refresh a table of VMs every --interval seconds until q, Ctrl-C or -n."""
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    with connect(args) as m:
        keys = _Keys()
        try:
            n = 0
            while True:
                rows = _top_rows(m)
                frame = _summary(m) + "\n\n" + (table(rows, _TOP_HEAD) if rows else "no VMs\n")
                sys.stdout.write(clear + frame + ("" if clear else "\n"))
                sys.stdout.flush()
                n += 1
                if args.iterations and n >= args.iterations:
                    break
                if keys.wait_quit(args.interval):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            keys.restore()
    return EXIT_OK


def cmd_kill(args: argparse.Namespace) -> int:
    """Destroy the named VMs; exit 1 if any name is unknown."""
    status = EXIT_OK
    with connect(args) as m:
        for name in args.names:
            try:
                m.destroy_vm(name)
            except VMNotFound:
                sys.stderr.write("bioxen kill: no VM named %r (see `bioxen list`)\n" % name)
                status = EXIT_LUA
                continue
            print("killed %s" % name)
    return status
