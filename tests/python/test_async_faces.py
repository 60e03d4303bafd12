"""Each op is one ``x_async`` Future, and its blocking and asyncio faces
give what that Future gives (the faces are written over it, not beside it).
"""

import asyncio
import threading
from concurrent.futures import Future

import pytest

from pylua_bioxen_vm import AsyncVM, InvalidRequest, VMNotFound
from pylua_bioxen_vm.aio.hub import Hub
from pylua_bioxen_vm.futures import chain, resolved

T = 30.0  # deadline for every wait; only catches hangs


def test_vm_ops_as_futures(manager):
    vm = manager.create_vm("faces")
    futs = {
        "set": vm.set_globals_async({"x": 41}),
        "get": vm.get_global_async("x"),
        "exists": vm.function_exists_async("string.format"),
        "call": vm.call_result_async("string.rep", "ab", 2),
        "stats": vm.stats_async(),
    }
    assert all(isinstance(f, Future) for f in futs.values())
    assert futs["set"].result(T) is None
    assert futs["get"].result(T) == 41
    assert futs["exists"].result(T) is True
    assert futs["call"].result(T).value == "abab"
    assert futs["stats"].result(T)["executions"] >= 1
    assert vm.reset_async().result(T) is None
    assert vm.get_global("x") is None
    assert vm.close_async().result(T) is None
    assert vm.close_async().result(T) is None          # idempotent, nothing sent
    with pytest.raises(VMNotFound):
        vm.stats_async()


def test_manager_ops_as_futures(manager):
    manager.create_vm("listed")
    assert manager.ping_async().result(T) is True
    assert [v["name"] for v in manager.list_vms_async().result(T)] == ["listed"]
    assert manager.get_vm_async("listed").result(T) is manager.get_vm("listed")
    with pytest.raises(VMNotFound):
        manager.get_vm_async("nobody").result(T)
    assert "vms" in manager.metrics_async().result(T)
    assert isinstance(manager.history_async(5).result(T), list)
    with pytest.raises(InvalidRequest):
        manager.history_async(-1)
    mb = manager.mailbox_async("faces-box").result(T)
    assert manager.send_to_async("faces-box", [1, 2]).result(T) is True
    assert mb.recv(T) == ("@client", [1, 2])
    assert mb.close_async().result(T) is None
    s = manager.create_session_async("faces").result(T)
    assert manager.get_session("faces") is s
    assert s.set_state_async({"n": 2}).result(T) is None
    assert s.run_async("n * 21").result(T) == 42
    assert s.get_state_async().result(T) == {"n": 2}
    assert s.reset_async().result(T) is None
    assert s.close_async().result(T) is None
    assert manager.shutdown_all_async().result(T) >= 1
    assert manager.list_vms() == []


def test_recv_state_machine_is_shared(manager):
    # One VM handle, both faces: a batch pulled for the asyncio recv is in
    # the handle's one inbox for the blocking recv.
    vm = manager.create_vm("poster")
    vm.execute("post('one') post('two')")

    async def main():
        return await AsyncVM(vm, Hub(asyncio.get_running_loop(), {})).recv(T)

    assert asyncio.run(main()) == "one"
    assert vm.recv(T) == "two"
    with pytest.raises(TimeoutError):
        vm.recv(0.05)


def test_chain_and_resolved():
    assert resolved(3).result(0) == 3
    src: Future = Future()
    out = chain(src, lambda v: v + 1)
    src.set_result(1)
    assert out.result(0) == 2
    err: Future = Future()
    saved = chain(err, lambda v: v, lambda e: "saved %s" % e)
    err.set_exception(KeyError("k"))
    assert saved.result(0) == "saved 'k'"
    inner: Future = Future()
    outer = chain(resolved(None), lambda _: inner)   # a Future of a Future
    threading.Timer(0.01, inner.set_result, ("late",)).start()
    assert outer.result(T) == "late"
