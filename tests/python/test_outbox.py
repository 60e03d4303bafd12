"""A VM's outbox (issue 4 item 4, "Python can read a VM's outbox"): Lua's
post(v) and Python's vm.recv(timeout) against the real binaries: order,
timeouts, back-pressure when the outbox is full, and its end with the VM."""

import threading
import time

import pytest

from pylua_bioxen_vm import LuaError, VMNotFound

T = 30.0  # deadline for every wait; only catches hangs


def test_posts_arrive_in_order_over_500(manager):
    vm = manager.create_vm("poster")
    fut = vm.execute_async("for i = 1, 500 do post({i = i, s = ('x'):rep(i % 50)}) end "
                           "return mailbox.flush()")
    got = [vm.recv(timeout=T) for _ in range(500)]
    assert fut.result(T) is True
    assert got == [{"i": i, "s": "x" * (i % 50)} for i in range(1, 501)]


def test_post_takes_any_value_and_recv_without_timeout_waits(manager):
    vm = manager.create_vm("v")
    box = []
    t = threading.Thread(target=lambda: box.append(vm.recv()))
    t.start()
    time.sleep(0.2)
    assert vm.execute("return post('a\\0\\nb')") is True
    t.join(T)
    assert box == ["a\0\nb"]
    vm.execute("post(nil) post({1, 2, {k = true}}) post(2^53)")
    assert [vm.recv(timeout=T) for _ in range(3)] == [None, [1, 2, {"k": True}], 2 ** 53]
    with pytest.raises(LuaError, match="post"):
        vm.execute("local t = {} t.self = t post(t)")    # not convertible


def test_recv_times_out_in_time(manager):
    vm = manager.create_vm("quiet")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        vm.recv(timeout=0.3)
    assert 0.25 <= time.monotonic() - t0 < 5.0
    vm.execute("post('late')")
    assert vm.recv(timeout=T) == "late"


def test_full_outbox_blocks_the_poster_until_python_reads(manager):
    vm = manager.create_vm("busy", outbox_size=4)
    fut = vm.execute_async("for i = 1, 100 do post(i) end mailbox.flush() return 'done'")
    # 4 fit, the rest wait (pipelined sends are parked in the manager)
    with pytest.raises(TimeoutError):
        fut.result(0.5)
    assert [vm.recv(timeout=T) for _ in range(100)] == list(range(1, 101))
    assert fut.result(T) == "done"


def test_outbox_dies_with_the_vm(manager):
    vm = manager.create_vm("mortal")
    vm.execute("post(1) post(2)")
    waiting = manager.create_vm("mortal2")
    errors = []

    def reader():
        try:
            waiting.recv()
        except Exception as e:      # noqa: BLE001 - the type is the check
            errors.append(e)
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.2)
    waiting.close()     # the parked pull is failed by the manager
    t.join(T)
    assert len(errors) == 1 and isinstance(errors[0], VMNotFound)
    vm.close()
    with pytest.raises(VMNotFound):
        vm.recv(timeout=1)
    again = manager.create_vm("mortal")     # same name: a fresh, empty outbox
    with pytest.raises(TimeoutError):
        again.recv(timeout=0.2)
