"""The asyncio API (issue 6 item 7) against the real binaries: many concurrent
awaits on one loop, the usual exception classes, events through ``async for``
and handlers, callbacks (plain and coroutine), cancellation, no thread per
call, coexistence with the sync API, and cleanup on close.  Plain asyncio.run;
every wait has a deadline."""

import asyncio
import threading

import pytest

from conftest import descendants, manager_pid, wait_gone
from pylua_bioxen_vm import (AsyncVM, AsyncVMManager, ExecResult, ExecutionTimeout,
                             InvalidRequest, LuaError, LuaSyntaxError, ManagerError,
                             Policy, VMExists, VMNotFound)

T = 60.0  # deadline for every wait; only catches hangs


def run(coro):
    """asyncio.run with a deadline, so a hang fails the test."""
    async def bounded():
        return await asyncio.wait_for(coro, T * 2)
    return asyncio.run(bounded())


def opened(**kw):
    return AsyncVMManager(start_timeout=20.0, **kw)


async def close_and_check(m):
    """Close ``m`` and assert its embedded manager and nodes are gone."""
    mpid = manager_pid(m.sync)
    procs = [mpid] + descendants(mpid)
    await m.close()
    assert not wait_gone(procs), "processes left after close()"


def test_thousand_concurrent_executes_no_thread_per_call():
    async def main():
        m = await opened().open()
        try:
            vms = [await m.create_vm("w%d" % i, echo=False) for i in range(4)]
            await asyncio.gather(*(vm.execute("return 1") for vm in vms))
            base = threading.active_count()
            peak = [base]

            async def one(i):
                r = await vms[i % 4].execute("return %d * %d" % (i, i))
                peak[0] = max(peak[0], threading.active_count())
                return r
            tasks = [asyncio.ensure_future(one(i)) for i in range(1000)]
            await asyncio.sleep(0)          # every task has sent its request
            peak[0] = max(peak[0], threading.active_count())
            # (a reply may already be in: a sender can lose the GIL to the reader)
            assert any(not t.done() for t in tasks)
            got = await asyncio.wait_for(asyncio.gather(*tasks), T)
            assert got == [i * i for i in range(1000)]
            # No thread per call: at most a couple of pool threads may appear.
            assert peak[0] <= base + 2, (base, peak[0])
            # Per-VM order and the other methods stay right after the burst.
            assert [s["executions"] for s in await asyncio.gather(
                *(vm.stats() for vm in vms))] == [251] * 4
        finally:
            await close_and_check(m)
    run(main())


def test_errors_raise_the_usual_classes_and_the_connection_survives():
    async def main():
        async with opened() as m:
            vm = await m.create_vm("e", timeout=0.5)
            with pytest.raises(LuaError, match="boom"):
                await vm.execute("error('boom')")
            with pytest.raises(LuaSyntaxError):
                await vm.execute("return +")
            with pytest.raises(ExecutionTimeout):
                await vm.execute("while true do end")
            with pytest.raises(LuaError):
                await vm.call("no_such_function", 1)
            with pytest.raises(VMExists):
                await m.create_vm("e")
            with pytest.raises(InvalidRequest):
                await m.create_vm("bad name!")
            with pytest.raises(InvalidRequest):
                await vm.execute(b"return 1")
            with pytest.raises(VMNotFound):
                await m.get_vm("nobody")
            with pytest.raises(TimeoutError):
                await vm.recv(timeout=0.2)
            assert await vm.execute("return 40 + 2") == 42
            await vm.close()
            with pytest.raises(VMNotFound):
                await vm.execute("return 1")
            assert await m.ping()
    run(main())


def test_vm_methods_mirror_the_sync_api():
    async def main():
        async with opened() as m:
            async with await m.create_vm("api", echo=False) as vm:
                assert isinstance(vm, AsyncVM) and vm.name == "api" and vm.pid
                await vm.execute("function greet(n) print('hi ' .. n) return 'hi', n end")
                assert await vm.call("greet", "bob") == ("hi", "bob")
                r = await vm.call_result("greet", "ann")
                assert isinstance(r, ExecResult) and r.output == "hi ann\n"
                r = await vm.execute_result("print(1) return 2, 3")
                assert r.values == (2, 3) and r.output == "1\n"
                assert await vm.function_exists("greet")
                assert not await vm.function_exists("nope")
                await vm.set_globals({"cfg": {"n": 3, "tags": ["a", "b"]}})
                assert await vm.get_global("cfg.n") == 3
                assert await vm.execute("return cfg.tags[2]") == "b"
                await vm.reset()
                assert await vm.get_global("cfg") is None
                st = await vm.stats()
                assert st["mem_bytes"] > 0
                await vm.set_policy(Policy().allow_import("string"))
                await vm.execute("post(1) post({k = 'v'})")
                assert await vm.recv(timeout=T) == 1
                assert await vm.recv(timeout=T) == {"k": "v"}
                assert [v["name"] for v in await m.list_vms()] == ["api"]
                assert (await m.get_vm("api")).sync is vm.sync
                # mailboxes both ways
                mb = await m.mailbox("inbox")
                waiting = asyncio.ensure_future(
                    vm.execute("local v, f = mailbox.recv(20) "
                               "mailbox.send('inbox', v * 2) return f"))
                assert await m.send_to("api", 21, timeout=T) is True
                assert await mb.recv(timeout=T) == ("api", 42)
                assert await waiting == "@client"
                assert await mb.send("api", 5) is True
                assert await vm.execute("return mailbox.recv(20)") == (5, "inbox")
                await mb.close()
                assert (await m.metrics())["executions"] >= 5
            assert await m.list_vms() == []
            await m.create_vm("x1")
            await m.create_vm("x2")
            assert await m.shutdown_all() == 2
    run(main())


def test_events_by_async_for_and_handlers_on_the_loop():
    async def main():
        m = opened()
        loop_thread = threading.get_ident()
        plain, coro_seen = [], asyncio.Event()
        m.on("timeout", lambda ev: plain.append((ev, threading.get_ident())))  # before open

        async def on_any(ev):
            if ev["type"] == "TIMEOUT":
                coro_seen.set()
        async with m:
            m.on("*", on_any)
            vm = await m.create_vm("ev", timeout=0.3)
            with pytest.raises(ExecutionTimeout):
                await vm.execute("while true do end")
            async for ev in m.events(timeout=T):
                if ev.type == "TIMEOUT":
                    break
            else:
                pytest.fail("no TIMEOUT event within the deadline")
            assert ev.vm == "ev" and isinstance(ev.detail, dict)
            await asyncio.wait_for(coro_seen.wait(), T)
            assert plain and plain[0][0]["vm"] == "ev" and plain[0][1] == loop_thread
            # events() ends when the manager closes
            rest = asyncio.ensure_future(_drain(m))
            await asyncio.sleep(0)
            await m.close()
            await asyncio.wait_for(rest, T)
    run(main())


async def _drain(m):
    return [ev async for ev in m.events()]


def test_plain_and_coroutine_callbacks():
    async def main():
        async with opened() as m:
            helper = await m.create_vm("helper")
            await helper.execute("function triple(x) return 3 * x end")
            threads = []

            def add(a, b):
                threads.append(threading.get_ident())
                return a + b

            async def ask_helper(x):
                # runs on the loop and awaits another VM meanwhile
                threads.append(threading.get_ident())
                return await helper.call("triple", x)

            async def fail(x):
                raise ValueError("bad %r" % (x,))
            vm = await m.create_vm("cb", callbacks={"add": add, "ask": ask_helper,
                                                    "fail": fail})
            assert await vm.execute("return add(2, 3)") == 5
            assert await vm.execute("return ask(14)") == 42
            with pytest.raises(LuaError, match="ValueError"):
                await vm.execute("fail(1)")
            # callbacks from many VMs at once while the loop is busy awaiting
            vms = [vm] + [await m.create_vm("cb%d" % i, callbacks={"ask": ask_helper})
                          for i in range(3)]
            got = await asyncio.gather(*(vms[i % 4].execute("return ask(%d)" % i)
                                         for i in range(40)))
            assert got == [3 * i for i in range(40)]
            loop_thread = threading.get_ident()
            assert threads[0] != loop_thread and threads[1] == loop_thread
    run(main())


def test_cancelling_one_await_leaves_the_rest_and_the_connection_fine():
    async def main():
        async with opened() as m:
            vm = await m.create_vm("c", echo=False)
            other = await m.create_vm("o", echo=False)
            # blocks in the VM until we send it something
            blocked = asyncio.ensure_future(vm.execute("return mailbox.recv(30)"))
            queued = asyncio.ensure_future(vm.execute("return 'after'"))
            busy = [asyncio.ensure_future(other.execute("return %d" % i)) for i in range(200)]
            await asyncio.sleep(0)
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked
            # a wait_for timeout cancels the same way
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(vm.execute("return 'late'"), 0.05)
            assert await asyncio.wait_for(asyncio.gather(*busy), T) == list(range(200))
            assert not queued.done()          # the VM is still in the cancelled call
            assert await m.send_to("c", "go", timeout=T) is True   # its reply is dropped
            assert await asyncio.wait_for(queued, T) == "after"
            assert await vm.execute("return 7") == 7
            assert await m.ping()
    run(main())


def test_coexists_with_a_sync_manager(manager):
    """A sync VMManager and an AsyncVMManager in one process, both on their own
    connection to one manager, plus sync calls on the async one's connection
    from a thread while awaits are in flight."""
    sync_vm = manager.create_vm("s", echo=False)

    async def main():
        async with AsyncVMManager(manager.address) as m:
            avm = await m.create_vm("a", echo=False)

            def sync_work():
                # the async manager's own connection, used synchronously
                twin = m.sync.get_vm("a")
                return [sync_vm.execute("return %d" % i) + twin.execute("return 1")
                        for i in range(200)]
            threaded = asyncio.get_running_loop().run_in_executor(None, sync_work)
            got = await asyncio.gather(*(avm.execute("return %d" % i) for i in range(500)))
            assert got == list(range(500))
            assert await asyncio.wait_for(threaded, T) == [i + 1 for i in range(200)]
            names = sorted(v["name"] for v in await m.list_vms())
            assert "a" in names
        assert sync_vm.execute("return 'still here'") == "still here"
    run(main())
    assert manager.ping()


def test_close_cleans_up_and_fails_pending_awaits():
    async def main():
        m = await opened().open()
        vm = await m.create_vm("p")
        stuck = asyncio.ensure_future(vm.execute("return mailbox.recv(30)"))
        await asyncio.sleep(0)
        await close_and_check(m)
        with pytest.raises(ManagerError):
            await asyncio.wait_for(stuck, T)
        with pytest.raises(ManagerError):
            await m.create_vm("q")
        await m.close()     # idempotent
        assert m.closed
    run(main())


def test_not_open_and_wrong_loop_are_clear_errors():
    m = AsyncVMManager(start_timeout=20.0)
    with pytest.raises(ManagerError, match="not open"):
        run(m.list_vms())
    run(m.open())            # opened on one loop ...
    try:
        with pytest.raises(RuntimeError, match="another event loop"):
            run(m.list_vms())   # ... used on another
        assert m.sync.list_vms() == []   # the sync side works from any thread
    finally:
        m.sync.close()


def test_coroutine_callbacks_hold_no_thread_while_they_wait():
    """20 VMs (more than the 8 callback threads) sit in one async callback at
    once: it returns only when all of them are in."""
    async def main():
        async with opened() as m:
            n, entered, all_in = 20, [0], asyncio.Event()

            async def rendezvous(i):
                entered[0] += 1
                if entered[0] == n:
                    all_in.set()
                await all_in.wait()
                return i * 10
            vms = [await m.create_vm("r%d" % i, timeout=T, callbacks={"meet": rendezvous})
                   for i in range(n)]
            base = threading.active_count()
            got = await asyncio.wait_for(asyncio.gather(
                *(vm.execute("return meet(%d) + 1" % i) for i, vm in enumerate(vms))), T)
            assert got == [i * 10 + 1 for i in range(n)]
            assert threading.active_count() <= base + 8     # the callback pool at most
    run(main())


def test_concurrent_opens_start_one_manager_and_close_waits_for_a_start():
    async def main():
        m = opened()
        a, b = await asyncio.gather(m.open(), m.open())
        assert a is b is m and await m.ping()
        await close_and_check(m)
        m2 = opened()
        opening = asyncio.ensure_future(m2.open())
        await asyncio.sleep(0)
        await m2.close()              # the start under way finishes, then closes
        assert (await opening) is m2 and m2.closed
    run(main())


def test_event_buffer_keeps_the_newest_10000():
    """Like the sync buffer: bounded, the oldest events dropped first."""
    async def main():
        async with opened() as m:
            n, last = 10050, asyncio.Event()
            m.on("security_violation",
                 lambda ev: ev["detail"].get("target") == "/x/%d" % n and last.set())
            vm = await m.create_vm("spam", echo=False)
            assert await vm.execute("local n = 0 for i = 1, %d do "
                                    "if not pcall(fs.read, '/x/' .. i) then n = n + 1 end "
                                    "end return n" % n, timeout=T) == n
            await asyncio.wait_for(last.wait(), T)       # every event is in the buffer
            got = [ev.detail["target"] async for ev in m.events(timeout=0.5)]
            assert got == ["/x/%d" % i for i in range(n - 10000 + 1, n + 1)]
    run(main())


def test_asyncio_example_runs():
    import subprocess
    import sys
    from conftest import REPO
    r = subprocess.run([sys.executable, str(REPO / "examples" / "asyncio_usage.py")],
                       cwd=REPO, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    for word in ("-> 42", "sum 2664667000", "-> 15 x 12", "bad input", "ExecutionTimeout",
                 "TIMEOUT slow", "worker3"):
        assert word in r.stdout, (word, r.stdout)


def test_async_for_over_a_stream_gets_items_before_the_script_ends():
    """The script yields 1, then waits for mail the test sends only after it
    has item 1: the order proves the item came while the script ran."""
    async def main():
        m = await opened().open()
        try:
            vm = await m.create_vm("streamer", echo=False, timeout=30.0)
            code = ("print('start') coroutine.yield(1) "
                    "local v = mailbox.recv() post(v) return 'done', v")
            seen = []
            async with vm.stream(code) as s:
                async for item in s:
                    seen.append((item.kind, item.value))
                    if item.kind == "yield":
                        await m.send_to("streamer", "go")
            assert seen == [("print", "start"), ("yield", (1,)), ("post", "go"),
                            ("result", ("done", "go"))]
            # errors raise from the iteration, after the items before them
            items = []
            with pytest.raises(LuaError, match="boom"):
                async for item in vm.stream("coroutine.yield(7) error('boom')"):
                    items.append(item.value)
            assert items == [(7,)]
            # leaving early cancels; the VM stays usable
            async with vm.stream("for i = 1, 1e9 do coroutine.yield(i) end") as s:
                assert (await s.next(T)).value == (1,)
            assert await vm.execute("return 41 + 1") == 42
        finally:
            await close_and_check(m)
    run(main())


def test_async_sessions_and_projects():
    async def main():
        m = await opened().open()
        try:
            async with await m.create_session("alice") as s:
                assert await s.run("x = 10") is None
                assert await s.run("x + 5") == 15
                await s.set_state({"cfg": {"debug": True}})
                assert await s.get_state() == {"x": 10, "cfg": {"debug": True}}
                await s.reset()
                assert await s.get_state() == {}
            with pytest.raises(VMExists):
                await m.create_session("bob")
                await m.create_session("bob")
            got = await m.run_project(
                {"/main.lua": "return require('util').twice(21)",
                 "/util.lua": "return {twice = function(x) return 2 * x end}"},
                "/main.lua")
            assert got == 42
            names = {v["name"] for v in await m.list_vms()}
            assert "session.alice" not in names
            assert not any(n.startswith("project.") for n in names)
        finally:
            await close_and_check(m)
    run(main())


def test_async_pool_run_map_and_warmup():
    async def main():
        m = await opened(pool_min=2, pool_max=4).open()
        try:
            assert await m.warmup_pool() == 2
            got = await asyncio.gather(*(m.run("return n * n", globals={"n": i})
                                         for i in range(50)))
            assert got == [i * i for i in range(50)]
            assert await m.run("1 + 2", expr=True) == 3
            assert await m.map("function(x) return x + 1 end", range(20),
                               chunksize=3) == list(range(1, 21))
            with pytest.raises(LuaError):
                await m.run("error('no')")
            last = (await m.history(1))[0]
            assert last["op"] == "run" and last["error"] == "LUA_ERROR"
        finally:
            await close_and_check(m)
    run(main())
