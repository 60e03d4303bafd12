"""``bioxen run``: run a Lua file (or ``-e`` code, or stdin) on a fresh VM.

The VM is created with the limits given on the command line, runs each
chunk in order, and is destroyed at the end.  Output and return values go to
stdout; errors to stderr with an exit status a shell script can test
(common.EXIT_*).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import BioxenError, InvalidRequest
from ..policy import Policy
from .common import (EXIT_OK, EXIT_USAGE, CliError, connect, error_status,
                     parse_count, parse_duration, parse_size, print_values,
                     report_error)


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """The VM limits ``run`` and ``repl`` accept."""
    g = p.add_argument_group("limits of the VM")
    g.add_argument("--memory", type=parse_size, metavar="SIZE",
                   help="Lua heap limit, e.g. 16M, 512KiB (default: none)")
    g.add_argument("--timeout", type=parse_duration, metavar="DUR",
                   help="wall-clock limit per chunk, e.g. 2s, 500ms, 1.5")
    g.add_argument("--instructions", type=parse_count, metavar="N",
                   help="VM instructions per chunk, e.g. 1000000 or 10M")
    g.add_argument("--cpu", type=parse_duration, metavar="DUR",
                   help="CPU time of the VM's process, e.g. 5s")
    g.add_argument("--cpu-share", type=float, metavar="CPUS",
                   help="CPUs the VM may use, e.g. 0.5: throttled above it, not "
                        "killed (a cgroup cpu quota)")
    g.add_argument("--max-output", type=parse_size, metavar="SIZE",
                   help="bytes of print output kept per chunk, e.g. 1M")
    g.add_argument("--full-isolation", action="store_true",
                   help="also run the VM in its own namespaces under seccomp "
                        "(see docs/security.md)")
    g.add_argument("--networked", action="store_true",
                   help="load LuaSocket and net into the VM")
    g = p.add_argument_group("policy grants (everything else is refused)")
    g.add_argument("--allow-import", action="append", metavar="MODULE",
                   help="let require() load MODULE (from the manager's --module-dir)")
    g.add_argument("--allow-fs", action="append", metavar="GLOB",
                   help="let fs.read() read files matching GLOB, e.g. '/srv/*.csv'")
    g.add_argument("--allow-tcp", action="append", metavar="HOST:PORT",
                   help="let the VM connect to HOST:PORT (makes it networked)")


def vm_options(args: argparse.Namespace) -> dict[str, Any]:
    """create_vm keyword arguments from the limit options."""
    kw: dict[str, Any] = {}
    for opt, key in (("memory", "memory_limit"), ("timeout", "timeout"),
                     ("instructions", "instruction_limit"), ("cpu", "cpu_limit"),
                     ("max_output", "max_output")):
        v = getattr(args, opt, None)
        if v is not None:
            kw[key] = v
    if getattr(args, "full_isolation", False):
        kw["full_isolation"] = True
    if getattr(args, "cpu_share", None) is not None:
        kw["cpu_share"] = args.cpu_share
    grants = [(getattr(args, opt, None) or [], meth) for opt, meth in
              (("allow_import", "allow_import"), ("allow_fs", "allow_fs"),
               ("allow_tcp", "allow_tcp"))]
    if any(values for values, _ in grants):
        policy = Policy()
        try:
            for values, meth in grants:
                for v in values:
                    getattr(policy, meth)(v)
        except InvalidRequest as e:
            raise CliError(str(e), EXIT_USAGE) from None
        kw["policy"] = policy
    return kw


def _chunks(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(code, chunkname) pairs: every -e in order, then the script."""
    out = [(code, "=(command line)") for code in args.exec or []]
    if args.script == "-":
        out.append((sys.stdin.read(), "=stdin"))
    elif args.script is not None:
        try:
            with open(args.script, encoding="utf-8") as f:
                out.append((f.read(), "@" + os.path.basename(args.script)))
        except OSError as e:
            raise CliError("cannot read %s: %s" % (args.script, e.strerror), EXIT_USAGE) \
                from None
        except UnicodeDecodeError:
            raise CliError("%s is not UTF-8 Lua source (compiled chunks are refused)"
                           % args.script, EXIT_USAGE) from None
    if not out:
        raise CliError("nothing to run: give a script file, `-` for stdin, or -e CODE",
                       EXIT_USAGE)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """Run the chunks; the exit status says how it went."""
    chunks = _chunks(args)
    if args.args and args.script is None:
        raise CliError("arguments %s need a SCRIPT to go to" % " ".join(args.args), EXIT_USAGE)
    with connect(args, embedded_ok=True) as m:
        name = "run-%d-%d" % (os.getpid(), id(args) & 0xFFFF)
        try:
            vm = m.create_vm(name, networked=args.networked, echo=False,
                             **vm_options(args))
        except BioxenError as e:
            report_error(e)
            return error_status(e)
        try:
            if args.script is not None:
                vm.set_globals({"arg": dict(enumerate([args.script] + args.args))})
            for code, chunkname in chunks:
                try:
                    res = vm.execute_result(code, chunkname=chunkname)
                except BioxenError as e:
                    report_error(e)
                    return error_status(e)
                if res.output:
                    sys.stdout.write(res.output)
                print_values(res.values)
                if res.output_truncated:
                    sys.stderr.write("bioxen: output was cut at --max-output\n")
        finally:
            try:
                vm.close()
            except BioxenError:
                pass   # the manager is going away with us anyway
    return EXIT_OK
