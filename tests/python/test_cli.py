"""The ``bioxen`` command, run as a real subprocess (python3 -m pylua_bioxen_vm).

A ``bioxen serve`` runs in the background on a temp socket for the commands
that need a shared manager; ``repl`` is driven through a pseudo-terminal.
Every wait has a deadline; none depends on speed.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, alive, descendants, wait_gone
from pylua_bioxen_vm import VMManager

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
BIOXEN = [PY, "-m", "pylua_bioxen_vm"]
DEADLINE = 60.0     # generous: only catches hangs

# Exit statuses documented in docs/cli.md.
OK, LUA_ERROR, USAGE, LIMIT, NO_MANAGER = 0, 1, 2, 3, 4


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def env(home):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO / "python") + os.pathsep + e.get("PYTHONPATH", "")
    e["HOME"] = str(home)                 # the repl's history file goes here
    e["XDG_RUNTIME_DIR"] = str(home)      # and the default socket
    e["TERM"] = "dumb"
    for k in ("BIOXEN_ADDRESS", "BIOXEN_TOKEN"):
        e.pop(k, None)
    if not e.get("BIOXEN_VMNODE") and e.get("BIOXEN_MANAGER"):
        node = Path(e["BIOXEN_MANAGER"]).parents[1] / "vmnode" / "bioxen-vmnode"
        if node.exists():
            e["BIOXEN_VMNODE"] = str(node)
    return e


def bx(env, *args, input=None, extra_env=None):
    """Run ``bioxen ARGS``; return the CompletedProcess (text)."""
    e = dict(env, **(extra_env or {}))
    return subprocess.run(BIOXEN + list(args), input=input, env=e, capture_output=True,
                          text=True, timeout=DEADLINE)


def read_until(fd, pattern, deadline=DEADLINE):
    """Read ``fd`` until ``pattern`` (a regex) matches the text read; return it.

    Line ends are normalised ("\\r\\n" -> "\\n") as a terminal writes them."""
    buf = b""
    end = time.monotonic() + deadline
    while True:
        text = buf.decode("utf-8", "replace").replace("\r\n", "\n")
        if re.search(pattern, text):
            return text
        left = end - time.monotonic()
        assert left > 0, "timed out waiting for %r; got %r" % (pattern, text)
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:      # EIO: the other side closed
            chunk = b""
        assert chunk, "EOF before %r; got %r" % (pattern, text)
        buf += chunk


class Server:
    """A ``bioxen serve`` in the background on a temp socket."""

    def __init__(self, env, sock, *more):
        self.sock = str(sock)
        self.proc = subprocess.Popen(BIOXEN + ["serve", "--socket", self.sock] + list(more),
                                     env=env,
                                     stdout=subprocess.PIPE)
        text = read_until(self.proc.stdout.fileno(), r"listening on .*\(pid (\d+)\)")
        self.banner = text
        self.manager_pid = int(re.search(r"\(pid (\d+)\)", text).group(1))

    def stop(self):
        """SIGTERM it and check that it, its manager and every node are gone."""
        procs = [self.proc.pid, self.manager_pid] + descendants(self.manager_pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=DEADLINE)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        out = self.proc.stdout.read().decode()
        self.proc.stdout.close()
        assert code == 0, out
        assert "stopped" in out
        assert not wait_gone(procs), "processes left after serve stopped"
        assert not os.path.exists(self.sock), "the socket was not removed"


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    s = Server(env, tmp_path_factory.mktemp("srv") / "m.sock")
    yield s
    s.stop()


@pytest.fixture
def client(server):
    with VMManager(server.sock) as m:
        yield m


# -- help and usage ------------------------------------------------------------

SUBCOMMANDS = {
    "run": ["--memory", "--timeout", "--instructions", "--cpu", "--max-output",
            "--full-isolation", "--networked", "--address", "-e", "examples:"],
    "repl": ["VM", "--memory", "--address", "examples:", "Ctrl-D"],
    "serve": ["--socket", "--tcp", "--token-file", "--module-dir", "examples:", "--"],
    "list": ["--json", "--address", "examples:"],
    "stats": ["VM", "--json", "examples:"],
    "top": ["--interval", "-n", "examples:"],
    "kill": ["NAME", "examples:"],
}


def test_main_help_lists_every_subcommand(env):
    r = bx(env, "--help")
    assert r.returncode == 0
    for sub in SUBCOMMANDS:
        assert sub in r.stdout
    assert "exit status" in r.stdout


@pytest.mark.parametrize("sub", sorted(SUBCOMMANDS))
def test_subcommand_help_mentions_its_options(env, sub):
    r = bx(env, sub, "--help")
    assert r.returncode == 0, r.stderr
    for word in SUBCOMMANDS[sub]:
        assert word in r.stdout, "%s --help lacks %s" % (sub, word)


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["run", "--memory", "12Q", "x.lua"], ["run", "--timeout", "soon"],
    ["top", "--interval", "0"], ["kill"], ["list", "--nope"],
])
def test_bad_arguments_are_a_usage_error(env, args):
    r = bx(env, *args)
    assert r.returncode == USAGE
    assert "usage:" in r.stderr


def test_run_with_nothing_to_run_says_what_to_do(env):
    r = bx(env, "run")
    assert r.returncode == USAGE
    assert "-e CODE" in r.stderr


# -- run -----------------------------------------------------------------------

def test_run_file_prints_output_and_return_values(env, tmp_path):
    script = tmp_path / "hello.lua"
    script.write_text('print("hello from lua")\nreturn 6 * 7, "x", {1, 2, k = true}, nil\n')
    r = bx(env, "run", str(script))
    assert r.returncode == OK, r.stderr
    assert r.stdout == 'hello from lua\n42\t"x"\t{1, 2, k = true}\tnil\n'


def test_run_passes_arguments_in_arg(env, tmp_path):
    script = tmp_path / "args.lua"
    script.write_text("return #arg, arg[0], arg[1], arg[2]\n")
    r = bx(env, "run", str(script), "in.csv", "10", "--timeout", "5s")
    assert r.returncode == OK, r.stderr
    assert r.stdout == '2\t"%s"\t"in.csv"\t"10"\n' % script


def test_run_reads_stdin_and_e_code_in_order(env):
    r = bx(env, "run", "-e", "x = 20", "-", input="print(x + 1)\nreturn x * 2\n")
    assert r.returncode == OK, r.stderr
    assert r.stdout == "21\n40\n"


def test_run_lua_error_exits_1_with_traceback(env, tmp_path):
    script = tmp_path / "bad.lua"
    script.write_text('print("before")\nlocal function f() error("boom") end\nf()\n')
    r = bx(env, "run", str(script))
    assert r.returncode == LUA_ERROR
    assert r.stdout == "before\n"
    assert "bad.lua:2: boom" in r.stderr
    assert "stack traceback" in r.stderr


def test_run_syntax_error_exits_1(env):
    r = bx(env, "run", "-e", "x = = 1")
    assert r.returncode == LUA_ERROR
    assert "unexpected symbol" in r.stderr


def test_run_timeout_exits_with_the_limit_status(env):
    r = bx(env, "run", "-e", "while true do end", "--timeout", "300ms")
    assert r.returncode == LIMIT
    assert "timeout" in r.stderr and "--timeout" in r.stderr


def test_run_memory_and_instruction_limits(env):
    r = bx(env, "run", "--memory", "1M", "-e",
           "local t = {} for i = 1, 1e7 do t[i] = ('x'):rep(64) .. i end")
    assert r.returncode == LIMIT
    assert "--memory" in r.stderr
    r = bx(env, "run", "--instructions", "100k", "-e", "while true do end")
    assert r.returncode == LIMIT
    assert "--instructions" in r.stderr


def test_run_max_output_cuts_output(env):
    r = bx(env, "run", "--max-output", "1KiB", "-e", "for i = 1, 1000 do print(i) end")
    assert r.returncode == OK
    assert len(r.stdout) <= 1024 + 1
    assert "--max-output" in r.stderr


def test_run_require_needs_module_dir_and_a_grant(env, tmp_path):
    (tmp_path / "util.lua").write_text("return {answer = 42}\n")
    code = "return require('util').answer"
    r = bx(env, "run", "--module-dir", str(tmp_path), "--allow-import", "util", "-e", code)
    assert r.returncode == OK and r.stdout == "42\n", r.stderr
    r = bx(env, "run", "--module-dir", str(tmp_path), "-e", code)
    assert r.returncode == LUA_ERROR and "refused" in r.stderr
    r = bx(env, "run", "--allow-import", "not a name", "-e", "return 1")
    assert r.returncode == USAGE and "allow_import" in r.stderr


def test_run_missing_file_is_a_usage_error(env, tmp_path):
    r = bx(env, "run", str(tmp_path / "nope.lua"))
    assert r.returncode == USAGE
    assert "nope.lua" in r.stderr


def procs_mentioning(text):
    """Pids whose command line contains ``text``."""
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (d / "cmdline").read_bytes() and alive(int(d.name)):
                out.append(int(d.name))
        except OSError:
            pass
    return out


@pytest.mark.parametrize("code, status", [("return 1", OK), ("error('x')", LUA_ERROR),
                                          ("while true do end", LIMIT)])
def test_run_leaves_no_manager_or_node_behind(env, tmp_path, code, status):
    # The private manager's socket dir is made under TMPDIR: after the run
    # no process may still name it, and it must be gone.
    r = bx(env, "run", "--timeout", "0.3", "-e", code, extra_env={"TMPDIR": str(tmp_path)})
    assert r.returncode == status, r.stderr
    assert not wait_gone(procs_mentioning(str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


def test_run_on_the_shared_manager(env, server, client):
    before = client.metrics()["executions"]
    r = bx(env, "run", "-e", "return 1", extra_env={"BIOXEN_ADDRESS": server.sock})
    assert r.returncode == OK and r.stdout == "1\n", r.stderr
    r = bx(env, "run", "--address", server.sock, "-e", "return 2")
    assert r.returncode == OK and r.stdout == "2\n", r.stderr
    assert client.metrics()["executions"] >= before + 2
    assert not [v for v in client.list_vms() if v["name"].startswith("run-")]


# -- no manager ------------------------------------------------------------------

def test_commands_without_a_manager_say_how_to_start_one(env, tmp_path):
    for args in (["list"], ["stats"], ["kill", "x"], ["top", "-n", "1"],
                 ["list", "--address", str(tmp_path / "none.sock")]):
        r = bx(env, *args)
        assert r.returncode == NO_MANAGER, args
        assert "bioxen serve" in r.stderr and "--address" in r.stderr, r.stderr


def test_serve_refuses_a_socket_in_use(env, server):
    r = bx(env, "serve", "--socket", server.sock)
    assert r.returncode == NO_MANAGER
    assert "already listening" in r.stderr


def test_serve_on_the_default_socket_is_found_by_default(env, home):
    s = Server(env, Path(home) / "bioxen" / "manager.sock")
    try:
        r = bx(env, "list")
        assert r.returncode == OK, r.stderr
        assert "no VMs" in r.stdout
    finally:
        s.stop()


def test_serve_passes_flags_after_double_dash_to_the_manager(env, tmp_path):
    r = bx(env, "serve", "--socket", str(tmp_path / "m.sock"), "--", "--no-such-flag")
    assert r.returncode == USAGE
    assert "usage: bioxen-manager" in r.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_tcp_with_a_token(env, tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    (tmp_path / "bad").write_text("wrong\n")
    port = _free_port()
    addr = "127.0.0.1:%d" % port
    s = Server(env, tmp_path / "m.sock", "--tcp", addr, "--token-file", str(tok))
    try:
        assert "TCP: %s" % addr in s.banner
        r = bx(env, "run", "-a", addr, "--token-file", str(tok), "-e", "return 'via tcp'")
        assert r.returncode == OK and r.stdout == '"via tcp"\n', r.stderr
        r = bx(env, "list", "-a", addr, extra_env={"BIOXEN_TOKEN": "s3cret"})
        assert r.returncode == OK, r.stderr
        r = bx(env, "list", "-a", addr)
        assert r.returncode == NO_MANAGER and "needs a token" in r.stderr
        r = bx(env, "list", "-a", addr, "--token-file", str(tmp_path / "bad"))
        assert r.returncode == NO_MANAGER and "refused the token" in r.stderr
    finally:
        s.stop()


def test_serve_tcp_without_token_file_is_a_usage_error(env, tmp_path):
    r = bx(env, "serve", "--socket", str(tmp_path / "m.sock"), "--tcp", "127.0.0.1:1")
    assert r.returncode == USAGE
    assert "--token-file" in r.stderr


# -- list, stats, kill, top --------------------------------------------------------

def test_list_shows_vms_as_table_and_json(env, server, client):
    client.create_vm("lst-a", persistent=True)
    client.create_vm("lst-b")
    try:
        r = bx(env, "list", "-a", server.sock)
        assert r.returncode == OK, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["NAME", "PID", "STATE", "PENDING", "PERSISTENT",
                                    "NETWORKED"]
        row = next(line.split() for line in lines if line.startswith("lst-a"))
        assert row[4] == "yes" and row[5] == "no"
        r = bx(env, "list", "--json", "-a", server.sock)
        vms = {v["name"]: v for v in json.loads(r.stdout)}
        assert vms["lst-a"]["persistent"] is True and vms["lst-b"]["persistent"] is False
        assert isinstance(vms["lst-b"]["pid"], int)
    finally:
        client.get_vm("lst-a").close()
        client.get_vm("lst-b").close()


def test_stats_of_manager_and_of_one_vm(env, server, client):
    vm = client.create_vm("st-a")
    vm.execute("return 1")
    r = bx(env, "stats", "--json", "-a", server.sock)
    assert r.returncode == OK, r.stderr
    assert json.loads(r.stdout)["executions"] >= 1
    r = bx(env, "stats", "-a", server.sock)
    assert r.returncode == OK and "executions" in r.stdout
    r = bx(env, "stats", "st-a", "--json", "-a", server.sock)
    assert r.returncode == OK, r.stderr
    assert json.loads(r.stdout)["pid"] == vm.pid
    r = bx(env, "stats", "st-a", "-a", server.sock)
    assert r.returncode == OK and "mem_bytes" in r.stdout
    r = bx(env, "stats", "no-such-vm", "-a", server.sock)
    assert r.returncode == LUA_ERROR
    assert "no VM named 'no-such-vm'" in r.stderr and "bioxen list" in r.stderr
    vm.close()


def test_kill_destroys_named_vms_and_reports_unknown_ones(env, server, client):
    client.create_vm("k-a", persistent=True)
    client.create_vm("k-b", persistent=True)
    r = bx(env, "kill", "k-a", "k-b", "-a", server.sock)
    assert r.returncode == OK, r.stderr
    names = {v["name"] for v in client.list_vms()}
    assert not names & {"k-a", "k-b"}
    client.create_vm("k-c", persistent=True)
    r = bx(env, "kill", "nobody", "k-c", "-a", server.sock)
    assert r.returncode == LUA_ERROR
    assert "no VM named 'nobody'" in r.stderr
    assert "k-c" not in {v["name"] for v in client.list_vms()}, "the known name is killed"


def test_top_prints_n_tables_then_exits(env, server, client):
    vm = client.create_vm("top-a")
    vm.execute("x = {} for i = 1, 1000 do x[i] = i end")
    r = bx(env, "top", "-n", "2", "--interval", "0.1", "-a", server.sock)
    assert r.returncode == OK, r.stderr
    assert r.stdout.count("bioxen top") == 2
    assert r.stdout.count("NAME") == 2
    row = next(line.split() for line in r.stdout.splitlines() if line.startswith("top-a"))
    assert row[1] == str(vm.pid)
    vm.close()


def test_top_on_a_terminal_quits_on_q(env, server):
    p = Pty(env, "top", "--interval", "0.2", "-a", server.sock)
    try:
        p.expect(r"\x1b\[H\x1b\[2J.*bioxen top")       # clears the screen each time
        os.write(p.fd, b"q")
        assert p.wait() == 0
    finally:
        if p.proc.poll() is None:
            p.kill()


# -- repl through a pseudo-terminal ---------------------------------------------------

_ON_TTY = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in (0, 1, 2):
    os.dup2(fd, i)
os.close(fd)
os.execv(sys.argv[2], sys.argv[2:])
"""


class Pty:
    """``bioxen ARGS`` on a pseudo-terminal we type into."""

    def __init__(self, env, *args):
        # Not os.forkpty: forking a threaded pytest can deadlock the child
        # before its exec.  subprocess forks safely; the child, a new session
        # leader, opens the terminal by name so it becomes its controlling
        # terminal (Ctrl-C must reach it as SIGINT).
        # We keep our slave fd open until the end: with none open, reads of
        # the master fail with EIO (before the child opens it, after it exits).
        master, self.slave = os.openpty()
        self.proc = subprocess.Popen(
            [PY, "-c", _ON_TTY, os.ttyname(self.slave)] + BIOXEN + list(args),
            env=env, start_new_session=True)
        self.pid, self.fd = self.proc.pid, master
        self.seen = ""

    def expect(self, pattern):
        """Wait for ``pattern`` in the output after what earlier calls matched."""
        text = read_until(self.fd, pattern)
        self.seen += text
        return text

    def interrupt(self, pattern):
        """Ctrl-C, then wait for ``pattern``.

        Python's readline has a window between printing the prompt and
        blocking in select() in which a SIGINT only sets a flag; a second
        Ctrl-C then delivers it.  A user never notices; a test typing at
        machine speed can, so it presses again after a few seconds."""
        for _ in range(5):
            os.write(self.fd, b"\x03")
            try:
                return read_until(self.fd, pattern, 3.0)
            except AssertionError:
                continue
        raise AssertionError("Ctrl-C never brought back %r" % pattern)

    def line(self, text):
        os.write(self.fd, text.encode() + b"\r")

    def wait(self):
        """Wait (with a deadline) for the exit; return the status."""
        end = time.monotonic() + DEADLINE
        try:
            while True:
                code = self.proc.poll()
                if code is not None:
                    return code
                assert time.monotonic() < end, "bioxen did not exit"
                # Drain the terminal so the child never blocks writing; the
                # select timeout only bounds how late we see the exit.
                r, _, _ = select.select([self.fd], [], [], 0.2)
                if r:
                    try:
                        os.read(self.fd, 4096)
                    except OSError:
                        pass
        finally:
            os.close(self.fd)
            os.close(self.slave)

    def close(self):
        """Ctrl-D; return the exit status."""
        os.write(self.fd, b"\x04")
        return self.wait()

    def kill(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def repl(env):
    made = []

    def start(*args, env=env):
        p = Pty(env, "repl", *args)
        made.append(p)
        return p
    yield start
    for p in made:
        if p.proc.poll() is None:
            p.kill()


def test_repl_expressions_functions_errors_and_ctrl_d(repl, home):
    p = repl()
    p.expect(r"fresh VM .*\n> ")
    p.line("40 + 2")
    p.expect(r"\n42\n> ")
    p.line("function sq(x)")
    p.expect(r"\n>> ")                              # incomplete: continuation prompt
    p.line("  return x * x")
    p.expect(r"\n>> ")
    p.line("end")
    p.expect(r"end\n> ")
    p.line("sq(12)")
    p.expect(r"\n144\n> ")
    p.line('error("oops")')
    p.expect(r"oops[\s\S]*\n> ")                     # the error, then a new prompt
    p.line("y = sq(3)")
    p.expect(r"y = sq\(3\)\n> ")
    p.line("print('y is', y); return 'done'")
    p.expect(r'y is\t9\n"done"\n> ')
    assert p.close() == 0
    hist = (Path(home) / ".bioxen_history").read_text()
    assert "sq(12)" in hist
    assert "return x * x" in hist


def test_repl_ctrl_c_drops_the_current_input(env, repl, tmp_path):
    p = repl(env=dict(env, TMPDIR=str(tmp_path)))
    p.expect(r"\n> ")
    p.line("function half(")
    p.expect(r"\n>> ")
    p.interrupt(r"\n> ")                             # Ctrl-C: back to a fresh prompt
    p.line("7 * 6")
    p.expect(r"\n42\n> ")
    assert p.close() == 0
    assert not wait_gone(procs_mentioning(str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


def test_repl_attaches_to_a_named_persistent_vm(env, repl, server, client):
    vm = client.create_vm("shared", persistent=True)
    try:
        vm.execute("counter = 41")
        p = repl("shared", "--address", server.sock)
        p.expect(r"attached to VM 'shared'.*\n> ")
        p.line("counter + 1")
        p.expect(r"\n42\n> ")
        p.line("counter = counter + 1")
        p.expect(r"counter \+ 1\n> ")
        assert p.close() == 0
        assert vm.get_global("counter") == 42, "the repl's change persists"
        assert "shared" in {v["name"] for v in client.list_vms()}, "the VM is not destroyed"
    finally:
        vm.close()


def test_repl_leaves_when_its_vm_is_killed(env, repl, server, client):
    vm = client.create_vm("doomed", persistent=True)
    p = repl("doomed", "--address", server.sock)
    p.expect(r"attached to VM 'doomed'.*\n> ")
    vm.close()
    p.line("1")
    p.expect(r"'doomed' is gone")
    assert p.wait() == 1


def test_repl_fresh_vm_on_a_shared_manager_is_destroyed_on_exit(repl, server, client):
    p = repl("--address", server.sock)
    m = p.expect(r"fresh VM '([^']+)'.*\n> ")
    name = re.search(r"fresh VM '([^']+)'", m).group(1)
    assert name in {v["name"] for v in client.list_vms()}
    assert p.close() == 0
    assert name not in {v["name"] for v in client.list_vms()}


def test_repl_unknown_vm_says_so(env, server):
    r = bx(env, "repl", "ghost", "--address", server.sock, input="")
    assert r.returncode == LUA_ERROR
    assert "no VM named 'ghost'" in r.stderr
