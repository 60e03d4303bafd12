"""Mailboxes by name (issue 4 item 4) against the real binaries: Lua<->Lua,
Python<->Lua, order over 1,000 mixed messages, missing names, back-pressure,
recv timeouts, closing a VM blocked in recv, restart and destroy."""

import time

import pytest

from pylua_bioxen_vm import ExecutionTimeout, LuaError, VMCrashed, VMExists, VMNotFound

T = 30.0  # deadline for every wait; only catches hangs

BOMB = "return string.find(string.rep('a', 40), string.rep('a*', 30) .. 'b')"


def test_lua_to_lua_round_trip(manager):
    a, b = manager.create_vm("a"), manager.create_vm("b")
    fb = b.execute_async("local v, from = mailbox.recv(20) "
                         "mailbox.send(from, {echo = v, by = mailbox.name()}) return from")
    got = a.execute("mailbox.send('b', 'ping\\0\\n') return mailbox.recv(20)", timeout=T)
    assert got == ({"echo": "ping\0\n", "by": "b"}, "b")
    assert fb.result(T) == "a"


def test_python_to_lua_and_lua_to_python(manager):
    vm = manager.create_vm("worker")
    assert manager.send_to("worker", {"job": [1, 2, 3]}) is True
    assert vm.execute("return mailbox.recv(20)", timeout=T) == ({"job": [1, 2, 3]}, "@client")
    with manager.mailbox("inbox") as mb:
        vm.execute("mailbox.send('inbox', {sum = 6, raw = '\\xff\\x00'})")
        assert mb.recv(timeout=T) == ("worker", {"sum": 6, "raw": b"\xff\x00"})
        mb.send("worker", "reply me")
        vm.execute("local v, f = mailbox.recv(20) mailbox.send(f, v .. '!')", timeout=T)
        assert mb.recv(timeout=T) == ("worker", "reply me!")
    with pytest.raises(VMNotFound):
        manager.send_to("inbox", 1)     # closed with the mailbox


def test_mailbox_names_do_not_clash(manager):
    manager.create_vm("taken")
    with pytest.raises(VMExists):
        manager.mailbox("taken")
    mb = manager.mailbox("box")
    with pytest.raises(VMExists):
        manager.mailbox("box")
    with pytest.raises(VMExists):
        manager.create_vm("box")
    mb.close()


def _mixed(i):
    k = i % 5
    if k == 0:
        return "line\n%d\0end" % i + "x" * (i * 37 % 5000)
    if k == 1:
        return {"i": i, "nested": {"list": [i, i + 0.5, "s"], "t": True}}
    if k == 2:
        return bytes([255, 0, i % 256]) * (1 + i % 300)
    if k == 3:
        return i * 1_000_000_007
    return [i, {"deep": [[i]]}, "z" * (i % 64 + 1)]


def test_order_per_sender_over_1000_mixed(manager):
    n = 1000
    fwd = manager.create_vm("fwd")
    with manager.mailbox("sink", size=100) as sink:
        # Lua forwards whatever it gets: Python -> Lua -> Lua API -> Python
        fut = fwd.execute_async("for i = 1, %d do local v = mailbox.recv(20) "
                                "mailbox.send('sink', v) end return mailbox.flush()" % n)
        sends = [manager.send_to_async("fwd", _mixed(i)) for i in range(n)]
        got = [sink.recv(timeout=T) for _ in range(n)]
        assert fut.result(T) is True
        assert all(f.result(T) is True for f in sends)
    assert [s for s, _ in got] == ["fwd"] * n
    for i, (_, v) in enumerate(got):
        assert v == _mixed(i), "message %d" % i


def test_send_to_missing_name_is_an_error(manager):
    vm = manager.create_vm("lonely")
    with pytest.raises(VMNotFound, match="no VM or mailbox named 'nobody'"):
        vm.execute("mailbox.send('nobody', 1)")
    with pytest.raises(VMNotFound, match="no VM or mailbox named 'bad name!'"):
        vm.execute("mailbox.send('bad name!', 1)")
    assert vm.execute("return pcall(mailbox.send, 'nobody', 1)")[0] is False
    with pytest.raises(VMNotFound):
        manager.send_to("nobody", 1)
    assert vm.execute("return mailbox.send('lonely', 'self')") is True
    assert vm.execute("return mailbox.recv(5)") == ("self", "lonely")


def test_uncaught_send_error_keeps_its_code_only_while_it_is_the_same_error(manager):
    vm = manager.create_vm("src")
    # caught, then a different error escapes: that one is a plain LuaError
    with pytest.raises(LuaError, match="mine") as ei:
        vm.execute("pcall(mailbox.send, 'nobody', 1) error('mine')")
    assert type(ei.value) is LuaError
    # caught and raised again unchanged: still the missing name
    with pytest.raises(VMNotFound):
        vm.execute("local ok, e = pcall(mailbox.send, 'nobody', 1) error(e, 0)")
    assert vm.execute("return 1") == 1


def test_pipelined_send_to_a_destroyed_vm_is_vm_not_found(manager):
    src, dest = manager.create_vm("src"), manager.create_vm("dest")
    assert src.execute("return mailbox.send('dest', 1)") is True   # name confirmed
    dest.close()
    # the next send is pipelined; its failed ack is raised by flush
    with pytest.raises(VMNotFound, match="dest"):
        src.execute("mailbox.send('dest', 2) return mailbox.flush()", timeout=T)
    with pytest.raises(VMNotFound):
        src.execute("mailbox.send('dest', 3)", timeout=T)


def test_full_mailbox_blocks_the_lua_sender(manager):
    small = manager.create_vm("small", mailbox_size=4)
    sender = manager.create_vm("sender")
    fut = sender.execute_async("for i = 1, 20 do mailbox.send('small', i) end "
                               "mailbox.flush() return 'all sent'")
    # The sender cannot finish while 'small' holds 4 of 20: it is parked.
    with pytest.raises(TimeoutError):
        fut.result(0.5)
    got = small.execute("local t = {} for i = 1, 20 do t[i] = mailbox.recv(20) end return t",
                        timeout=T)
    assert got == list(range(1, 21))
    assert fut.result(T) == "all sent"


def test_full_mailbox_python_sender_times_out_cleanly(manager):
    vm = manager.create_vm("tiny", mailbox_size=2)
    manager.send_to("tiny", 1)
    manager.send_to("tiny", 2)
    parked = manager.send_to_async("tiny", 3)           # waits for room
    t0 = time.monotonic()
    with pytest.raises(ExecutionTimeout):
        manager.send_to("tiny", 4, timeout=0.3)
    assert time.monotonic() - t0 < 10
    assert not parked.done()
    assert vm.execute("local a = mailbox.recv(5) local b = mailbox.recv(5) "
                      "local c = mailbox.recv(5) return a, b, c, mailbox.recv(0.1)",
                      timeout=T) == (1, 2, 3, None, "timeout")
    assert parked.result(T) is True


def test_full_mailbox_lua_sender_hits_its_wall_timeout(manager):
    manager.create_vm("full", mailbox_size=1)
    manager.send_to("full", "x")
    s = manager.create_vm("impatient", timeout=0.5)
    with pytest.raises(ExecutionTimeout):
        s.execute("mailbox.send('full', 1) mailbox.send('full', 2) return mailbox.flush()")
    assert s.execute("return 7") == 7


def test_recv_timeout_returns_nil_timeout_in_time(manager):
    vm = manager.create_vm("waiter")
    t0 = time.monotonic()
    assert vm.execute("return mailbox.recv(0.3)", timeout=T) == (None, "timeout")
    dt = time.monotonic() - t0
    assert 0.25 <= dt < 10
    with manager.mailbox("pybox") as mb:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            mb.recv(timeout=0.3)
        assert 0.25 <= time.monotonic() - t0 < 10


def test_vm_blocked_in_recv_closes_at_once(manager):
    vm = manager.create_vm("blocked")
    fut = vm.execute_async("return mailbox.recv()")
    with pytest.raises(TimeoutError):
        fut.result(0.3)
    t0 = time.monotonic()
    vm.close()
    with pytest.raises(VMCrashed):
        fut.result(T)
    assert time.monotonic() - t0 < 5


def test_mailbox_survives_restart_dies_with_destroy(manager):
    vm = manager.create_vm("phoenix", timeout=0.3)
    manager.send_to("phoenix", "kept")
    with pytest.raises(ExecutionTimeout) as ei:
        vm.execute(BOMB)
    assert ei.value.restarted
    assert vm.execute("return mailbox.recv(5)", timeout=T) == ("kept", "@client")
    manager.send_to("phoenix", "lost")
    vm.close()
    with pytest.raises(VMNotFound):
        manager.send_to("phoenix", 1)
    fresh = manager.create_vm("phoenix")
    assert fresh.execute("return mailbox.recv(0)") == (None, "timeout")


def test_recv_of_an_already_answered_pull_does_not_deadlock(manager):
    # One message in flight at a time, so every recv() starts a pull whose
    # reply may already be in (resolved by another thread) when recv()
    # registers for it: that once deadlocked on the mailbox's own lock.
    vm = manager.create_vm("echo")
    inbox = manager.mailbox("box")
    for i in range(200):
        vm.execute_async("mailbox.send('box', %d)" % i).result(T)
        assert inbox.recv(timeout=T) == ("echo", i)


def test_vm_to_vm_values_arrive_intact_in_every_shape(manager):
    """Node-to-node mail takes the manager's hand-written frames (mailcheck
    fast path in, jsonw.c out): every kind of value comes through as sent,
    including quotes, escapes, non-ASCII, floats and values over 512 bytes."""
    a, b = manager.create_vm("va"), manager.create_vm("vb")
    values = ("{1, -2, 2^53, 0.1, 1e300, -0.0}, 'say \"hi\"\\\\', 'caf\\xc3\\xa9 \\0 \\t', "
              "string.rep('x', 5000), {k = {deep = {true, false}}}, 12345678901234, ''")
    fb = b.execute_async("local got = {} for i = 1, 7 do got[i] = mailbox.recv(20) end "
                         "return got")
    a.execute("for _, v in ipairs({%s}) do mailbox.send('vb', v) end return mailbox.flush()"
              % values, timeout=T)
    want = a.execute("return {%s}" % values, timeout=T)
    assert fb.result(T) == want


BUSY = "local t = os.time() while os.time() - t < 40 do end"


@pytest.mark.parametrize("shape", ["plain", "coroutine", "instruction_limit"])
def test_a_send_is_not_held_back_by_a_script_that_computes(manager, shape):
    """The node writes pipelined sends in batches; one send followed by a
    long computation (in a coroutine that yields, or under an instruction
    limit's own hook) still reaches its receiver while the sender runs."""
    rx = manager.create_vm("crx")
    tx = manager.create_vm("ctx", instruction_limit=10**12 if shape == "instruction_limit" else None)
    tx.execute("mailbox.send('crx', 0) mailbox.flush()", timeout=T)   # the name is confirmed
    assert rx.execute("return mailbox.recv(20)", timeout=T) == (0, "ctx")
    send = "mailbox.send('crx', 1)"
    if shape == "coroutine":
        send = "coroutine.wrap(function() mailbox.send('crx', 1) coroutine.yield() end)()"
    ft = tx.execute_async(send + " " + BUSY + " return 'done'", timeout=60)
    # well before the 40 s the sender computes for
    assert rx.execute("return mailbox.recv(15)", timeout=T) == (1, "ctx")
    assert not ft.done(), "the message came only once the sender had finished"
    tx.close()
    with pytest.raises(Exception):
        ft.result(T)


def test_a_looping_tostring_after_a_batched_send_still_trips(manager):
    """The flush hook of batched sends gives way to the error handler's own
    budget: a __tostring that never returns still ends the request."""
    manager.create_vm("lrx")
    tx = manager.create_vm("ltx")
    tx.execute("mailbox.send('lrx', 0) mailbox.flush()", timeout=T)
    with pytest.raises(LuaError):
        tx.execute("mailbox.send('lrx', 1) "
                   "error(setmetatable({}, {__tostring = function() while true do end end}))",
                   timeout=T)
    assert tx.execute("return 1 + 1", timeout=T) == 2
