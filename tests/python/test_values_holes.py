"""A Python list with None in it keeps its shape through Lua (issue 11 §6,
docs/protocol.md "Values"): every path into Lua and every path out, and
what happens once Lua changes such a table."""

import os
from pathlib import Path

import pytest

from pylua_bioxen_vm import ConversionError, MemoryLimitExceeded, StreamItem

T = 30.0  # deadline for every wait; only catches hangs

HOLEY = [[1, None, 3], [None], [1, 2, None], [None, None, "x"],
         [[None], {"k": [None, 1]}, [1, [None, None]]]]


@pytest.fixture
def vm(manager):
    v = manager.create_vm("holes")
    v.execute("function id(...) return ... end")
    return v


@pytest.mark.parametrize("value", HOLEY)
def test_call_args_and_returns(vm, value):
    assert vm.call("id", value) == value
    assert vm.call("id", 1, value, None) == (1, value, None)


def test_globals_both_ways(vm):
    vm.set_globals({"g%d" % i: v for i, v in enumerate(HOLEY)})
    for i, v in enumerate(HOLEY):
        assert vm.get_global("g%d" % i) == v
        assert vm.execute("return g%d" % i) == v


def test_lua_sees_an_ordinary_table(vm):
    vm.set_globals({"t": [1, None, 3], "e": [None], "tail": [1, 2, None]})
    # no metatable, no extra field; # and ipairs are Lua's own on such a table
    r = vm.execute("local function n(t) local c = 0 for _ in ipairs(t) do c = c + 1 end return c end\n"
                   "local keys = 0 for _ in pairs(t) do keys = keys + 1 end\n"
                   "return getmetatable(t) == nil, keys, n(t), #e, next(e) == nil, #tail, n(tail)")
    assert r == (True, 2, 1, 0, True, 2, 2)
    assert vm.execute("local b = {1, nil, 3} return #t == #b") is True


def test_changes_in_lua(vm):
    vm.set_globals({"t": [1, None, 3]})
    # filling or emptying slots inside the declared length keeps it
    assert vm.execute("t[2] = 2 return t") == [1, 2, 3]
    assert vm.execute("t[3] = nil return t") == [1, 2, None]
    assert vm.execute("t[1], t[2] = nil, nil return t") == [None, None, None]
    # a key outside 1..n: the ordinary rules (here a $map)
    assert vm.execute("t[1] = 'a' t[5] = 'e' return t") == {1: "a", 5: "e"}
    assert vm.execute("t[5] = nil return t") == ["a", None, None]
    assert vm.execute("t.name = 'x' return t") == {1: "a", "name": "x"}
    # table.insert appends past the border (#t), as in plain Lua
    vm.set_globals({"u": [1, None, 3]})
    assert vm.execute("return #u") == 3
    assert vm.execute("table.insert(u, 4) return u") == {1: 1, 3: 3, 4: 4}
    # a copy made in Lua is a new table: Lua's rules only
    vm.set_globals({"v": [1, None, 3]})
    assert vm.execute("local c = {} for k, x in pairs(v) do c[k] = x end return c") == {1: 1, 3: 3}


def test_a_table_built_in_lua_is_unchanged(vm):
    assert vm.execute("return {1, nil, 3}") == {1: 1, 3: 3}
    assert vm.execute("return {}") == {}


def test_callbacks_both_ways(manager):
    seen = []
    vm = manager.create_vm("cbholes", callbacks={
        "give": lambda: [1, None, 3],
        "take": lambda *a: seen.append(a),
        "many": lambda: (None, [None], 2),
    })
    assert vm.execute("return give()") == [1, None, 3]
    assert vm.execute("local a, b, c = many() return a, b, c") == (None, [None], 2)
    vm.execute("take(give(), 5)")
    assert seen == [([1, None, 3], 5)]


def test_mailbox_both_ways(manager):
    a = manager.create_vm("mba")
    b = manager.create_vm("mbb")
    with manager.mailbox("holes-inbox") as mb:
        fb = b.execute_async("local v = mailbox.recv(20) mailbox.send('holes-inbox', v) return v")
        assert manager.send_to("mba", [1, None, [None]]) is True
        # Python -> a, a -> b (Lua to Lua), b -> Python
        fa = a.execute_async("local v = mailbox.recv(20) mailbox.send('mbb', v) return v")
        assert fa.result(T) == [1, None, [None]]
        assert fb.result(T) == [1, None, [None]]
        assert mb.recv(timeout=T) == ("mbb", [1, None, [None]])


def test_post_and_stream(vm):
    vm.set_globals({"t": [None, 2, None]})
    vm.execute("post(t)")
    assert vm.recv(timeout=T) == [None, 2, None]
    items = list(vm.stream("post(t) coroutine.yield(t) return t"))
    assert items == [StreamItem("post", [None, 2, None]), StreamItem("yield", ([None, 2, None],)),
                     StreamItem("result", [None, 2, None])]


def test_pool_run_globals(make_manager):
    m = make_manager()
    assert m.run("return g", globals={"g": [1, None, 3]}) == [1, None, 3]
    assert m.run("return g", globals={"g": [None]}) == [None]


def test_session_state(manager):
    s = manager.create_session("holes")
    state = {"a": [1, None, 3], "b": {"deep": [None, [None]]}}
    s.set_state(state)
    assert s.get_state() == state


def test_large_declared_length_is_bounded(vm):
    # the length comes from the JSON array itself, and the size caps apply
    big = [None] * 200000 + [1]
    assert vm.call("id", big) == big
    vm.set_globals({"g": [None] * 1000000})
    # 20 times a million nulls is over the 16 MiB JSON cap
    with pytest.raises(ConversionError, match="too large"):
        vm.execute("local t = {} for i = 1, 20 do t[i] = g end return t")
    assert vm.execute("return #g, g == nil") == (0, False)


def node_binary():
    """The node the manager runs (manager/main.c: $BIOXEN_VMNODE, else beside it)."""
    if os.environ.get("BIOXEN_VMNODE"):
        return Path(os.environ["BIOXEN_VMNODE"])
    return Path(os.environ.get("BIOXEN_MANAGER", "")).parent.parent / "vmnode" / "bioxen-vmnode"


def asan_node():
    try:
        return b"libasan.so" in node_binary().read_bytes()
    except OSError:
        return False


# ASan holds freed memory in its quarantine (hundreds of MB), so RSS says
# nothing there; tests/c/test_convert.c catches the leak under LeakSanitizer.
@pytest.mark.skipif(asan_node(), reason="RSS is meaningless under ASan's quarantine")
def test_set_globals_over_the_memory_limit_does_not_grow_the_node(manager):
    # Each set_globals raises a memory error in the middle of the JSON -> Lua
    # walk. The walk's context lives outside the Lua heap: lost once per
    # raise (~8 KiB), 1200 raises grew the node by ~5 MB.
    v = manager.create_vm("leak", memory_limit=64 << 10)
    big = {"x": [0] * 5000}    # one 80 KB table: over the limit at once

    def burst(n):
        for _ in range(n):
            with pytest.raises(MemoryLimitExceeded):
                v.set_globals(big)

    burst(200)      # the allocator's arenas settle
    before = v.stats()["rss_bytes"]
    burst(1200)
    grew = v.stats()["rss_bytes"] - before
    assert grew < 1 << 20, "node RSS grew by %d bytes" % grew
    assert v.execute("return x == nil, 1 + 1") == (True, 2)
