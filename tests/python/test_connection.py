"""Client machinery against a scripted fake manager: futures by id, errors,
events, callbacks, connection loss.  Needs no C binaries."""

import threading

import pytest

from fakemanager import FakeManager
from pylua_bioxen_vm import (ExecutionTimeout, InvalidRequest, LuaError, ManagerError, ProtocolError,
                             VMCrashed, VMManager)

T = 5.0


def ok(msg, result):
    return {"id": msg["id"], "result": result}


def default(fake, msg):
    if "id" not in msg:
        return None  # cb_result gets no reply
    op = msg["op"]
    if op == "create":
        return ok(msg, {"name": msg["name"], "pid": 1})
    if op == "exec":
        return ok(msg, {"values": [msg["code"]], "output": "", "duration_ms": 0.1,
                        "mem_bytes": 1})
    return ok(msg, True)


@pytest.fixture
def fake_pair():
    fakes = []

    def make(handler=default):
        fake = FakeManager(handler)
        fakes.append(fake)
        m = VMManager("unix:" + fake.path, start_timeout=T)
        fakes.append(m)
        return fake, m
    yield make
    for x in reversed(fakes):
        x.close()


def test_out_of_order_replies_resolve_the_right_futures(fake_pair):
    held = []

    def handler(fake, msg):
        if msg["op"] == "exec":
            held.append(msg)
            if len(held) == 3:
                for m in reversed(held):
                    fake.send(ok(m, {"values": [m["code"]], "output": ""}))
            return None
        return default(fake, msg)
    fake, m = fake_pair(handler)
    vm = m.create_vm("a")
    futs = [vm.execute_async("c%d" % i) for i in range(3)]
    assert [f.result(T) for f in futs] == ["c0", "c1", "c2"]


def test_error_reply_maps_to_class_with_vm_name_and_cause(fake_pair):
    def handler(fake, msg):
        if msg["op"] == "exec":
            return {"id": msg["id"], "error": {"code": "LUA_ERROR", "message": "boom",
                                               "traceback": "stack traceback:\n\t[C]: in ?",
                                               "output": "hi\n"}}
        if msg["op"] == "call":
            return {"id": msg["id"], "error": {"code": "TIMEOUT", "message": "1 s",
                                               "restarted": True}}
        return default(fake, msg)
    fake, m = fake_pair(handler)
    vm = m.create_vm("a")
    with pytest.raises(LuaError) as ei:
        vm.execute("x")
    e = ei.value
    assert "'a'" in str(e) and e.lua_message == "boom" and e.output == "hi\n"
    assert "stack traceback" in str(e.__cause__)
    with pytest.raises(ExecutionTimeout) as ei:
        vm.call("f")
    assert ei.value.restarted and "restarted" in str(ei.value)


def test_connection_loss_fails_every_pending_future(fake_pair):
    def handler(fake, msg):
        return default(fake, msg) if msg["op"] == "create" else None
    fake, m = fake_pair(handler)
    vm = m.create_vm("a")
    futs = [vm.execute_async("x") for _ in range(5)]
    fake.wait_for(lambda msg: msg.get("op") == "exec")
    fake.drop()
    for f in futs:
        with pytest.raises(ManagerError):
            f.result(T)
    with pytest.raises(ManagerError):
        vm.execute("y")


def test_events_reach_handlers_and_iterator(fake_pair):
    fake, m = fake_pair()
    got = threading.Event()
    seen = []
    m.on("vm_crash", lambda ev: (seen.append(ev), got.set()))
    fake.connected.wait(T)
    fake.send({"event": "VM_CRASH", "vm": "a", "ts": 1.5, "detail": {"signal": 9}})
    assert got.wait(T)
    assert seen[0]["type"] == "VM_CRASH" and seen[0]["detail"] == {"signal": 9}
    ev = next(m.events(timeout=T))
    assert (ev.ts, ev.vm, ev.type) == (1.5, "a", "VM_CRASH")
    assert list(m.events(timeout=0.05)) == []


def test_callback_runs_off_reader_thread_and_replies(fake_pair):
    fake, m = fake_pair()
    threads = []

    def add(a, b):
        threads.append(threading.current_thread().name)
        return a + b, "two"
    m.create_vm("a", callbacks={"add": add, "bad": lambda: 1 / 0})
    create = fake.wait_for(lambda msg: msg.get("op") == "create")
    assert create["callbacks"] == ["add", "bad"]
    fake.send({"callback": 7, "vm": "a", "fn": "add", "args": [2, 3]})
    r = fake.wait_for(lambda msg: msg.get("op") == "cb_result" and msg["callback"] == 7)
    assert r == {"op": "cb_result", "vm": "a", "callback": 7, "result": [5, "two"]}
    assert threads and "reader" not in threads[0]
    fake.send({"callback": 8, "vm": "a", "fn": "bad", "args": []})
    r = fake.wait_for(lambda msg: msg.get("op") == "cb_result" and msg["callback"] == 8)
    assert r["error"].startswith("ZeroDivisionError")


def test_client_side_validation(fake_pair):
    fake, m = fake_pair()
    for bad in ("", "a b", "x" * 65, "é", None):
        with pytest.raises(InvalidRequest):
            m.create_vm(bad)
    with pytest.raises(InvalidRequest, match="memory_limit"):
        m.create_vm("a", memory_limit=-1)
    with pytest.raises(InvalidRequest, match="timeout"):
        m.create_vm("a", timeout="soon")
    with pytest.raises(TypeError):
        m.create_vm("a", colour="red")
    vm = m.create_vm("a")
    with pytest.raises(InvalidRequest, match="frame limit"):
        vm.execute("x" * (2 << 20))


def test_vm_crashed_message(fake_pair):
    def handler(fake, msg):
        if msg["op"] == "exec":
            return {"id": msg["id"], "error": {"code": "VM_CRASHED", "message": "killed by signal 9"}}
        return default(fake, msg)
    fake, m = fake_pair(handler)
    with pytest.raises(VMCrashed, match="signal 9"):
        m.create_vm("a").execute("x")


def test_garbled_reply_fails_only_its_own_request(fake_pair):
    # Node reply bytes pass the manager unparsed with our id last; a broken
    # or hostile node's garbage must fail that request, not hang it.
    def handler(fake, msg):
        if msg.get("op") == "exec" and msg["code"] == "bad":
            fake.conn.sendall(b'{"result":{"values":[1,,]},"id":%d}\n' % msg["id"])
            return None
        return default(fake, msg)
    fake, m = fake_pair(handler)
    vm = m.create_vm("a")
    bad = vm.execute_async("bad")
    good = vm.execute_async("good")
    with pytest.raises(ProtocolError, match="not valid JSON"):
        bad.result(T)
    assert good.result(T) == "good"


def test_sent_request_cannot_be_cancelled(fake_pair):
    fake, m = fake_pair(lambda fake, msg: None if msg.get("op") == "exec" else default(fake, msg))
    vm = m.create_vm("a")
    fut = vm.execute_async("x")
    assert fut.cancel() is False       # it is on the wire: the reply will come
    assert not fut.cancelled()
