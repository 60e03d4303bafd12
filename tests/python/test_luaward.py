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


# LuaWard's API reference, "Complete Example", with only the import changed.
LUAWARD_EXAMPLE = '''
from pylua_bioxen_vm import IsolatedLuaVM

def py_log(msg):
    print(f"[PYTHON LOG] {msg}")

# Secure initialization
vm = IsolatedLuaVM(
    memory_limit=1024 * 1024, # 1 MB
    instruction_limit=10000,
    full_isolation=True,
    callbacks={'log': py_log}
)

try:
    # Code execution
    vm.execute("""
        local x = 10
        local y = 20
        log("Calculation in progress...") -- Python callback call
        result = x + y
    """)

    # Retrieving result via call
    res = vm.call("tostring", 30) # We can call exposed standard functions
    print(f"Result: {res}")

except Exception as e:
    print(f"Error: {e}")
finally:
    vm.close()
'''


def test_luaward_complete_example_prints_result_30(tmp_path):
    import os
    import subprocess
    import sys
    script = tmp_path / "example.py"
    script.write_text(LUAWARD_EXAMPLE)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "[PYTHON LOG] Calculation in progress..." in out.stdout, out.stdout + out.stderr
    assert "Result: 30" in out.stdout, out.stdout + out.stderr


def test_luaward_documented_builtin_exceptions_everywhere(manager):
    """LuaWard says execute raises RuntimeError on a Lua error and
    TimeoutError on a time or instruction limit; bioxen's own classes are
    those builtins too, on the plain VMManager as on the LuaWard face."""
    from pylua_bioxen_vm import ExecutionTimeout, MemoryLimitExceeded
    vm = manager.create_vm("builtins", instruction_limit=100_000)
    with pytest.raises(RuntimeError) as e:
        vm.execute("error('no')")
    assert isinstance(e.value, LuaError) and "no" in str(e.value)
    with pytest.raises(TimeoutError) as e:
        vm.execute("while true do end")
    assert isinstance(e.value, InstructionLimitExceeded)
    big = manager.create_vm("big", memory_limit=8 << 20)
    with pytest.raises(MemoryError) as e:
        big.execute("local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end")
    assert isinstance(e.value, MemoryLimitExceeded)
    slow = manager.create_vm("slow", timeout=0.3)
    with pytest.raises(TimeoutError) as e:
        slow.execute("local t = os.clock() while os.clock() - t < 5 do end")
    assert isinstance(e.value, ExecutionTimeout)
    # still usable after the recoverable ones, and the bioxen style still works
    assert vm.execute("return 1 + 1") == 2
    with IsolatedLuaVM(instruction_limit=10_000, timeout=5.0) as lw:
        try:
            lw.execute("while true do end")
        except TimeoutError:
            pass
        else:
            raise AssertionError("no TimeoutError from an instruction limit")
        try:
            lw.execute("error('x')")
        except RuntimeError:
            pass
        else:
            raise AssertionError("no RuntimeError from a Lua error")
