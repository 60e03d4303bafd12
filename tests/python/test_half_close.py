"""End of input from a client means "no more requests", not "gone".

A client that shuts down its sending side after its last request (socat,
nc, any ``printf | tool`` pipeline) still gets one reply per request; the
manager then closes the connection and only then cleans up its VMs. A
client that closes both directions is gone at once, as before.
"""

import json
import select
import socket
import subprocess

from conftest import free_port as _free_port, wait_until
from test_manager_protocol import DEADLINE, Manager, mgr  # noqa: F401 (fixture)


def read_to_eof(sock, deadline=DEADLINE):
    """Every line the manager writes until it closes the connection."""
    sock.settimeout(deadline)
    buf = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        buf += chunk
    return [json.loads(line) for line in buf.split(b"\n") if line.strip()]


def half_closed_session(path, lines, sock_family=socket.AF_UNIX, addr=None):
    s = socket.socket(sock_family, socket.SOCK_STREAM)
    s.connect(addr or path)
    s.sendall("".join(lines).encode())
    s.shutdown(socket.SHUT_WR)
    try:
        return read_to_eof(s)
    finally:
        s.close()


def vm_names(mgr):
    c = mgr.connect()
    try:
        return {v["name"] for v in c.ok("list")}
    finally:
        c.close()
        mgr.conns.remove(c)



def test_readme_socat_example_gets_both_replies(mgr):
    replies = half_closed_session(mgr.path, [
        '{"id":1,"op":"create","name":"a"}\n',
        '{"id":2,"op":"exec","vm":"a","code":"return 1+1"}\n'])
    by_id = {r["id"]: r for r in replies}
    assert set(by_id) == {1, 2}, replies
    assert "result" in by_id[1], by_id[1]
    assert by_id[2]["result"]["values"] == [2], by_id[2]
    # only after the replies went out is the connection's VM cleaned up
    assert wait_until(lambda: "a" not in vm_names(mgr), DEADLINE)


def test_last_line_without_newline_is_still_a_request(mgr):
    replies = half_closed_session(mgr.path, ['{"id":"p","op":"ping"}'])
    assert replies == [{"id": "p", "result": "pong"}]


def test_200_pipelined_requests_some_slow_then_half_close(mgr):
    slow = "local t = 0 for i = 1, 3000000 do t = t + i end return t"
    lines = ['{"id":0,"op":"create","name":"slow"}\n',
             '{"id":1,"op":"create","name":"fast"}\n']
    for i in range(2, 200):
        if i % 20 == 0:
            req = {"id": i, "op": "exec", "vm": "slow", "code": slow}
        elif i % 7 == 0:
            req = {"id": i, "op": "ping"}
        elif i % 11 == 0:
            req = {"id": i, "op": "exec", "vm": "nope", "code": "return 1"}
        else:
            req = {"id": i, "op": "exec", "vm": "fast", "code": "return %d" % i}
        lines.append(json.dumps(req) + "\n")
    replies = half_closed_session(mgr.path, lines)
    ids = [r["id"] for r in replies]
    assert sorted(ids) == list(range(200)), "missing %r" % sorted(set(range(200)) - set(ids))
    by_id = {r["id"]: r for r in replies}
    assert by_id[20]["result"]["values"] == [sum(range(1, 3000001))]
    assert by_id[22]["error"]["code"] == "VM_NOT_FOUND"
    assert by_id[3]["result"]["values"] == [3]
    assert by_id[7]["result"] == "pong"
    assert wait_until(lambda: not {"slow", "fast"} & vm_names(mgr), DEADLINE)


def test_garbage_and_unanswered_frames_do_not_hold_the_connection(mgr):
    # a stream_ack gets no reply; a bad line gets one (id null): the
    # connection still closes once the replies it owes are out
    replies = half_closed_session(mgr.path, [
        'not json\n',
        '{"op":"stream_ack","vm":"x","stream":1,"n":1}\n',
        '{"id":5,"op":"ping"}\n'])
    assert [r.get("id") for r in replies] == [None, 5], replies
    assert replies[0]["error"]["code"] == "BAD_REQUEST"


def test_client_gone_both_ways_is_cleaned_up_at_once(mgr):
    c = mgr.connect()
    c.ok("create", name="busy", limits={"timeout": 60})
    c.send({"id": 99, "op": "exec", "vm": "busy", "code": "while true do end"})
    c.close()
    mgr.conns.remove(c)
    # not after the 60 s timeout: the peer closed, nobody will read the reply
    assert wait_until(lambda: "busy" not in vm_names(mgr), 10)



def test_tcp_client_half_close(tmp_path):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    port = _free_port()
    m = Manager(tmp_path, ["--tcp", "127.0.0.1:%d" % port, "--token-file", str(tok)])
    try:
        replies = half_closed_session(None, [
            '{"id":1,"op":"auth","token":"s3cret"}\n',
            '{"id":2,"op":"create","name":"t"}\n',
            '{"id":3,"op":"exec","vm":"t","code":"return 6*7"}\n'],
            socket.AF_INET, ("127.0.0.1", port))
        by_id = {r["id"]: r for r in replies}
        assert set(by_id) == {1, 2, 3}, replies
        assert by_id[3]["result"]["values"] == [42]
    finally:
        m.stop()


def test_embedded_stdin_close_answers_what_was_read(tmp_path):
    m = Manager(tmp_path, ["--exit-with-stdin"])
    try:
        c = m.connect()
        c.ok("create", name="e")
        c.send({"id": 50, "op": "exec", "vm": "e",
                "code": "local t = 0 for i = 1, 3000000 do t = t + i end return t"})
        m.proc.stdin.close()        # the embedder says: no more requests
        r = c.wait(50, DEADLINE)
        assert r["result"]["values"] == [sum(range(1, 3000001))], r
        ready, _, _ = select.select([m.proc.stdout], [], [], DEADLINE)
        assert ready
        assert m.proc.wait(DEADLINE) == 0
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait()
        m.proc.stdout.close()


def test_embedded_stdin_close_with_idle_clients_exits(tmp_path):
    m = Manager(tmp_path, ["--exit-with-stdin"])
    try:
        c = m.connect()
        assert c.ok("ping") == "pong"
        m.proc.stdin.close()
        assert m.proc.wait(DEADLINE) == 0
    except subprocess.TimeoutExpired:
        m.proc.kill()
        raise
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
        m.proc.wait()
        m.proc.stdout.close()
