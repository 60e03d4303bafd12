"""The LuaWard-compatible IsolatedLuaVM."""

import pytest

from conftest import descendants, wait_gone
from pylua_bioxen_vm import InstructionLimitExceeded, IsolatedLuaVM, LuaError


def test_isolated_lua_vm_basics():
    seen = []
    with IsolatedLuaVM(memory_limit=32 << 20, instruction_limit=1_000_000,
                       callbacks={"notify": seen.append}, timeout=5.0) as vm:
        mpid = vm._manager._core.embedded.proc.pid
        procs = [mpid] + descendants(mpid)
        assert vm.execute("return 2 + 3") == 5
        vm.execute("function hello(n) notify(n) return 'hi ' .. n end")
        assert vm.function_exists("hello")
        assert vm.call("hello", "bob") == "hi bob"
        assert seen == ["bob"]
        with pytest.raises(LuaError):
            vm.execute("error('no')")
        with pytest.raises(InstructionLimitExceeded):
            vm.execute("while true do end")
        assert vm.execute_async("return 1").result(30) == 1
    assert not wait_gone(procs)
    vm.close()  # idempotent
