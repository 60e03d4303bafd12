"""IsoBox's own API examples (its API.md), in Python with the guest code in
Lua, run against a real manager and real nodes (issue 15 §3).

IsoBox is TypeScript, so there is no literal face: each example below is
the nearest bioxen call, as the table in docs/python.md maps them.  What
IsoBox adds over the rest of the suite: ``filename`` in error messages,
per-run ``context`` that never leaks into the next run, ``metrics()``'s
``total_duration_ms``, the opt-in ``METRICS_RECORDED`` event, a
``severity`` on every ``SECURITY_VIOLATION``, import families
(``allow_import("mylib.*")``, IsoBox's ``@scope/*``) and the Lua ``type``
of a result.
"""

import asyncio
import time

import pytest

from pylua_bioxen_vm import ExecutionTimeout, InvalidRequest, LuaError, Policy, PolicyViolation
from pylua_bioxen_vm.aio import AsyncVMManager
from test_isolation import _testhooks_node  # noqa: F401  (the seccomp example)

DEADLINE = 30.0


def next_events(m, kind, n=1, timeout=DEADLINE):
    """The next n events of type kind (others skipped), with a deadline."""
    out = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        for ev in m.events(timeout=max(0.1, end - time.monotonic())):
            if ev.type == kind:
                out.append(ev)
            if len(out) == n:
                break
    assert len(out) == n, "wanted %d %s events, got %r" % (n, kind, out)
    return out


# -- Simple execution, timeout and filename ----------------------------------

def test_simple_execution(manager):
    # const result = await isobox.run('2 + 2')  -> 4
    assert manager.run("2 + 2", expr=True) == 4
    assert manager.run("return 1 + 2") == 3


def test_filename_names_the_chunk_in_errors(manager):
    # isobox.run(userCode, {timeout: 5000, filename: 'user-script.js'})
    code = "local a = 1\nlocal b = 2\nerror('boom')"
    with pytest.raises(LuaError) as ei:
        manager.run(code, timeout=5.0, filename="calc.lua")
    assert "calc.lua:3: boom" in str(ei.value)
    vm = manager.create_vm("named")
    with pytest.raises(LuaError) as ei:
        vm.execute(code, filename="calc.lua")
    assert "calc.lua:3: boom" in str(ei.value)
    assert "calc.lua:3: in main chunk" in (ei.value.traceback or "")
    s = manager.create_session("files")
    with pytest.raises(LuaError, match=r"script\.lua:1: "):
        s.run("nosuch()", filename="script.lua")
    # a syntax error names the file too
    with pytest.raises(LuaError, match=r"broken\.lua:1:"):
        vm.execute("return +", filename="broken.lua")


def test_filename_is_checked(manager):
    vm = manager.create_vm("checked")
    for bad in ("", "a\nb", "x" * 256, "tab\there"):
        with pytest.raises(InvalidRequest):
            vm.execute("return 1", filename=bad)
    with pytest.raises(InvalidRequest):
        vm.execute("return 1", filename="a.lua", chunkname="=b")
    # the manager checks the same rules on the wire (a raw request)
    with pytest.raises(InvalidRequest, match="filename"):
        manager._core.conn.blocking(lambda: manager._core.conn.request(
            "exec", {"code": "return 1", "filename": "a\x01b"}, vm="checked"))
    assert vm.execute("return 1", filename="x" * 255) == 1


# -- Sessions -----------------------------------------------------------------

def test_session_examples(manager):
    # session.run('let counter = 0'); counter++ twice; counter -> 2
    s = manager.create_session("user-1")
    s.run("counter = 0")
    s.run("counter = counter + 1")
    s.run("counter = counter + 1")
    assert s.run("counter") == 2
    # const data = []; data.push(1); data.push(2); data.length -> 2
    w = manager.create_session("workflow-1")
    w.run("data = {}")
    w.run("table.insert(data, 1)")
    w.run("table.insert(data, 2)")
    assert w.run("#data") == 2
    # setState / getState / reset
    s.set_state({"username": "alice", "role": "admin"})
    assert s.run("username") == "alice"
    assert s.get_state()["role"] == "admin"
    s.reset()
    assert s.run("username") is None


# -- context: one run's globals -----------------------------------------------

def test_context_is_visible_to_one_run_only(manager):
    s = manager.create_session("ctx")
    s.run("kept = 'before'")
    assert s.run("user.name .. ' ' .. kept", context={"user": {"name": "alice"}}) == "alice before"
    assert s.run("user") is None                    # absent stays absent
    # a context name that existed is back to its value afterwards
    assert s.run("kept", context={"kept": "shadow"}) == "shadow"
    assert s.run("kept") == "before"
    # assignments to other globals persist, as on any run
    s.run("total = x * 2", context={"x": 21})
    assert s.run("total") == 42 and s.run("x") is None
    # an assignment to a context name is the run's own too
    s.run("x = 99", context={"x": 1})
    assert s.run("x") is None


def test_context_is_restored_when_the_run_fails_or_times_out(manager):
    vm = manager.create_vm("ctxfail")
    vm.execute("secret = 'mine'")
    with pytest.raises(LuaError, match="nope"):
        vm.execute("error('nope')", context={"secret": "theirs", "fresh": 1})
    assert vm.execute("return secret, fresh") == ("mine", None)
    with pytest.raises(ExecutionTimeout):
        vm.execute("while true do end", timeout=0.3, context={"secret": "theirs"})
    assert vm.execute("return secret") == "mine"


def test_pool_context_and_globals(manager):
    assert manager.run("return a + b", context={"a": 1, "b": 2}) == 3
    assert manager.run("return a", globals={"a": 5}) == 5
    assert manager.run("return a") is None


def test_async_faces_take_filename_and_context():
    async def main():
        async with AsyncVMManager() as m:
            vm = await m.create_vm("aio")
            assert await vm.execute("return n + 1", context={"n": 1}) == 2
            assert await vm.execute("return n") is None
            with pytest.raises(LuaError, match=r"a\.lua:1:"):
                await vm.execute("error('x')", filename="a.lua")
            s = await m.create_session("aio-s")
            assert await s.run("v * 2", context={"v": 4}) == 8
            assert await m.run("return w", context={"w": "ok"}) == "ok"
            r = await vm.execute_result("return {}", filename="t.lua")
            assert r.type == "table"
    asyncio.run(asyncio.wait_for(main(), 120))


# -- ExecutionResult.type -----------------------------------------------------

def test_result_type(manager):
    vm = manager.create_vm("types")
    cases = {"return 3": "number", "return 2.5": "number", "return 'a'": "string",
             "return true": "boolean", "return {}": "table", "return {1, 2}": "table",
             "return nil": "nil", "return": "nil", "return print": "function"}
    for code, want in cases.items():
        if want == "function":
            continue    # a function does not convert to a value at all
        r = vm.execute_result(code)
        assert r.type == want, (code, r)
    from pylua_bioxen_vm.results import ExecutionResult
    r = vm.execute_result("return 1, 'x', false")
    assert isinstance(r, ExecutionResult)
    assert r.types == ("number", "string", "boolean") and r.value == (1, "x", False)
    assert r.duration_ms >= 0 and r.mem_bytes > 0


# -- Metrics ------------------------------------------------------------------

def test_metrics_total_duration(manager):
    vm = manager.create_vm("met")
    before = manager.metrics()["total_duration_ms"]
    for _ in range(5):
        vm.execute("local s = 0 for i = 1, 1e5 do s = s + i end return s")
    m = manager.metrics()
    assert m["total_duration_ms"] > before
    assert m["total_duration_ms"] >= m["max_ms"]
    assert 0.0 <= m["error_rate"] <= 1.0
    # a failed run's time counts too (IsoBox sums every execution)
    with pytest.raises(LuaError):
        vm.execute("local s = 0 for i = 1, 2e6 do s = s + i end error('late')")
    assert manager.metrics()["total_duration_ms"] > m["total_duration_ms"]


def test_metrics_recorded_is_opt_in(manager, make_manager):
    # isobox.on('metrics:recorded', m => { if (m.duration > 1000) ... })
    vm = manager.create_vm("rec")
    vm.execute("return 1")
    seen = []
    manager.on("*", lambda ev: seen.append(ev["type"]))
    vm.execute("return 2")
    manager.ping()
    assert "METRICS_RECORDED" not in seen      # nobody asked: never sent
    got = []
    manager.on("METRICS_RECORDED", got.append)
    vm.execute("return 3")
    with pytest.raises(LuaError):
        vm.execute("error('x')")
    evs = next_events(manager, "METRICS_RECORDED", 2)
    ok, bad = evs[0].detail, evs[1].detail
    assert ok["ok"] is True and ok["duration_ms"] >= 0 and ok["mem_bytes"] > 0
    assert ok["op"] == "exec" and evs[0].vm == "rec"
    assert bad["ok"] is False and bad["error"] == "LUA_ERROR" and bad["duration_ms"] >= 0
    # pool runs count too, named "run"
    manager.run("return 1")
    ev = next_events(manager, "METRICS_RECORDED")[0]
    assert ev.detail["op"] == "run"
    # another connection that did not ask gets none of them
    other = make_manager()
    ovm = other.create_vm("quiet")
    ovm.execute("return 1")
    assert not [e for e in other.events(timeout=0.3) if e.type == "METRICS_RECORDED"]
    # and the opt-out stops them
    manager.metrics_events(False)
    vm.execute("return 4")
    manager.ping()
    assert not [e for e in manager.events(timeout=0.3) if e.type == "METRICS_RECORDED"]


# -- Security: severity -------------------------------------------------------

@pytest.fixture
def mods(tmp_path):
    d = tmp_path / "mods"
    (d / "mylib" / "a").mkdir(parents=True)
    (d / "mylib" / "a.lua").write_text("return {name = 'mylib.a'}")
    (d / "mylib" / "a" / "b.lua").write_text("return {name = 'mylib.a.b', n = 10}")
    (d / "mylib.lua").write_text("return {name = 'mylib'}")
    (d / "mylibx.lua").write_text("return {name = 'mylibx'}")
    (d / "lodash.lua").write_text("return {add = function(a, b) return a + b end}")
    return str(d)


def test_security_violation_severity(make_manager, tmp_path):
    # isobox.on('security:violation', e => e.severity)
    m = make_manager()
    vm = m.create_vm("sev", policy=Policy().allow_fs(str(tmp_path) + "/*"))
    with pytest.raises(PolicyViolation):
        vm.execute("require('os')")
    assert next_events(m, "SECURITY_VIOLATION")[0].detail["severity"] == "warn"
    with pytest.raises(PolicyViolation):
        vm.execute("return fs.read('/etc/passwd')")
    ev = next_events(m, "SECURITY_VIOLATION")[0]
    assert ev.detail["action"] == "fs_read" and ev.detail["severity"] == "error"
    with pytest.raises(PolicyViolation):
        vm.execute("return fs.read('/proc/self/environ')")
    assert next_events(m, "SECURITY_VIOLATION")[0].detail["severity"] == "critical"


def test_seccomp_kill_is_critical(make_manager, monkeypatch):
    monkeypatch.setenv("BIOXEN_VMNODE", _testhooks_node())
    m = make_manager()
    vm = m.create_vm("victim", full_isolation=True)
    with pytest.raises(Exception, match="seccomp"):
        vm.execute("return __bx_test.execve('/nonexistent')")
    ev = next_events(m, "SECURITY_VIOLATION")[0]
    assert ev.detail["layer"] == "seccomp" and ev.detail["severity"] == "critical"


# -- Module whitelist: exact names and families -------------------------------

def test_import_family(make_manager, mods):
    # ModuleSystem({whitelist: ['lodash', '@scope/*']})
    m = make_manager(module_dir=mods)
    vm = m.create_vm("fam", policy=Policy().allow_import("lodash").allow_import("mylib.*"))
    assert vm.execute("return require('lodash').add(1, 2)") == 3
    assert vm.execute("return require('mylib.a').name") == "mylib.a"
    assert vm.execute("return require('mylib.a.b').name") == "mylib.a.b"
    for refused in ("mylib", "mylibx"):
        with pytest.raises(PolicyViolation, match="refused"):
            vm.execute("return require('%s')" % refused)
        assert next_events(m, "SECURITY_VIOLATION")[0].detail["target"] == refused
    # the stem is granted on its own, if wanted
    both = m.create_vm("both", policy=Policy().allow_import("mylib").allow_import("mylib.*"))
    assert both.execute("return require('mylib').name, require('mylib.a').name") == \
        ("mylib", "mylib.a")


def test_import_family_checks(manager):
    for bad in ("*", "mylib*", "a.*.b", ".*", "mylib.**"):
        with pytest.raises(InvalidRequest):
            Policy().allow_import(bad)
    # the manager refuses the same on the wire
    conn = manager._core.conn
    with pytest.raises(InvalidRequest, match="imports"):
        conn.blocking(lambda: conn.request("create", {"name": "badpol",
                                                      "policy": {"imports": ["a.*.b"]}}))


def test_run_project_with_a_family_and_mocks(make_manager, mods):
    # isobox.runProject({files: [...], entrypoint: '/index.js'}) -> 3, with
    # require: {whitelist: [...], mocks: {fs: mockFS}}
    m = make_manager(module_dir=mods)
    files = {"/index.lua": "local u = require('utils') return u.add(1, 2) + "
                           "require('mylib.a.b').n + require('fsmock').size",
             "/utils.lua": "return {add = function(a, b) return a + b end}"}
    with pytest.raises(PolicyViolation):
        m.run_project(files, "/index.lua", mocks={"fsmock": {"size": 0}})
    assert m.run_project(files, "/index.lua", mocks={"fsmock": {"size": 100}},
                         policy=Policy().allow_import("mylib.*")) == 113


# -- Pool, warmup, shutdown ---------------------------------------------------

def test_pool_warmup_and_streaming(make_manager):
    # new IsoBox({pool: {min: 2, max: 10}}); await isobox.warmupPool()
    m = make_manager(pool_min=2, pool_max=4)
    assert m.warmup_pool(timeout=DEADLINE) >= 2
    assert m.run("return 'x'") == "x"
    # for await (const v of isobox.runStream('yield 1; yield 2; yield 3'))
    vm = m.create_vm("streamer")
    items = [it for it in vm.stream("coroutine.yield(1) coroutine.yield(2) "
                                    "coroutine.yield(3) return 'done'", timeout=DEADLINE)]
    assert [i.value for i in items if i.kind == "yield"] == [(1,), (2,), (3,)]
    assert items[-1].kind == "result"
    m.close()   # await isobox.shutdown()
    assert m.closed
