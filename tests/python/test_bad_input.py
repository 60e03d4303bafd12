"""Bad input on the wire gets a clear error and the manager keeps serving."""

import json
import socket

import pytest


def _raw(manager):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(manager.address[len("unix:"):])
    return s, s.makefile("rb")


def _ask(s, f, line):
    s.sendall(line + b"\n")
    reply = f.readline()
    assert reply, "manager closed the connection"
    return json.loads(reply)


@pytest.mark.parametrize("line, code", [
    (b"this is not json", "BAD_REQUEST"),
    (b"[1, 2]", "BAD_REQUEST"),
    (b'{"id": 1, "op": "frobnicate"}', "UNKNOWN_OP"),
    (b'{"id": 2, "op": "create", "name": "bad name"}', "BAD_REQUEST"),
    (b'{"id": 3, "op": "create", "name": "ok", "limits": {"memory_limit": -1}}', "BAD_REQUEST"),
    (b'{"id": 4, "op": "create", "name": "ok", "limits": {"timeout": "x"}}', "BAD_REQUEST"),
    (b'{"id": 5, "op": "exec", "vm": "ghost", "code": "return 1"}', "VM_NOT_FOUND"),
    (b'{"id": 6, "op": "exec"}', "BAD_REQUEST"),
])
def test_bad_request_gets_error_and_connection_survives(manager, line, code):
    s, f = _raw(manager)
    with s, f:
        r = _ask(s, f, line)
        assert r["error"]["code"] == code and r["error"]["message"]
        assert _ask(s, f, b'{"id": "p", "op": "ping"}') == {"id": "p", "result": "pong"}
    assert manager.ping()


def test_duplicate_name_on_the_wire(manager):
    manager.create_vm("taken")
    s, f = _raw(manager)
    with s, f:
        r = _ask(s, f, b'{"id": 1, "op": "create", "name": "taken"}')
        assert r["error"]["code"] == "VM_EXISTS"
