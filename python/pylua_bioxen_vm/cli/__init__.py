"""The ``bioxen`` command: ``python3 -m pylua_bioxen_vm`` (see docs/cli.md).

This module builds the argparse tree and maps failures to exit statuses;
each subcommand lives in its own module of this package (run, repl, serve,
info) and helpers shared by them in common.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional

from ..errors import BioxenError
from .common import EXIT_MANAGER, CliError, default_socket, positive_float
from .info import cmd_kill, cmd_list, cmd_stats, cmd_top
from .repl import cmd_repl
from .run import add_limit_options, cmd_run
from .serve import cmd_serve

_Fmt = argparse.RawDescriptionHelpFormatter

MAIN_EPILOG = """\
examples:
  bioxen run hello.lua --memory 16M --timeout 2s
  bioxen run -e 'return 6 * 7'
  bioxen serve &                  # a shared manager on the default socket
  bioxen repl worker              # attach to the VM "worker" on it
  bioxen list; bioxen top; bioxen kill worker

Commands that talk to a running manager find it with --address, else
$BIOXEN_ADDRESS, else the default socket (%s).
exit status: 0 ok, 1 Lua error or failed command, 2 usage error,
3 a limit (timeout, memory, instructions, CPU) stopped the script,
4 no manager / the VM crashed / the manager failed."""

EPILOGS = {
    "run": """\
examples:
  bioxen run script.lua input.csv 10     # arg[1], arg[2] in Lua
  bioxen run script.lua --memory 16M --timeout 2s --instructions 10M
  echo 'print(1 + 1)' | bioxen run -
  bioxen run -e 'x = 21' -e 'return x * 2'
  bioxen run job.lua --address /run/bioxen.sock   # on a shared manager
  bioxen run main.lua --module-dir lib --allow-import util

Without --address (or $BIOXEN_ADDRESS) a private manager is started for the
run and stopped after it.  Print output goes to stdout, then the chunk's
return values (as Lua would write them).  Exit status: 0 ok, 1 Lua error
(message and traceback on stderr), 3 a limit stopped it, 4 manager failure.
Sizes take K/M/G (powers of 1024), KB/MB (of 1000), KiB/MiB; durations
take s, ms, m, or plain seconds.""",
    "repl": """\
examples:
  bioxen repl                  # a fresh VM, destroyed when you leave
  bioxen repl worker           # attach to VM "worker" of the running manager
  bioxen repl --memory 64M --timeout 5s

Expressions print their value; an unfinished chunk (function ... without
its end) continues on a '>>' prompt.  Ctrl-C drops the current input,
Ctrl-D leaves.  History is kept in ~/.bioxen_history.""",
    "serve": """\
examples:
  bioxen serve                              # on the default socket
  bioxen serve --socket /tmp/b.sock --module-dir ./lua_modules
  bioxen serve --tcp 127.0.0.1:7000 --token-file ~/.bioxen_token
  bioxen serve --cluster nats://10.0.0.1:4222 --host-name m1   # join a cluster
  bioxen serve -- --metrics-port 9100       # pass flags to bioxen-manager

Prints the address to connect to, then runs until Ctrl-C or SIGTERM, which
destroy every VM and stop the manager.""",
    "list": """\
examples:
  bioxen list
  bioxen list --json | jq '.[].name'""",
    "stats": """\
examples:
  bioxen stats                  # manager totals: executions, errors, latency
  bioxen stats worker           # one VM: memory, CPU, executions...
  bioxen stats --json""",
    "top": """\
examples:
  bioxen top                    # refresh every 2 s; q or Ctrl-C quits
  bioxen top --interval 0.5
  bioxen top -n 1               # one table, then exit (for scripts)""",
    "kill": """\
examples:
  bioxen kill worker
  bioxen kill a b c

Exits 1 if a name is unknown (the other names are still killed).""",
}


def _add_address(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("manager")
    g.add_argument("--address", "-a", metavar="ADDR",
                   help="manager to use: a Unix socket path, or HOST:PORT for TCP "
                        "(default: $BIOXEN_ADDRESS, else %s)" % default_socket())
    g.add_argument("--token", metavar="TOKEN",
                   help="token for a TCP manager (or set $BIOXEN_TOKEN)")
    g.add_argument("--token-file", metavar="FILE", help="read the TCP token from FILE")


def _sub(subs: argparse._SubParsersAction, name: str, summary: str,
         fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p = subs.add_parser(name, help=summary, description=summary, epilog=EPILOGS[name],
                        formatter_class=_Fmt)
    p.set_defaults(func=fn)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The whole command line of ``bioxen``."""
    top = argparse.ArgumentParser(
        prog="bioxen", formatter_class=_Fmt,
        description="Run Lua code in sandboxed VMs and manage a bioxen manager.",
        epilog=MAIN_EPILOG % default_socket())
    subs = top.add_subparsers(dest="command", metavar="COMMAND")
    subs.required = True

    p = _sub(subs, "run", "Run a Lua script on a fresh VM and print its output and "
             "return values.", cmd_run)
    p.add_argument("script", nargs="?", metavar="SCRIPT",
                   help="Lua file to run, or - to read stdin")
    p.add_argument("args", nargs="*", metavar="ARG",
                   help="arguments for the script, in the global table arg "
                        "(arg[0] is SCRIPT), as the lua command does")
    p.add_argument("-e", dest="exec", action="append", metavar="CODE",
                   help="run CODE (before SCRIPT; may repeat)")
    p.add_argument("--module-dir", metavar="DIR",
                   help="serve require() from DIR (private manager only)")
    add_limit_options(p)
    _add_address(p)

    p = _sub(subs, "repl", "Interactive Lua prompt on a fresh VM or on a named VM of "
             "the running manager.", cmd_repl)
    p.add_argument("vm", nargs="?", metavar="VM",
                   help="attach to this VM of the running manager (kept on exit)")
    add_limit_options(p)
    _add_address(p)

    p = _sub(subs, "serve", "Run a bioxen manager in the foreground for other "
             "clients.", cmd_serve)
    p.add_argument("--socket", metavar="PATH",
                   help="Unix socket to listen on (default: %s)" % default_socket())
    p.add_argument("--tcp", metavar="HOST:PORT", help="also listen on TCP (needs "
                   "--token-file)")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the token TCP clients must present")
    p.add_argument("--module-dir", metavar="DIR", help="serve require() from DIR")
    p.add_argument("--vmnode", metavar="PATH", help="the bioxen-vmnode executable")
    p.add_argument("--grace", type=positive_float, metavar="SECONDS",
                   help="how long a killed node gets to exit")
    p.add_argument("--max-frame", type=int, metavar="BYTES",
                   help="largest request or reply")
    p.add_argument("--no-cgroups", action="store_true",
                   help="do not put VMs in cgroups")
    p.add_argument("--admin", action="append", metavar="IDENTITY",
                   help="an admin besides the manager's own uid: uid:N or token:NAME "
                   "(repeatable)")
    p.add_argument("--socket-mode", metavar="OCTAL",
                   help="permissions of the Unix socket (default 0600)")
    p.add_argument("--socket-group", metavar="GROUP",
                   help="group of the Unix socket (mode 0660 unless --socket-mode)")
    _add_cluster_flags(p)
    p.set_defaults(manager_args=[])

    p = _sub(subs, "list", "List the VMs of the running manager.", cmd_list)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_address(p)

    p = _sub(subs, "stats", "Show the manager's metrics, or one VM's stats.", cmd_stats)
    p.add_argument("vm", nargs="?", metavar="VM", help="show this VM's stats")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_address(p)

    p = _sub(subs, "top", "Live table of VMs: memory, CPU, executions.", cmd_top)
    p.add_argument("--interval", "-i", type=positive_float, default=2.0, metavar="SECONDS",
                   help="refresh period (default 2)")
    p.add_argument("-n", dest="iterations", type=int, default=0, metavar="N",
                   help="print N tables, then exit (default: until q or Ctrl-C)")
    _add_address(p)

    p = _sub(subs, "kill", "Destroy VMs of the running manager by name.", cmd_kill)
    p.add_argument("names", nargs="+", metavar="NAME", help="VM to destroy")
    _add_address(p)
    return top


def _add_cluster_flags(p: argparse.ArgumentParser) -> None:
    """bioxen-manager's cluster flags (docs/cluster.md), passed through."""
    for flag, meta, what in (
            ("--cluster", "URLS", "join a cluster over NATS (nats://HOST:PORT[,...])"),
            ("--host-name", "NAME", "this manager's name in the cluster"),
            ("--cluster-name", "PREFIX", "subject prefix and bucket name (default bioxen)"),
            ("--cluster-creds", "FILE", "NATS credentials (.creds)"),
            ("--cluster-token-file", "FILE", "a NATS token, read from FILE"),
            ("--cluster-nkey", "FILE", "a NATS user nkey (seed and public key)"),
            ("--cluster-ca", "FILE", "TLS to NATS, trusting this CA"),
            ("--cluster-cert", "FILE", "client certificate for mutual TLS"),
            ("--cluster-key", "FILE", "its private key")):
        p.add_argument(flag, metavar=meta, help=what)


def _split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """``serve ... -- FLAGS``: FLAGS go to bioxen-manager untouched."""
    if argv[:1] == ["serve"] and "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, passthrough = _split_passthrough(argv)
    parser = build_parser()
    args = parser.parse_args(ours)
    if passthrough:
        args.manager_args = passthrough
    try:
        return int(args.func(args))
    except CliError as e:
        sys.stderr.write("bioxen %s: %s\n" % (args.command, e))
        return e.status
    except BioxenError as e:
        sys.stderr.write("bioxen %s: %s\n" % (args.command, e))
        return EXIT_MANAGER
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        # `bioxen list | head`: the reader left; not an error.  Point stdout at
        # /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
