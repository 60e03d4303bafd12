"""End-to-end tests of the public API: VMManager and VM handle methods."""

import os
import threading

import pytest

from pylua_bioxen_vm import (ExecResult, InvalidRequest, LuaError, LuaSyntaxError,
                             VMExists, VMNotFound)

T = 30.0  # deadline for any single future


def test_spec_snippet(manager):
    vm = manager.create_vm("vm1", memory_limit=16 << 20, instruction_limit=10_000_000,
                           timeout=2.0)
    assert vm.execute("return math.sqrt(16)") == 4.0
    assert vm.execute_async("return 6 * 7").result(T) == 42
    vm.execute("function greet(n) return 'Hello, ' .. n end")
    assert vm.call("greet", "Python") == "Hello, Python"
    assert vm.function_exists("greet") is True
    assert vm.function_exists("nope") is False
    vm.set_globals({"user": "alice", "n": 3})
    assert vm.get_global("user") == "alice"
    assert vm.execute("return user, n") == ("alice", 3)
    st = vm.stats()
    assert st["pid"] > 0 and st["executions"] >= 1 and "mem_bytes" in st
    assert manager.shutdown_all() >= 1


def test_return_shapes(manager):
    vm = manager.create_vm("shapes")
    assert vm.execute("local x = 1") is None
    assert vm.execute("return nil") is None
    assert vm.execute("return 1, 'a', true") == (1, "a", True)
    assert vm.execute("return nil, 2") == (None, 2)
    r = vm.execute_result("print('hi', 1) return 3, 4")
    assert isinstance(r, ExecResult)
    assert r.values == (3, 4) and r.value == (3, 4)
    assert r.output == "hi\t1\n" and r.duration_ms >= 0 and r.mem_bytes > 0
    assert not r.output_truncated
    assert vm.execute_result("return 5").value == 5


def test_echo_writes_output_after_call(manager, capsys):
    vm = manager.create_vm("echo")
    assert vm.execute("print('from lua') return 1") == 1
    assert capsys.readouterr().out == "from lua\n"
    vm.execute_result("print('quiet')")
    assert capsys.readouterr().out == ""
    quiet = manager.create_vm("noecho", echo=False)
    quiet.execute("print('x')")
    assert capsys.readouterr().out == ""


def test_max_output_truncates(manager):
    vm = manager.create_vm("out", max_output=100)
    r = vm.execute_result("for i = 1, 1000 do print('line', i) end return 1")
    assert r.output_truncated and len(r.output) <= 200 and r.value == 1


def test_globals_persist_and_reset(manager):
    vm = manager.create_vm("state")
    vm.execute("counter = 0")
    for _ in range(3):
        vm.execute("counter = counter + 1")
    assert vm.get_global("counter") == 3
    vm.execute("cfg = {db = {host = 'h'}}")
    assert vm.get_global("cfg.db.host") == "h"
    assert vm.get_global("missing") is None
    vm.reset()
    assert vm.get_global("counter") is None
    assert vm.execute("return 1 + 1") == 2


def test_call_dotted_and_errors(manager):
    vm = manager.create_vm("calls")
    assert vm.call("string.format", "%d-%s", 4, "x") == "4-x"
    assert vm.call("math.max", 3, 9, 2) == 9
    vm.execute("lib = {sub = {f = function(a, b) return a * b, a + b end}}")
    assert vm.call("lib.sub.f", 6, 7) == (42, 13)
    assert vm.function_exists("lib.sub.f") and vm.function_exists("string.format")
    with pytest.raises(LuaError):
        vm.call("no_such_function")
    with pytest.raises(LuaError):
        vm.call("lib")  # a table is not callable


def test_lua_error_carries_message_traceback_output(manager):
    vm = manager.create_vm("err")
    with pytest.raises(LuaError) as ei:
        vm.execute("print('before') error('kaboom')", chunkname="=mychunk")
    e = ei.value
    assert "kaboom" in e.lua_message and "'err'" in str(e)
    assert e.output == "before\n"
    assert "mychunk" in e.lua_message or "mychunk" in e.traceback
    if e.traceback:
        assert e.__cause__ is not None and e.traceback in str(e.__cause__)
    with pytest.raises(LuaSyntaxError):
        vm.execute("return +")
    assert vm.execute("return 'still fine'") == "still fine"


def test_execute_file_uses_basename_chunkname(manager, tmp_path):
    p = tmp_path / "script.lua"
    p.write_text("x = 10\nreturn x * 2\n")
    vm = manager.create_vm("file")
    assert vm.execute_file(str(p)) == 20
    bad = tmp_path / "broken.lua"
    bad.write_text("\n\nerror('line three')\n")
    with pytest.raises(LuaError, match="broken.lua:3"):
        vm.execute_file(str(bad))


def test_get_vm_list_vms_and_close(manager):
    a = manager.create_vm("a")
    manager.create_vm("b", networked=False)
    assert manager.get_vm("a") is a
    names = {v["name"] for v in manager.list_vms()}
    assert {"a", "b"} <= names
    info = next(v for v in manager.list_vms() if v["name"] == "a")
    assert info["pid"] == a.stats()["pid"]
    with pytest.raises(VMNotFound):
        manager.get_vm("zzz")
    pid = a.stats()["pid"]
    a.close()
    a.close()  # idempotent
    with pytest.raises(VMNotFound):
        a.execute("return 1")
    assert "a" not in {v["name"] for v in manager.list_vms()}
    from conftest import wait_gone
    assert not wait_gone([pid])
    with manager.create_vm("ctx") as c:
        assert c.execute("return 1") == 1
    assert "ctx" not in {v["name"] for v in manager.list_vms()}


def test_duplicate_and_bad_names_and_limits(manager):
    manager.create_vm("dup")
    with pytest.raises(VMExists, match="dup"):
        manager.create_vm("dup")
    assert manager.get_vm("dup").execute("return 1") == 1  # first one unharmed
    for bad in ("", "has space", "x" * 65, "semi;colon", "ü"):
        with pytest.raises(InvalidRequest, match="name"):
            manager.create_vm(bad)
    for kw in ({"memory_limit": -1}, {"timeout": -0.5}, {"instruction_limit": 1.5},
               {"max_output": "big"}, {"cpu_limit": float("nan")}):
        with pytest.raises(InvalidRequest, match=next(iter(kw))):
            manager.create_vm("lim", **kw)
    with pytest.raises(ValueError):  # InvalidRequest is also a ValueError
        manager.create_vm("lim", memory_limit=-5)


def test_default_limits_apply(make_manager):
    m = make_manager(instruction_limit=100_000)
    vm = m.create_vm("d")
    from pylua_bioxen_vm import InstructionLimitExceeded
    with pytest.raises(InstructionLimitExceeded):
        vm.execute("while true do end")


def test_metrics(manager):
    vm = manager.create_vm("m")
    for i in range(5):
        vm.execute("return %d" % i)
    with pytest.raises(LuaError):
        vm.execute("error('x')")
    mt = manager.metrics()
    assert mt["executions"] >= 6 and mt["errors"] >= 1
    for k in ("vms", "error_rate", "avg_ms", "p99_ms", "peak_mem_bytes"):
        assert k in mt


def test_many_threads_share_one_vm(manager):
    vm = manager.create_vm("shared")
    vm.execute("function sq(x) return x * x end")
    errors, results = [], {}

    def worker(t):
        try:
            for i in range(50):
                results[(t, i)] = vm.call("sq", t * 100 + i)
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(T)
    assert not errors
    assert all(v == (k[0] * 100 + k[1]) ** 2 for k, v in results.items())
    assert len(results) == 400


def test_events_from_timeout(manager):
    seen = threading.Event()
    got = []
    manager.on("timeout", lambda ev: (got.append(ev), seen.set()))
    vm = manager.create_vm("ev", timeout=0.3)
    from pylua_bioxen_vm import ExecutionTimeout
    with pytest.raises(ExecutionTimeout):
        vm.execute("while true do end")
    assert seen.wait(T), "no TIMEOUT event delivered"
    assert got[0]["vm"] == "ev" and got[0]["type"] == "TIMEOUT"
    ev = next(e for e in manager.events(timeout=T) if e.type == "TIMEOUT")
    assert ev.vm == "ev" and isinstance(ev.detail, dict)


def test_manager_context_and_idempotent_close():
    from conftest import descendants, wait_gone
    from pylua_bioxen_vm import ManagerError, VMManager
    with VMManager() as m:
        vm = m.create_vm("x")
        assert vm.execute("return 1") == 1
        procs = [m._core.embedded.proc.pid] + descendants(m._core.embedded.proc.pid)
    assert not wait_gone(procs)
    m.close()
    with pytest.raises(VMNotFound):
        vm.execute("return 1")
    with pytest.raises(ManagerError):
        m.list_vms()


def test_connect_to_running_manager_by_address(manager):
    from pylua_bioxen_vm import VMManager
    addr = manager.address
    path = addr[len("unix:"):]
    for a in (addr, path):
        with VMManager(a) as other:
            v = other.create_vm("remote-%d" % len(a))
            assert v.execute("return 'over there'") == "over there"
    # the other connection's VMs die with it, ours stays
    assert not any(v["name"].startswith("remote-") for v in manager.list_vms())


def test_forgotten_manager_is_cleaned_up():
    import gc
    from conftest import wait_gone
    from pylua_bioxen_vm import VMManager
    m = VMManager()
    m.create_vm("lost").execute("return 1")
    pid = m._core.embedded.proc.pid
    del m
    gc.collect()
    assert not wait_gone([pid])


def test_missing_binary_gives_clear_error():
    from pylua_bioxen_vm import ManagerError, VMManager
    with pytest.raises(ManagerError, match="/nonexistent/bioxen-manager"):
        VMManager(manager_path="/nonexistent/bioxen-manager", start_timeout=5)


def test_persistent_vm_outlives_its_connection(manager):
    from pylua_bioxen_vm import VMManager
    with VMManager(manager.address) as other:
        other.create_vm("keeper", persistent=True).execute("mark = 'kept'")
        other.create_vm("goner")
    names = {v["name"] for v in manager.list_vms()}
    assert "keeper" in names and "goner" not in names
    assert manager.get_vm("keeper").get_global("mark") == "kept"


def test_star_handler_sees_every_event(manager):
    seen = threading.Event()
    types = []
    manager.on("*", lambda ev: (types.append(ev["type"]), seen.set()))
    from pylua_bioxen_vm import InstructionLimitExceeded
    vm = manager.create_vm("star", instruction_limit=10_000)
    with pytest.raises(InstructionLimitExceeded):
        vm.execute("while true do end")
    assert seen.wait(T) and types


def test_manager_death_fails_pending_and_takes_nodes_along(make_manager):
    import signal as _signal
    from conftest import descendants, wait_gone
    from pylua_bioxen_vm import ManagerError
    m = make_manager()
    vm = m.create_vm("orphan")
    mpid = m._core.embedded.proc.pid
    nodes = descendants(mpid)
    fut = vm.execute_async("while true do end")
    os.kill(mpid, _signal.SIGKILL)
    with pytest.raises(ManagerError):
        fut.result(T)
    with pytest.raises(ManagerError):
        vm.execute("return 1")
    assert nodes and not wait_gone(nodes)


def test_call_per_call_limits(manager):
    from pylua_bioxen_vm import ExecutionTimeout, InstructionLimitExceeded
    vm = manager.create_vm("callim")
    vm.execute("function spin() while true do end end function ok(x) return x end")
    with pytest.raises(InstructionLimitExceeded):
        vm.call("spin", instruction_limit=10_000)
    with pytest.raises(ExecutionTimeout):
        vm.call("spin", timeout=0.3)
    assert vm.call("ok", 5, timeout=5) == 5
    r = vm.call_result("ok", "x")
    assert r.value == "x" and r.values == ("x",)
