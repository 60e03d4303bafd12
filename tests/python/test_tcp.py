"""Connecting to a running manager over TCP with a token."""

import os

import pytest

from conftest import free_port as _free_port, tcp_manager_process, wait_gone
from pylua_bioxen_vm import BioxenError, ManagerError, VMManager



@pytest.fixture
def tcp_manager(tmp_path):
    with tcp_manager_process(tmp_path) as port:
        yield "tcp://127.0.0.1:%d" % port


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
