"""bioxen-manager's own command line: --help, and the TCP address it really
bound (--tcp HOST:0) in hello's reply and in ``bioxen serve``'s banner."""

import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, wait_gone
from pylua_bioxen_vm import VMManager
from pylua_bioxen_vm.embedded import find_manager

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
DEADLINE = 60.0     # only catches hangs


def manager(*args, timeout=DEADLINE):
    return subprocess.run([find_manager()] + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_help_prints_usage_and_exits_0():
    for flag in ("--help", "-h"):
        r = manager(flag)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("usage: bioxen-manager --socket PATH"), r.stdout
        assert r.stderr == ""
        assert "--help" in r.stdout and "--metrics-host HOST" in r.stdout
    # a bad command line is still an error, on stderr
    r = manager("--no-such-flag")
    assert r.returncode == 2 and "usage: bioxen-manager" in r.stderr and r.stdout == ""


def test_every_flag_is_in_help_and_in_the_manual():
    """Each long option the binary accepts is listed by --help and described
    in docs/cli.md's bioxen-manager section."""
    help_text = manager("--help").stdout
    flags = set(re.findall(r"^\s+(?:-h, )?(--[a-z][a-z-]*)", help_text, re.M))
    assert {"--socket", "--tcp", "--token-file", "--vmnode", "--exit-with-stdin",
            "--max-frame", "--grace", "--module-dir", "--no-cgroups", "--spares",
            "--metrics-port", "--metrics-host", "--help"} <= flags
    no_arg = ("--help", "--exit-with-stdin", "--no-cgroups")
    for f in flags:     # each one listed is really accepted (not "unrecognized");
        # the stray argument makes it a usage error, so nothing starts
        r = manager(*([f] if f in no_arg else [f, "1"]), "stray", timeout=10)
        assert "unrecognized option" not in r.stderr, (f, r.stderr)
        assert r.returncode == (0 if f == "--help" else 2), (f, r.stderr)
    # and --help lists every entry of the option table (a new flag must be
    # added to both)
    table = set(re.findall(r'\{"([a-z][a-z-]*)", [01], 0, \'',
                           (REPO / "manager" / "main.c").read_text()))
    assert len(table) >= 13, "the option table moved: point this test at it"
    assert {"--" + t for t in table} == flags
    doc = (REPO / "docs" / "cli.md").read_text()
    section = doc[doc.index("## `bioxen-manager`"):]
    for f in flags:
        assert "\n`%s" % f in section or "`-h`, `%s`" % f in section, "%s is not documented" % f


def start_manager(tmp_path, *more):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    sock = str(tmp_path / "m.sock")
    proc = subprocess.Popen([find_manager(), "--socket", sock, "--exit-with-stdin",
                             "--token-file", str(tok)] + list(more),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline()   # bounded by the autouse deadline
    assert line == ("READY %s\n" % sock).encode(), line
    return proc, sock


def stop_manager(proc):
    proc.stdin.close()
    proc.stdout.close()
    if wait_gone([proc.pid], 10):
        proc.kill()
    proc.wait()


def test_hello_reports_the_bound_tcp_port(tmp_path):
    proc, sock = start_manager(tmp_path, "--tcp", "127.0.0.1:0")
    try:
        with VMManager(sock) as m:
            addr = m.server_info["tcp"]
        host, _, port = addr.rpartition(":")
        assert host == "127.0.0.1" and port.isdigit() and 0 < int(port) < 65536
        with VMManager("tcp://" + addr, token="s3cret") as m:
            assert m.server_info["tcp"] == addr
            assert m.create_vm("t").execute("return 'via ' .. 'tcp'") == "via tcp"
    finally:
        stop_manager(proc)
    proc, sock = start_manager(tmp_path)    # no --tcp: no such field
    try:
        with VMManager(sock) as m:
            assert "tcp" not in m.server_info
    finally:
        stop_manager(proc)


def read_until(fd, pattern):
    buf, end = b"", time.monotonic() + DEADLINE
    while not re.search(pattern, buf.decode("utf-8", "replace")):
        left = end - time.monotonic()
        assert left > 0, "timed out waiting for %r; got %r" % (pattern, buf)
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            assert chunk, "EOF before %r; got %r" % (pattern, buf)
            buf += chunk
    return buf.decode()


def test_serve_tcp_port_0_prints_the_real_address(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    env.pop("BIOXEN_ADDRESS", None)
    proc = subprocess.Popen([PY, "-m", "pylua_bioxen_vm", "serve", "--socket",
                             str(tmp_path / "m.sock"), "--tcp", "127.0.0.1:0",
                             "--token-file", str(tok)], env=env, stdout=subprocess.PIPE)
    try:
        text = read_until(proc.stdout.fileno(), r"TCP: \S+ .*\n")
        addr = re.search(r"TCP: (\S+) \(pass --address (\S+) ", text)
        assert addr and addr.group(1) == addr.group(2), text
        host, _, port = addr.group(1).rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0, text
        r = subprocess.run([PY, "-m", "pylua_bioxen_vm", "run", "-a", addr.group(1),
                            "--token-file", str(tok), "-e", "return 6 * 7"],
                           env=env, capture_output=True, text=True, timeout=DEADLINE)
        assert r.returncode == 0 and r.stdout == "42\n", r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=DEADLINE) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
