"""Python callbacks called from Lua."""

import pytest

from pylua_bioxen_vm import LuaError


def test_callbacks(manager):
    logged = []
    other = manager.create_vm("helper")
    other.execute("function triple(x) return 3 * x end")

    def fail(*a):
        raise ValueError("bad input %r" % (a,))
    vm = manager.create_vm("cb", callbacks={
        "log": lambda *a: logged.append(a),
        "add": lambda a, b: a + b,
        "pair": lambda: (1, "two"),
        "fail": fail,
        "ask_other": lambda x: other.call("triple", x),
        "blob": lambda: b"\xff\x00",
    })
    assert vm.execute("log('hi', 2) return 1") == 1
    assert logged == [("hi", 2)]
    assert vm.execute("return add(2, 3)") == 5
    assert vm.execute("local a, b = pair() return b, a") == ("two", 1)
    assert vm.execute("return select('#', log())") == 0
    assert vm.execute("return ask_other(14)") == 42      # callback uses another VM
    assert vm.execute("return blob()") == b"\xff\x00"
    ok, err = vm.execute("return pcall(fail, 1)")
    assert ok is False and "ValueError" in str(err) and "bad input" in str(err)
    with pytest.raises(LuaError, match="ValueError"):
        vm.execute("fail()")
    assert vm.function_exists("log")
    # many callbacks in a loop
    assert vm.execute("local s = 0 for i = 1, 200 do s = add(s, i) end return s") == 20100
