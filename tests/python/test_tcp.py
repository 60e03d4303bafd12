"""Connecting to a running manager over TCP with a token."""

import os
import socket
import subprocess

import pytest

from conftest import wait_gone
from pylua_bioxen_vm import BioxenError, ManagerError, VMManager
from pylua_bioxen_vm.embedded import find_manager


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tcp_manager(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    port = _free_port()
    proc = subprocess.Popen([find_manager(), "--socket", str(tmp_path / "m.sock"),
                             "--tcp", "127.0.0.1:%d" % port, "--token-file", str(tok),
                             "--exit-with-stdin"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = proc.stdout.readline()   # bounded by the autouse deadline
        assert line.startswith(b"READY"), line
        yield "tcp://127.0.0.1:%d" % port
    finally:
        proc.stdin.close()
        proc.stdout.close()
        if wait_gone([proc.pid], 10):
            proc.kill()
        proc.wait()


def test_tcp_with_token(tcp_manager):
    with VMManager(tcp_manager, token="s3cret") as m:
        vm = m.create_vm("over-tcp")
        assert vm.execute("return 'hello over tcp'") == "hello over tcp"
        assert m.ping()


def test_tcp_without_or_with_wrong_token_is_refused(tcp_manager):
    with pytest.raises(ManagerError):
        VMManager(tcp_manager)
    with pytest.raises(BioxenError):
        VMManager(tcp_manager, token="wrong")


def test_bad_tcp_address():
    with pytest.raises(ValueError):
        VMManager("tcp://nohostport")
    with pytest.raises(ManagerError, match="cannot connect"):
        VMManager("tcp://127.0.0.1:%d" % _free_port(), token="x", start_timeout=5)
    with pytest.raises(ManagerError, match="cannot connect"):
        VMManager("unix:" + os.path.join("/nonexistent", "m.sock"))
