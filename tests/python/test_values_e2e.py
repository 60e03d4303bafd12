"""Values across the real boundary, both ways (protocol.md "Values")."""

import math

import pytest

from pylua_bioxen_vm import ConversionError, LuaOpaque


@pytest.fixture
def vm(manager):
    v = manager.create_vm("vals")
    v.execute("function id(...) return ... end\n"
              "function ty(x) return math.type(x) or type(x) end")
    return v


@pytest.mark.parametrize("value", [
    None, True, False, 0, 1, -1, (1 << 63) - 1, -(1 << 63), 1.5, -0.25, 1e300, 4.0,
    "", "text", "ünïcödé ✓", "nul\0inside", b"\xff\xfe\x00", [1, 2, 3], ["a", [1, [2]]],
    {"k": "v", "n": {"deep": [1, 2]}}, {1: "a", 3: "c"}, {1.5: "f", "s": 1},
    {True: "yes"}, {"$b": "look-alike"}, {"$f": 1},
])
def test_roundtrip(vm, value):
    assert vm.call("id", value) == value


def test_special_floats(vm):
    assert vm.call("id", math.inf) == math.inf
    assert vm.call("id", -math.inf) == -math.inf
    assert math.isnan(vm.call("id", math.nan))
    assert vm.execute("return 1/0, -1/0") == (math.inf, -math.inf)
    assert math.isnan(vm.execute("return 0/0"))


def test_int_vs_float_kept(vm):
    assert vm.call("ty", 4) == "integer"
    assert vm.call("ty", 4.0) == "float"
    r = vm.execute("return 3, 3.0, 2^53, math.maxinteger, math.mininteger")
    assert [type(x) for x in r] == [int, float, float, int, int]
    assert r[3] == (1 << 63) - 1 and r[4] == -(1 << 63)


def test_bytes_vs_str(vm):
    assert vm.call("ty", b"abc") == "string"
    assert vm.execute("return 'plain'") == "plain"
    assert vm.execute("return '\\xff\\x00ab'") == b"\xff\x00ab"
    assert vm.call("string.len", b"\x00\x01\x02") == 3
    assert vm.call("string.len", "é") == 2   # UTF-8 bytes in Lua


def test_tables_from_lua(vm):
    assert vm.execute("return {}") == {}
    assert vm.execute("return {1, 2, 3}") == [1, 2, 3]
    assert vm.execute("return {a = 1, b = {c = 'x'}}") == {"a": 1, "b": {"c": "x"}}
    assert vm.execute("return {[1] = 'a', [3] = 'c'}") == {1: "a", 3: "c"}
    assert vm.execute("return {[2.5] = true, [true] = 1}") == {2.5: True, True: 1}
    assert vm.execute("return {1, 2, x = 'y'}") == {1: 1, 2: 2, "x": "y"}
    assert vm.execute("return {['$b'] = 1}") == {"$b": 1}


def test_multiple_returns_tuple(vm):
    assert vm.call("id", 1, "two", [3]) == (1, "two", [3])
    assert vm.call("id") is None


def test_opaque_placeholders(vm):
    assert vm.execute("return print") == LuaOpaque("function")
    assert vm.execute("return coroutine.create(function() end)") == LuaOpaque("thread")
    assert vm.execute("return {f = print}") == {"f": LuaOpaque("function")}
    with pytest.raises(ConversionError):
        vm.call("id", LuaOpaque("function"))


def test_cycles_and_depth(vm):
    with pytest.raises(ConversionError):
        vm.execute("local t = {} t.self = t return t")
    assert vm.execute("return 1") == 1
    with pytest.raises(ConversionError):
        vm.execute("local t = {} local c = t for i = 1, 200 do c[1] = {} c = c[1] end return t")
    a = []
    a.append(a)
    with pytest.raises(ConversionError):
        vm.call("id", a)
    with pytest.raises(ConversionError):
        vm.call("id", 1 << 64)
    with pytest.raises(TypeError):
        vm.call("id", object())
    assert vm.execute("return 'after'") == "after"


def test_set_globals_types(vm):
    vm.set_globals({"b": b"\x00\xff", "f": 2.0, "i": 2, "m": {1: "x"}, "inf": math.inf})
    assert vm.execute("return math.type(f), math.type(i), #b, m[1], inf == math.huge") == \
        ("float", "integer", 2, "x", True)
    assert vm.get_global("b") == b"\x00\xff"
