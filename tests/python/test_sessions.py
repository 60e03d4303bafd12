"""Sessions (issue 6 item 2) and expression mode: a session's state
persists across runs, set_state/get_state round-trip data, reset clears,
sessions are isolated; exec's "expr" evaluates like the lua REPL."""


import pytest

from pylua_bioxen_vm import (InstructionLimitExceeded, InvalidRequest, LuaOpaque,
                             LuaSyntaxError, VMExists, VMNotFound)
from pylua_bioxen_vm.sessions import Session

from conftest import Raw

DEADLINE = 60.0


def test_state_persists_across_runs(manager):
    s = manager.create_session("alice")
    assert isinstance(s, Session) and s.id == "alice" and s.vm.name == "session.alice"
    assert s.run("x = 10") is None
    assert s.run("x + 5") == 15
    assert s.run("function inc() x = x + 1 return x end") is None
    assert s.run("inc()") == 11
    assert s.run("x") == 11
    assert s.run("return x, 'a'") == (11, "a")


def test_expression_vs_statement_mode(manager):
    vm = manager.create_vm("e1")
    assert vm.execute("1 + 1", expr=True) == 2
    assert vm.execute("math.max(3, 7), 'two'", expr=True) == (7, "two")
    assert vm.execute("y = 4", expr=True) is None          # a statement runs as written
    assert vm.execute("local a = y * 2 return a", expr=True) == 8
    assert vm.execute("y", expr=True) == 4
    with pytest.raises(LuaSyntaxError):
        vm.execute("1 + 1")                                 # statement mode: not a chunk
    assert vm.execute_async("y * 3", expr=True).result(DEADLINE) == 12


def test_syntax_error_reports_on_the_original_code(manager):
    s = manager.create_session("syn")
    with pytest.raises(LuaSyntaxError) as ei:
        s.run("for")
    # "return for" would say "unexpected symbol near 'for'"
    assert "<name>" in str(ei.value) and "near <eof>" in str(ei.value)
    with pytest.raises(LuaSyntaxError) as ei:
        s.run("x = = 1")
    assert "exec:1:" in str(ei.value)


def test_set_state_get_state_round_trip(manager):
    s = manager.create_session("rt")
    state = {"cfg": {"name": "x", "list": [1, 2.5, "s", True],
                     "nested": {"deep": {"k": [1, {"z": False}]}}},
             "n": 3, "big": 2 ** 62, "text": "héllo", "raw": b"\xff\x00"}
    s.set_state(state)
    assert s.get_state() == state
    assert s.run("cfg.nested.deep.k[2].z == false and n + 1") == 4


def test_get_state_only_user_data(manager):
    s = manager.create_session("data")
    s.run("function f() return 1 end; co = coroutine.create(f); local hidden = 1")
    s.run("t = {fn = f, v = 2}; flag = false; string_copy = string.upper('a')")
    st = s.get_state()
    assert set(st) == {"t", "flag", "string_copy"}          # no f, co, print, string...
    assert st["t"]["v"] == 2 and st["t"]["fn"] == LuaOpaque("function")
    s.run("print = 5")                                      # a sandbox name given a new value
    assert s.get_state()["print"] == 5


def test_get_state_cycle_is_conversion_error(manager):
    from pylua_bioxen_vm import ConversionError
    s = manager.create_session("cyc")
    s.run("t = {}; t.self = t")
    with pytest.raises(ConversionError):
        s.get_state()
    s.run("t = nil")
    assert s.get_state() == {}


def test_reset_clears_keeps_limits(manager):
    s = manager.create_session("rs", instruction_limit=100000)
    s.set_state({"a": 1})
    s.run("b = 2")
    s.reset()
    assert s.get_state() == {}
    assert s.run("a") is None
    with pytest.raises(InstructionLimitExceeded):
        s.run("while true do end")
    assert s.run("1") == 1                               # still usable


def test_sessions_isolated(manager):
    a, b = manager.create_session("a"), manager.create_session("b")
    a.run("secret = 'alice'")
    assert b.run("secret") is None
    b.set_state({"secret": "bob"})
    assert a.run("secret") == "alice"
    assert a.get_state() == {"secret": "alice"} and b.get_state() == {"secret": "bob"}


def test_ids_lookup_close(manager):
    s = manager.create_session("look")
    assert manager.get_session("look") is s
    with pytest.raises(VMExists):
        manager.create_session("look")
    for bad in ("", "a b", "x" * 57, "../x", 5):
        with pytest.raises(InvalidRequest):
            manager.create_session(bad)
    with pytest.raises(VMNotFound):
        manager.get_session("nobody")
    with s:
        pass                                              # context manager closes
    assert "session.look" not in [v["name"] for v in manager.list_vms()]
    with pytest.raises(VMNotFound):
        manager.get_session("look")
    s.close()                                             # idempotent
    assert manager.create_session("look").run("1") == 1   # the id is free again


def test_run_async_in_order(manager):
    s = manager.create_session("order")
    s.run("n = 0")
    futs = [s.run_async("n = n + 1") for _ in range(20)] + [s.run_async("n")]
    assert [f.result(DEADLINE) for f in futs] == [None] * 20 + [20]



def test_wire_expr_and_get_state(manager):
    c = Raw(manager._core.embedded.socket_path)
    assert "result" in c.req(op="create", name="raw1")
    r = c.req(op="exec", vm="raw1", code="1", expr="yes")
    assert r["error"]["code"] == "BAD_REQUEST" and "expr" in r["error"]["message"]
    assert c.req(op="exec", vm="raw1", code="6 * 7", expr=True)["result"]["values"] == [42]
    assert c.req(op="exec", vm="raw1", code="z = 1", expr=False)["result"]["values"] == []
    assert c.req(op="get_state", vm="raw1")["result"] == {"z": 1}
    assert c.req(op="get_state", vm="ghost")["error"]["code"] == "VM_NOT_FOUND"
    c.sock.close()


def test_get_state_too_large_is_conversion_error(manager):
    from pylua_bioxen_vm import ConversionError
    s = manager.create_session("big")
    s.run("a = string.rep('x', 6 << 20); b = a .. 'y'; c = a .. 'z'")   # 18 MiB in all
    with pytest.raises(ConversionError):
        s.get_state()
    s.run("b, c = nil, nil")
    assert len(s.get_state()["a"]) == 6 << 20                 # the VM keeps serving
