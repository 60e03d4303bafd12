"""Unit tests of values.py: Python <-> tagged JSON, no manager needed."""

import json
import math

import pytest

from pylua_bioxen_vm import ConversionError, LuaOpaque
from pylua_bioxen_vm.values import from_wire, to_wire


@pytest.mark.parametrize("py, wire", [
    (None, None), (True, True), (False, False), (0, 0), (-(1 << 63), -(1 << 63)),
    ((1 << 63) - 1, (1 << 63) - 1), (4.0, 4.0), ("héllo", "héllo"), ("a\0b", "a\0b"),
    (b"\xff\x00", {"$b": "/wA="}), ([1, "a"], [1, "a"]), ((1, 2), [1, 2]),
    ({"k": [1, {"x": 2.5}]}, {"k": [1, {"x": 2.5}]}), ({}, {}),
    ({1: "a", "b": 2}, {"$map": [[1, "a"], ["b", 2]]}),
    ({"$b": 1}, {"$map": [["$b", 1]]}),
    ({"$b": 1, "c": 2}, {"$b": 1, "c": 2}),
])
def test_to_wire(py, wire):
    assert to_wire(py) == wire
    json.dumps(to_wire(py), allow_nan=False)


def test_special_floats_both_ways():
    for x, tag in ((math.inf, "inf"), (-math.inf, "-inf")):
        assert to_wire(x) == {"$f": tag}
        assert from_wire({"$f": tag}) == x
    assert to_wire(math.nan) == {"$f": "nan"}
    assert math.isnan(from_wire({"$f": "nan"}))


def test_int_stays_int_float_stays_float():
    assert type(from_wire(json.loads("4"))) is int
    assert type(from_wire(json.loads("4.0"))) is float


def test_from_wire_tags():
    assert from_wire({"$b": "/wA="}) == b"\xff\x00"
    assert from_wire({"$map": [[2, "a"], [True, {"$f": "inf"}]]}) == {2: "a", True: math.inf}
    # Python's dict cannot hold Lua's distinct keys 1 and true (1 == True):
    # the later pair wins, as documented in protocol.md "Values"
    assert from_wire({"$map": [[1, "a"], [True, "b"]]}) == {1: "b"}
    assert from_wire({"$t": "function"}) == LuaOpaque("function")
    assert from_wire({"$map": [[[1, 2], "k"]]}) == {(1, 2): "k"}
    assert from_wire({"a": {"$b": ""}, "b": 1}) == {"a": b"", "b": 1}


@pytest.mark.parametrize("bad", [{"$zz": 1}, {"$f": "huge"}, {"$b": "!!"}, {"$map": 3}])
def test_from_wire_bad_tags(bad):
    with pytest.raises(ConversionError):
        from_wire(bad)


@pytest.mark.parametrize("bad", [1 << 63, -(1 << 63) - 1, object(), {1, 2},
                                 LuaOpaque("function"), "\ud800", len])
def test_to_wire_refuses(bad):
    with pytest.raises(ConversionError) as ei:
        to_wire(bad)
    assert isinstance(ei.value, TypeError)


def test_cycles_and_depth():
    a = [1]
    a.append(a)
    with pytest.raises(ConversionError, match="cycle"):
        to_wire(a)
    d = {}
    d["self"] = d
    with pytest.raises(ConversionError, match="cycle"):
        to_wire(d)
    shared = [1]
    assert to_wire([shared, shared]) == [[1], [1]]   # shared is not a cycle
    deep = x = []
    for _ in range(150):
        x.append([])
        x = x[0]
    with pytest.raises(ConversionError, match="deeper"):
        to_wire(deep)
    ok = x = []
    for _ in range(90):
        x.append([])
        x = x[0]
    to_wire(ok)
