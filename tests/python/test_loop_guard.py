"""A blocking sync call on the event loop of an AsyncVMManager raises a
clear RuntimeError instead of stalling the loop (Connection.check_may_block):
every blocking wait of the sync API, through ``m.sync`` and the ``.sync``
handles.  The same calls from a worker thread, and a plain VMManager used
in a coroutine of a loop of its own (a notebook cell), keep working.  Real
manager and nodes; every wait has a deadline (short ones, so an unguarded
call fails the test instead of hanging it)."""

import asyncio

import pytest

from pylua_bioxen_vm import AsyncVMManager, ExecutionTimeout, VMManager

T = 30.0
BLOCKS = "would block the event loop of this AsyncVMManager"


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, T * 2)
    return asyncio.run(bounded())


def test_every_blocking_wait_refuses_the_loop():
    async def main():
        async with AsyncVMManager(start_timeout=20.0) as m:
            avm = await m.create_vm("g", echo=False, networked=True)
            box = await m.mailbox("g-box")
            session = await m.create_session("g-sess")
            vm, sync = avm.sync, m.sync
            calls = {
                "VMManager.ping()": sync.ping,
                "VMManager.list_vms()": sync.list_vms,
                "VMManager.get_vm()": lambda: sync.get_vm("g"),
                "VMManager.create_vm()": lambda: sync.create_vm("g2"),
                "VMManager.vm_stats()": lambda: sync.vm_stats("g"),
                "VMManager.run()": lambda: sync.run("return 1"),
                "VMManager.map()": lambda: sync.map("function(x) return x end", [1, 2]),
                "VM.execute()": lambda: vm.execute("return 1"),
                "VM.call()": lambda: vm.call("tostring", 1),
                "VM.stats()": vm.stats,
                "VM.recv()": lambda: vm.recv(timeout=0.2),
                "VM.start_server()": lambda: vm.start_server(0),
                "Mailbox.recv()": lambda: box.sync.recv(timeout=0.2),
                "Mailbox.send()": lambda: box.sync.send("g", 1),
                "Session.run()": lambda: session.sync.run("1"),
                "Stream.__next__()": lambda: next(iter(vm.stream("return 1"))),
                "VMManager.events()": lambda: next(sync.events(timeout=0.2)),
                "VMManager.close()": sync.close,
            }
            for name, call in calls.items():
                with pytest.raises(RuntimeError, match=BLOCKS) as e:
                    call()
                assert name in str(e.value), (name, str(e.value))
            # nothing was sent, nothing broke: the loop's own API goes on
            assert await avm.execute("return 6 * 7") == 42
            assert not m.closed
            assert "g2" not in [v["name"] for v in await m.list_vms()]

            # the same sync calls are fine from a worker thread
            def work():
                return (vm.execute("return 2"), sync.vm_stats("g")["executions"] >= 1,
                        sync.ping())
            assert await asyncio.wait_for(asyncio.to_thread(work), T) == (2, True, True)
    run(main())


def test_a_coroutine_callback_cannot_be_deadlocked_by_a_sync_call():
    # Lua calls an async callback, which needs the loop: waiting for that
    # exec on the loop's thread could never end (only the VM's timeout
    # would stop it).  It raises at once instead.
    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    async def main():
        async with AsyncVMManager(start_timeout=20.0) as m:
            avm = await m.create_vm("cb", echo=False, timeout=2.0,
                                    callbacks={"double": double})
            with pytest.raises(RuntimeError, match=BLOCKS):
                avm.sync.execute("return double(21)")
            assert await avm.execute("return double(21)") == 42
            with pytest.raises(ExecutionTimeout):
                await avm.execute("while true do end")
    run(main())


def test_a_plain_manager_in_a_coroutine_still_works():
    # No AsyncVMManager rides on this connection: a notebook cell runs on
    # a loop too, and its plain VMManager must keep working there.
    with VMManager(start_timeout=20.0) as m:
        vm = m.create_vm("nb", echo=False)

        async def cell():
            return vm.execute("return 1 + 1"), m.ping()
        assert run(cell()) == (2, True)


def test_a_closed_loop_is_no_longer_guarded():
    m = AsyncVMManager(start_timeout=20.0)
    run(m.open())
    try:
        # that loop is gone: plain code may use the sync twin
        assert m.sync.ping()
        assert m.sync.create_vm("after", echo=False).execute("return 3") == 3
    finally:
        m.sync.close()
