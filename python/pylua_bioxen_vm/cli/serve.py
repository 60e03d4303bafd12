"""``bioxen serve``: run a shared bioxen-manager in the foreground.

The manager is our child with ``--exit-with-stdin`` on a pipe we hold, so
it cannot outlive this command even if we are SIGKILLed.  SIGINT/SIGTERM
are forwarded to it; it destroys every VM and exits, and so do we.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from typing import Any

from ..embedded import find_manager, first_line
from ..errors import ManagerError
from .common import EXIT_MANAGER, EXIT_OK, EXIT_USAGE, CliError, default_socket

READY_TIMEOUT = 30.0


def _socket_alive(path: str) -> bool:
    """True if something accepts connections on the Unix socket ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _cluster_flags(args: argparse.Namespace) -> tuple:
    """--cluster and its companions, as bioxen-manager spells them."""
    return tuple(("--" + dest.replace("_", "-"), getattr(args, dest, None))
                 for dest in ("cluster", "host_name", "cluster_name", "cluster_creds",
                              "cluster_token_file", "cluster_nkey", "cluster_ca", "cluster_cert",
                              "cluster_key"))


def _manager_argv(args: argparse.Namespace, binary: str, sock: str) -> list[str]:
    argv = [binary, "--socket", sock, "--exit-with-stdin"]
    for opt, val in (("--tcp", args.tcp), ("--token-file", args.token_file),
                     ("--module-dir", args.module_dir), ("--vmnode", args.vmnode),
                     ("--grace", args.grace), ("--max-frame", args.max_frame)):
        if val is not None:
            argv += [opt, str(val)]
    for opt, val in (("--socket-mode", getattr(args, "socket_mode", None)),
                     ("--socket-group", getattr(args, "socket_group", None))) + _cluster_flags(args):
        if val is not None:
            argv += [opt, val]
    for ident in getattr(args, "admin", None) or []:
        argv += ["--admin", ident]
    if args.no_cgroups:
        argv.append("--no-cgroups")
    return argv + list(args.manager_args or [])


def _wait_ready(proc: subprocess.Popen) -> str:
    """Read the manager's ``READY <path>`` line; raise CliError if it dies first."""
    try:
        line = first_line(proc, READY_TIMEOUT)
    except EOFError:
        code = proc.wait()
        raise CliError("the manager exited with status %s before it was ready "
                       "(its message is above)" % code,
                       EXIT_USAGE if code == 2 else EXIT_MANAGER) from None
    if line is None:
        raise CliError("the manager did not become ready within %d s"
                       % READY_TIMEOUT, EXIT_MANAGER)
    if not line.startswith("READY "):
        raise CliError("the manager printed %r instead of READY" % line, EXIT_MANAGER)
    return line[len("READY "):]


def _tcp_bound(path: str) -> Any:
    """The TCP address the manager really bound (``--tcp HOST:0`` picks a
    port), from its ``hello`` reply; None if it cannot be asked."""
    from ..manager import VMManager
    try:
        with VMManager(path, start_timeout=READY_TIMEOUT) as m:
            return m.server_info.get("tcp")
    except ManagerError:
        return None


def _announce(args: argparse.Namespace, path: str, pid: int) -> None:
    lines = ["bioxen: manager listening on %s (pid %d)" % (path, pid)]
    if path != default_socket():
        lines.append("  connect with --address %s or export BIOXEN_ADDRESS=%s" % (path, path))
    else:
        lines.append("  other bioxen commands find it there by default")
    if args.tcp:
        tcp = _tcp_bound(path) or args.tcp
        lines.append("  TCP: %s (pass --address %s --token-file %s)"
                     % (tcp, tcp, args.token_file))
    lines.append("  stop with Ctrl-C")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the manager, print where it listens, wait until it exits."""
    if args.tcp and not args.token_file:
        raise CliError("--tcp needs --token-file FILE (the token clients must present)",
                       EXIT_USAGE)
    sock = os.path.abspath(args.socket or default_socket())
    os.makedirs(os.path.dirname(sock), mode=0o700, exist_ok=True)
    if os.path.exists(sock) and _socket_alive(sock):
        raise CliError("a manager is already listening on %s: use it (bioxen list), stop "
                       "it, or pass --socket PATH for another one" % sock, EXIT_MANAGER)
    try:
        binary = find_manager(None)
    except ManagerError as e:
        raise CliError(str(e), EXIT_MANAGER) from None
    proc = subprocess.Popen(_manager_argv(args, binary, sock), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, close_fds=True)
    stopping = []

    def forward(signum: int, frame: Any) -> None:
        # Ctrl-C reaches the manager too (same process group); a SIGTERM sent
        # to us alone must be passed on.  Either way we wait for its exit.
        stopping.append(signum)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            path = _wait_ready(proc)
        finally:
            if proc.returncode is None and stopping:
                proc.send_signal(signal.SIGTERM)
        proc.stdout.close()   # the manager does not write there after READY
        _announce(args, path, proc.pid)
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin:
            proc.stdin.close()
        for s, h in old.items():
            signal.signal(s, h)
    if stopping:
        sys.stdout.write("bioxen: manager stopped\n")
        return EXIT_OK
    return EXIT_OK if code == 0 else EXIT_MANAGER
