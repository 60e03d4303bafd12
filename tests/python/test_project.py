"""Multi-file projects (issue 6 item 4): require resolves among mocks, the
project's files and the policy's imports only; the throwaway VM is gone
afterwards, whatever happened."""

import time

import pytest

from pylua_bioxen_vm import (InvalidRequest, LuaError, LuaSyntaxError, PolicyViolation,
                             Policy)
from conftest import Raw

DEADLINE = 60.0

UTIL = "loads = (loads or 0) + 1\nreturn {twice = function(x) return 2 * x end, loads = function() return loads end}"


def project_vms(m):
    return [v["name"] for v in m.list_vms() if v["name"].startswith("project.")]


def test_nested_modules_init_lua_and_caching(manager):
    files = {
        "/main.lua": "local u = require('util')\n"
                     "local h = require('lib.helpers')\n"
                     "local p = require('pkg')\n"
                     "return u.twice(21), h.greet('bo'), p.name, u.loads(), require('util') == u",
        "/util.lua": UTIL,
        "/lib/helpers.lua": "local u = require('util')\n"
                            "return {greet = function(n) return 'hi ' .. n .. u.twice(1) end}",
        "/pkg/init.lua": "return {name = 'pkg:' .. (...)}",
    }
    r = manager.run_project(files=files, entrypoint="/main.lua")
    # util ran once although required from two files and twice in main
    assert r == (42, "hi bo2", "pkg:pkg", 1, True)
    assert project_vms(manager) == []


def test_file_before_init_lua(manager):
    files = {"/main.lua": "return require('a')",
             "/a.lua": "return 'file'", "/a/init.lua": "return 'init'"}
    assert manager.run_project(files, "/main.lua") == "file"


def test_mocks(manager):
    files = {"/main.lua": "local c = require('cfg.db')\n"
                          "return c.host, c.ports[2], require('answer'), require('greeting'),"
                          " require('util'), require('cfg.db') == c",
             "/util.lua": "return 'the file'"}
    mocks = {"cfg.db": {"host": "localhost", "ports": [1, 2]}, "answer": 42,
             "greeting": "hello", "util": "mocked"}
    assert manager.run_project(files, "/main.lua", mocks=mocks) == (
        "localhost", 2, 42, "hello", "mocked", True)     # a mock wins over a file


def next_violation(m):
    end = time.monotonic() + DEADLINE
    for ev in m.events(timeout=DEADLINE):
        if ev.type == "SECURITY_VIOLATION":
            return ev
        assert time.monotonic() < end
    raise AssertionError("no SECURITY_VIOLATION event")


def test_require_outside_project_refused(manager):
    files = {"/main.lua": "require('util')\nreturn require('os_helpers')", "/util.lua": UTIL}
    with pytest.raises(PolicyViolation) as ei:
        manager.run_project(files, "/main.lua")
    msg = str(ei.value)
    assert "os_helpers" in msg and "not in the project or the policy" in msg
    assert "/main.lua:2:" in msg
    ev = next_violation(manager)
    assert ev.detail["action"] == "require" and ev.detail["target"] == "os_helpers"
    assert project_vms(manager) == []
    with pytest.raises(PolicyViolation):   # a path is no module name
        manager.run_project({"/main.lua": "return require('/util.lua')", "/util.lua": UTIL},
                            "/main.lua")


@pytest.fixture
def mm(tmp_path, make_manager):
    mods = tmp_path / "mods"
    (mods / "pkg").mkdir(parents=True)
    (mods / "mymod.lua").write_text("return {v = 42}")
    (mods / "pkg" / "util.lua").write_text("return {twice = function(x) return 2 * x end}")
    (mods / "other.lua").write_text("return 'not granted'")
    return make_manager(module_dir=str(mods))


def test_whitelisted_module_dir_module_loads(mm):
    files = {"/main.lua": "return require('mymod').v, require('pkg.util').twice(4),"
                          " require('local').x",
             "/local.lua": "return {x = 'mine'}"}
    pol = Policy().allow_import("mymod").allow_import("pkg.util")
    assert mm.run_project(files, "/main.lua", policy=pol) == (42, 8, "mine")
    with pytest.raises(PolicyViolation):     # in the module dir, but not granted
        mm.run_project({"/main.lua": "return require('other')"}, "/main.lua", policy=pol)
    assert next_violation(mm).detail["target"] == "other"
    assert project_vms(mm) == []


@pytest.mark.parametrize("path", ["/../x.lua", "rel.lua", "/a/../x.lua", "/a/./x.lua",
                                  "/a//x.lua", "/x.txt", "/a b.lua", "/x.lua/"])
def test_bad_paths_are_invalid_requests(manager, path):
    with pytest.raises(InvalidRequest) as ei:
        manager.run_project({"/main.lua": "return 1", path: "return 2"}, "/main.lua")
    assert "project file" in str(ei.value)
    assert project_vms(manager) == []


def test_bad_arguments(manager):
    with pytest.raises(InvalidRequest):
        manager.run_project({"/main.lua": "return 1"}, "/other.lua")    # no such entrypoint
    with pytest.raises(InvalidRequest):
        manager.run_project({"/main.lua": b"return 1"}, "/main.lua")     # not text
    with pytest.raises(InvalidRequest):
        manager.run_project({"/main.lua": "return 1"}, "/main.lua", mocks={"bad name": 1})
    with pytest.raises(InvalidRequest):
        manager.run_project({"/main.lua": "return 1"}, "/main.lua", mocks={"x": None})
    assert project_vms(manager) == []


def test_errors_carry_the_file_name(manager):
    files = {"/main.lua": "local b = require('lib.bad')\nreturn b",
             "/lib/bad.lua": "local x = nil\nreturn x.y"}
    with pytest.raises(LuaError) as ei:
        manager.run_project(files, "/main.lua")
    assert "/lib/bad.lua:2:" in str(ei.value)
    assert "/lib/bad.lua:2: in main chunk" in ei.value.traceback
    assert "/main.lua:1:" in ei.value.traceback
    with pytest.raises(LuaError) as ei:
        manager.run_project({"/main.lua": "require('s')", "/s.lua": "return = 1"}, "/main.lua")
    assert "/s.lua:1:" in str(ei.value)
    with pytest.raises(LuaSyntaxError) as ei:
        manager.run_project({"/main.lua": "return = 1"}, "/main.lua")
    assert "/main.lua:1:" in str(ei.value)
    assert project_vms(manager) == []


def test_failed_module_can_be_retried_and_cycles_fail(manager):
    files = {"/main.lua": "local ok, e = pcall(require, 'flaky')\n"
                         "local ok2, v = pcall(require, 'flaky')\n"
                         "local ok3, e3 = pcall(require, 'cyc')\n"
                         "return ok, ok2, v, ok3, tostring(e3):find('cycle') ~= nil",
             "/flaky.lua": "tries = (tries or 0) + 1\nif tries == 1 then error('first') end\n"
                           "return tries",
             "/cyc.lua": "return require('cyc')"}
    assert manager.run_project(files, "/main.lua") == (False, True, 2, False, True)


def test_limits_apply_and_vm_goes(manager):
    from pylua_bioxen_vm import InstructionLimitExceeded
    with pytest.raises(InstructionLimitExceeded):
        manager.run_project({"/main.lua": "require('spin')", "/spin.lua": "while true do end"},
                            "/main.lua", instruction_limit=100000)
    assert project_vms(manager) == []


def test_async_projects_concurrently(manager):
    futs = [manager.run_project_async({"/main.lua": "return require('m').v * %d" % i,
                                       "/m.lua": "return {v = 3}"}, "/main.lua")
            for i in range(8)]
    assert [f.result(DEADLINE) for f in futs] == [3 * i for i in range(8)]
    assert project_vms(manager) == []



BAD_PROJECTS = [
    "files", {}, {"files": []}, {"files": {"/a.lua": 3}}, {"files": {}, "extra": 1},
    {"files": {}, "mocks": []}, {"files": {}, "mocks": {"a..b": 1}},
    {"files": {}, "mocks": {"a": {"$t": "function"}}}, {"files": {}, "mocks": {"a": {"$f": "x"}}},
    {"files": {}, "mocks": {"a": {"$b": "!!"}}}, {"files": {}, "mocks": {"a": {"$map": [[None, 1]]}}},
    {"files": {"/m%d.lua" % i: "" for i in range(1025)}},
    {"files": {"/a.lua": "x" * (5 << 20), "/b.lua": "y" * (4 << 20)}},
    {"files": {"/" + "a" * 260 + ".lua": ""}},
]


@pytest.mark.parametrize("bad", BAD_PROJECTS, ids=range(len(BAD_PROJECTS)))
def test_bad_project_on_the_wire(manager, bad):
    c = Raw(manager._core.embedded.socket_path)
    r = c.req(op="create", name="p1", project=bad)
    assert r["error"]["code"] == "BAD_REQUEST", r
    assert "project" in r["error"]["message"]
    assert c.req(op="ping")["result"] == "pong"        # the manager keeps serving
    c.sock.close()


def test_project_on_the_wire(manager):
    c = Raw(manager._core.embedded.socket_path)
    r = c.req(op="create", name="p2", project={
        "files": {"/m.lua": "return {n = 1}"},
        "mocks": {"b": {"$b": "/w=="}, "f": {"$f": "inf"}, "t": {"$map": [[1, "x"], [True, 2]]}}})
    assert "result" in r, r
    r = c.req(op="exec", vm="p2", code="local b, f, t = require('b'), require('f'), require('t')\n"
                                         "return require('m').n, #b, f, t[1], t[true]")
    assert r["result"]["values"] == [1, 1, {"$f": "inf"}, "x", 2]
    assert c.req(op="reset", vm="p2")["result"] is True      # a reset keeps the project
    assert c.req(op="exec", vm="p2", code="return require('m').n")["result"]["values"] == [1]
    c.sock.close()
