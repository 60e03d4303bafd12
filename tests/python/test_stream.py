"""Streamed execution (issue 6 item 3): vm.stream(code) yields print lines,
top-level yields and posts as the script makes them, then its result,
against the real binaries: order, back-pressure through the window, cancel,
limits and errors mid-stream, and that nobody else can ack a stream."""

import threading
import time

import pytest

from pylua_bioxen_vm import (ExecutionTimeout, InstructionLimitExceeded, LuaError,
                             StreamItem, VMManager)
from pylua_bioxen_vm.stream import STREAM_WINDOW

T = 30.0  # deadline for every wait; only catches hangs


def wait_buffered(s, n, timeout=T):
    """Wait (on the stream's condition, no polling) until n items are buffered."""
    core = s.core
    with core._cv:
        assert core._cv.wait_for(lambda: len(core._items) >= n, timeout), \
            "only %d of %d items arrived" % (len(core._items), n)


def test_items_arrive_while_the_script_runs(manager):
    # Proof by order, not speed: the script cannot finish before the test
    # sends it mail, which the test does only after it has item 1.
    vm = manager.create_vm("waiter")
    s = vm.stream("coroutine.yield(1) local v = mailbox.recv() print('got', v) return v * 2")
    assert s.next(T) == StreamItem("yield", (1,))
    assert not s.future.done()
    manager.send_to("waiter", 21)
    assert s.next(T) == StreamItem("print", "got\t21")
    assert s.next(T) == StreamItem("result", 42)
    with pytest.raises(StopIteration):
        s.next(T)


def test_prints_yields_and_posts_interleave_in_order(manager):
    vm = manager.create_vm("v")
    code = ("print('a') coroutine.yield(1, 'two', {3}) print('b\\nc', 4) "
            "post({k = true}) coroutine.yield() print() return 'end', 5")
    assert list(vm.stream(code)) == [
        StreamItem("print", "a"), StreamItem("yield", (1, "two", [3])),
        StreamItem("print", "b"), StreamItem("print", "c\t4"),
        StreamItem("post", {"k": True}), StreamItem("yield", ()),
        StreamItem("print", ""), StreamItem("result", ("end", 5))]


def test_post_during_a_stream_goes_to_it_and_outside_to_recv(manager):
    vm = manager.create_vm("poster")
    assert vm.execute("post('before') return true") is True
    items = list(vm.stream("post('inside') return 1"))
    assert items == [StreamItem("post", "inside"), StreamItem("result", 1)]
    vm.execute("post('after')")
    assert vm.recv(timeout=T) == "before"
    assert vm.recv(timeout=T) == "after"


def test_nested_coroutines_yield_to_their_resumer(manager):
    vm = manager.create_vm("nest")
    code = ("local co = coroutine.wrap(function() coroutine.yield('inner') return 'x' end) "
            "coroutine.yield(co()) coroutine.yield(co()) return 'ok'")
    assert list(vm.stream(code)) == [StreamItem("yield", ("inner",)),
                                     StreamItem("yield", ("x",)),
                                     StreamItem("result", "ok")]


def test_non_stream_exec_is_unchanged(manager):
    vm = manager.create_vm("plain", echo=False)
    with pytest.raises(LuaError, match="outside a coroutine"):
        vm.execute("coroutine.yield(1)")
    r = vm.execute_result("print('x') return 1")
    assert r.output == "x\n" and r.value == 1


def test_back_pressure_holds_a_fast_producer_to_the_window(manager):
    vm = manager.create_vm("fast")
    s = vm.stream("for i = 1, 100000 do coroutine.yield(i) end return 'done'", timeout=600)
    assert s.next(T) == StreamItem("yield", (1,))
    # item 1 may be acked at once (nothing else was in yet) or not: the node
    # holds back after STREAM_WINDOW un-acked items either way
    wait_buffered(s, STREAM_WINDOW - 1)
    time.sleep(0.5)   # an observation window: nothing more may come
    assert s.buffered <= STREAM_WINDOW
    assert not s.future.done()
    n = 1
    for item in s:
        if item.kind == "result":
            break
        n += 1
        assert item.value == (n,)
        assert s.buffered <= STREAM_WINDOW
    assert (n, item) == (100000, StreamItem("result", "done"))


def test_leaving_the_loop_cancels_and_the_vm_stays_usable(manager):
    vm = manager.create_vm("quit")
    code = ("n = 0 local ok, e = pcall(function() "
            "for i = 1, 1e9 do n = i coroutine.yield(i) end end) why = e")
    with vm.stream(code) as s:
        for item in s:
            if item.value == (3,):
                break
    assert "stream cancelled" in vm.execute("return why")
    assert vm.execute("return n") <= 3 + STREAM_WINDOW + 1
    assert vm.execute("return 1 + 1") == 2
    # a print loop is cancelled inside print
    with vm.stream("for i = 1, 1e9 do print(i) end") as s:
        assert s.next(T) == StreamItem("print", "1")
    assert vm.execute("return 'still here'") == "still here"


def test_close_before_any_item_cancels_a_queued_stream(manager):
    vm = manager.create_vm("queued")
    vm.set_globals({"go": False})
    first = vm.execute_async("local v = mailbox.recv() return v")
    s = vm.stream("for i = 1, 1e9 do coroutine.yield(i) end")
    s.close()                         # still queued behind `first`
    manager.send_to("queued", 5)
    assert first.result(T) == 5
    assert vm.execute("return 'next'", timeout=T) == "next"


def test_timeout_while_the_consumer_stalls(manager):
    vm = manager.create_vm("stall")
    s = vm.stream("for i = 1, 1e9 do coroutine.yield(i) end", timeout=1.0)
    assert isinstance(s.future.exception(T), ExecutionTimeout)
    got = []
    with pytest.raises(ExecutionTimeout):
        for item in s:
            got.append(item.value[0])
    assert got == list(range(1, len(got) + 1)) and len(got) <= STREAM_WINDOW
    assert vm.execute("return 'alive'") == "alive"
    # the wall timer reaches the chunk's coroutine while it computes, too
    s = vm.stream("coroutine.yield(1) while true do end", timeout=1.0)
    assert s.next(T) == StreamItem("yield", (1,))
    with pytest.raises(ExecutionTimeout):
        s.next(T)


def test_instruction_limit_applies_inside_the_streamed_chunk(manager):
    vm = manager.create_vm("count")
    s = vm.stream("coroutine.yield(1) while true do end", instruction_limit=100000)
    assert s.next(T) == StreamItem("yield", (1,))
    with pytest.raises(InstructionLimitExceeded):
        s.next(T)
    # across many resumes too: the budget is charged, not reset per resume
    got = 0
    with pytest.raises(InstructionLimitExceeded):
        for _ in vm.stream("local i = 0 while true do i = i + 1 coroutine.yield(i) end",
                           instruction_limit=200000):
            got += 1
    assert 100 < got < 200000


def test_error_mid_stream_raises_after_the_items_before_it(manager):
    vm = manager.create_vm("boom")
    got = []
    with pytest.raises(LuaError, match="boom") as ei:
        for item in vm.stream("print('a') coroutine.yield(2) error('boom')"):
            got.append(item)
    assert got == [StreamItem("print", "a"), StreamItem("yield", (2,))]
    assert "boom" in str(ei.value) and ei.value.traceback   # the chunk's own traceback
    # a value that cannot cross is a Lua error at the yield, catchable there
    items = list(vm.stream("local t = {} t.t = t local ok, e = pcall(coroutine.yield, t) return ok, e"))
    assert items[-1].kind == "result"
    assert items[-1].value[0] is False and "stream yield" in items[-1].value[1]


def test_max_output_bounds_streamed_prints(manager):
    vm = manager.create_vm("chatty", max_output=55)
    s = vm.stream("for i = 1, 100 do print(('x'):rep(10)) end return 1")
    items = list(s)
    assert items == [StreamItem("print", "x" * 10)] * 5 + [StreamItem("result", 1)]
    assert s.result.output_truncated is True


def test_oversized_item_is_a_lua_error_not_a_dead_node(manager):
    vm = manager.create_vm("big")
    frame_max = manager._core.conn.frame_max
    s = vm.stream("local ok, e = pcall(coroutine.yield, ('x'):rep(%d)) return e" % (frame_max + 10))
    items = list(s)
    assert items[-1].kind == "result" and "too large" in items[-1].value
    assert vm.execute("return 3") == 3


def test_another_client_cannot_ack_or_cancel_a_stream(manager):
    vm = manager.create_vm("mine")
    s = vm.stream("for i = 1, 200 do coroutine.yield(i) end return 'all'")
    wait_buffered(s, STREAM_WINDOW)
    rid = s._rid
    with VMManager(manager.address) as other:
        other._core.conn.send_frame({"op": "stream_ack", "vm": "mine", "stream": rid,
                                     "n": 1000, "cancel": True})
        other.list_vms() if hasattr(other, "list_vms") else other._core.conn.call("list", {})
    time.sleep(0.3)   # an observation window: the window must not have opened
    assert s.buffered == STREAM_WINDOW
    items = list(s)
    assert len(items) == 201 and items[-1] == StreamItem("result", "all")


def test_streams_on_two_vms_run_side_by_side(manager):
    a, b = manager.create_vm("a"), manager.create_vm("b")
    sa = a.stream("for i = 1, 100 do coroutine.yield('a', i) end return 'A'")
    sb = b.stream("for i = 1, 100 do coroutine.yield('b', i) end return 'B'")
    out = {"a": [], "b": []}

    def drain(s, key):
        out[key] = list(s)
    ts = [threading.Thread(target=drain, args=(s, k)) for s, k in ((sa, "a"), (sb, "b"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(T)
    assert out["a"][-1] == StreamItem("result", "A") and len(out["a"]) == 101
    assert out["b"][-1] == StreamItem("result", "B") and len(out["b"]) == 101


def test_a_stream_dropped_unread_cancels_itself(manager):
    import gc
    vm = manager.create_vm("dropped")
    s = vm.stream("for i = 1, 1e9 do coroutine.yield(i) end")
    assert s.next(T) == StreamItem("yield", (1,))
    del s
    gc.collect()
    assert vm.execute("return 'free again'", timeout=T) == "free again"


def test_requests_wait_behind_a_blocked_stream(manager):
    vm = manager.create_vm("busy")
    s = vm.stream("for i = 1, 200 do coroutine.yield(i) end "
                  "local v = mailbox.recv() return v")
    wait_buffered(s, STREAM_WINDOW)          # the node now blocks on the window
    later = vm.execute_async("return 'after'")
    manager.send_to("busy", "mail")
    assert not later.done()                  # queued in the node behind the stream
    items = list(s)
    assert len(items) == 201 and items[-1] == StreamItem("result", "mail")
    assert later.result(T) == "after"
