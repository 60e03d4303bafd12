"""``bioxen repl``: an interactive Lua prompt on a VM, like ``lua -i``.

Each line is first tried as ``return <line>`` so expressions print their
value; if that does not compile it runs as a statement.  A chunk whose
syntax error is at ``<eof>`` is incomplete: the prompt becomes ``>>`` and
lines accumulate until it compiles (the rule of lua.c).  Errors print and
the prompt continues.  History lives in ~/.bioxen_history when the stdlib
readline module is there.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from ..errors import BioxenError, LuaSyntaxError, ManagerError, VMNotFound
from ..vm import VM
from .common import EXIT_OK, CliError, connect, print_values, report_error
from .run import vm_options

PROMPT, PROMPT2 = "> ", ">> "
HISTORY = "~/.bioxen_history"


def _incomplete(e: LuaSyntaxError) -> bool:
    return (e.lua_message or str(e)).rstrip().endswith("<eof>")


class Repl:
    """Reads chunks, runs them on ``vm``, prints what they print and return."""

    def __init__(self, vm: VM, readline: Any = None) -> None:
        self.vm = vm
        self.readline = readline

    def _remember(self, lines: list[str]) -> None:
        """Keep a multi-line chunk as one history entry, as lua.c does."""
        rl = self.readline
        if rl is None or len(lines) < 2:
            return
        n = rl.get_current_history_length()
        if n < len(lines):
            return
        for i in range(len(lines)):
            rl.remove_history_item(n - 1 - i)
        rl.add_history("\n".join(lines))

    def _report(self, e: BioxenError) -> None:
        """Print a chunk's error; re-raise it if the VM itself is gone (a
        script's failed mailbox send is VMNotFound too, with the VM alive)."""
        if isinstance(e, ManagerError):
            raise e
        if isinstance(e, VMNotFound):
            self.vm.function_exists("print")    # raises VMNotFound if gone
        report_error(e, "error")

    def run_chunk(self, code: str) -> bool:
        """Run one chunk; False if it is incomplete (more lines are needed)."""
        try:
            res = self.vm.execute_result("return " + code, chunkname="=stdin")
        except LuaSyntaxError:
            try:
                res = self.vm.execute_result(code, chunkname="=stdin")
            except LuaSyntaxError as e:
                if _incomplete(e):
                    return False
                report_error(e, "error")
                return True
            except BioxenError as e:
                self._report(e)
                return True
        except BioxenError as e:
            self._report(e)
            return True
        if res.output:
            sys.stdout.write(res.output)
        print_values(res.values)
        return True

    def loop(self) -> None:
        """Prompt until end of input (Ctrl-D)."""
        lines: list[str] = []
        while True:
            try:
                line = input(PROMPT2 if lines else PROMPT)
            except EOFError:
                sys.stdout.write("\n")
                return
            except KeyboardInterrupt:
                # Ctrl-C drops the chunk being typed, as in lua.c and Python.
                sys.stdout.write("\n")
                lines = []
                continue
            if not lines and not line.strip():
                continue
            lines.append(line)
            try:
                if self.run_chunk("\n".join(lines)):
                    self._remember(lines)
                    lines = []
            except KeyboardInterrupt:
                sys.stdout.write("\ninterrupted (the chunk runs on in the VM until it "
                                 "ends or hits its timeout)\n")
                lines = []
            except ManagerError as e:
                raise CliError("the manager went away: %s" % e) from None
            except VMNotFound:
                raise CliError("VM %r is gone (destroyed or crashed); leaving"
                               % self.vm.name) from None
            sys.stdout.flush()


def _history(readline: Any) -> Optional[str]:
    path = os.path.expanduser(HISTORY)
    try:
        readline.read_history_file(path)
    except OSError:
        pass   # no history yet
    readline.set_history_length(1000)
    return path


def cmd_repl(args: argparse.Namespace) -> int:
    """Attach to the named VM (kept on exit) or make a fresh one (destroyed)."""
    try:
        import readline
    except ImportError:
        readline = None   # plain input() then; no history
    hist = _history(readline) if readline is not None and sys.stdin.isatty() else None
    with connect(args, embedded_ok=args.vm is None) as m:
        if args.vm is not None:
            try:
                vm = m.get_vm(args.vm)
            except VMNotFound:
                raise CliError("no VM named %r on the manager at %s (see `bioxen list`)"
                               % (args.vm, m.address)) from None
            vm.echo = False
            banner = "attached to VM %r (it stays when you leave)" % args.vm
        else:
            vm = m.create_vm("repl-%d" % os.getpid(), networked=args.networked,
                             echo=False, **vm_options(args))
            banner = "fresh VM %r (destroyed when you leave)" % vm.name
        if sys.stdin.isatty():
            sys.stdout.write("bioxen repl: %s; Ctrl-D exits\n" % banner)
            sys.stdout.flush()
        try:
            Repl(vm, readline if hist is not None else None).loop()
        finally:
            if args.vm is None:
                try:
                    vm.close()
                except BioxenError:
                    pass
            if hist is not None:
                try:
                    readline.write_history_file(hist)
                except OSError:
                    pass
    return EXIT_OK
