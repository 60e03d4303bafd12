"""Policy grants and refusals end to end (docs/protocol.md "Policy").

A real manager started with --module-dir serves fs.read/fs.lines and
require from temporary files; every refusal must be a PolicyViolation in
Python and a SECURITY_VIOLATION event; set_policy hot-reloads a live VM.
"""

import json
import time

import pytest
from conftest import Raw

from pylua_bioxen_vm import (ExecutionTimeout, InvalidRequest, LuaError, MemoryLimitExceeded,
                             Policy, PolicyViolation, VMManager)

DEADLINE = 20.0
# Catastrophic backtracking inside one C call: only the manager's kill stops it.
BOMB = "return string.find(string.rep('a', 40), string.rep('a*', 30) .. 'b')"


@pytest.fixture
def files(tmp_path):
    """data/ (files a VM may get), outside/ (files it may not), mods/ (module_dir)."""
    data, outside, mods = tmp_path / "data", tmp_path / "outside", tmp_path / "mods"
    for d in (data, outside, mods, mods / "pkg", data / "sub"):
        d.mkdir()
    (data / "a.csv").write_text("x,y\n1,2\nlast")
    (data / "blob.bin").write_bytes(bytes(range(256)) * 4 + b"\0\xff\xfe")
    (outside / "secret.csv").write_text("top secret")
    (data / "link.csv").symlink_to(outside / "secret.csv")
    (data / "linkdir").symlink_to(outside)
    with open(data / "huge.csv", "wb") as f:     # sparse: over the 8 MiB read limit
        f.truncate(9 << 20)
    (mods / "mymod.lua").write_text("count = (count or 0) + 1\n"
                                    "local name = ...\nreturn {name = name, v = 42}")
    (mods / "pkg" / "util.lua").write_text("return {twice = function(x) return 2 * x end}")
    (mods / "probe.lua").write_text(
        "return {io = io, os_execute = os.execute, debug = debug, package = package,\n"
        "        dofile = dofile, loadfile = loadfile,\n"
        "        read = function(p) return fs.read(p) end,\n"
        "        req = function(n) return require(n) end}")
    (mods / "hog.lua").write_text("local t = {} for i = 1, 1e7 do t[i] = i end return t")
    (mods / "spin.lua").write_text("while true do end")
    (mods / "selfish.lua").write_text("return require('selfish')")
    (mods / "escape.lua").symlink_to(outside / "secret.csv")
    return {"data": str(data), "outside": str(outside), "mods": str(mods)}


@pytest.fixture
def pm(files, make_manager):
    """A manager serving files["mods"] as its module directory."""
    return make_manager(module_dir=files["mods"])


def lua_str(s):
    return json.dumps(s)   # a JSON string literal is a valid Lua string literal here


def read(vm, path):
    return vm.execute("return fs.read(%s)" % lua_str(path))


def violations(m, n, timeout=DEADLINE):
    """The next n SECURITY_VIOLATION / POLICY_HOTLOAD events, in order."""
    out = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        for ev in m.events(timeout=max(0.1, end - time.monotonic())):
            if ev.type in ("SECURITY_VIOLATION", "POLICY_HOTLOAD"):
                out.append(ev)
            if len(out) == n:
                break
    assert len(out) == n, out
    return out


# -- fs -----------------------------------------------------------------------

def test_fs_grant_reads_and_lines(pm, files):
    vm = pm.create_vm("fs1", policy=Policy().allow_fs(files["data"] + "/*.csv"))
    assert read(vm, files["data"] + "/a.csv") == "x,y\n1,2\nlast"
    assert read(vm, files["data"] + "//./a.csv") == "x,y\n1,2\nlast"   # normalised
    lines = vm.execute("local t = {} for l in fs.lines(%s) do t[#t + 1] = l end return t"
                       % lua_str(files["data"] + "/a.csv"))
    assert lines == ["x,y", "1,2", "last"]


def test_fs_binary_file_arrives_intact(pm, files):
    path = files["data"] + "/blob.bin"
    vm = pm.create_vm("fs2", policy=Policy().allow_fs(path))
    want = open(path, "rb").read()
    assert vm.execute("local s = fs.read(%s) return #s, s:byte(1), s:byte(-1)" % lua_str(path)) \
        == (len(want), want[0], want[-1])
    assert read(vm, path) == want


@pytest.mark.parametrize("rel,why", [
    ("/../outside/secret.csv", "'..'"),
    ("/link.csv", "symbolic link"),
    ("/linkdir/secret.csv", "symbolic link"),
    ("/sub", "not a regular file"),
])
def test_fs_path_tricks_refused(pm, files, rel, why):
    vm = pm.create_vm("fs3", policy=Policy().allow_fs(files["data"] + "/*")
                      .allow_fs(files["data"] + "/linkdir/*"))
    with pytest.raises(PolicyViolation) as ei:
        read(vm, files["data"] + rel)
    assert why in str(ei.value)
    ev = violations(pm, 1)[0]
    assert ev.vm == "fs3" and ev.detail["action"] == "fs_read"
    assert ev.detail["target"] == files["data"] + rel and why in ev.detail["reason"]


def test_fs_refusals_outside_grants(pm, files):
    vm = pm.create_vm("fs4", policy=Policy().allow_fs(files["data"] + "/*.csv"))
    for path in [files["outside"] + "/secret.csv", "/proc/self/status", "/proc/self/environ",
                 "/dev/zero", "/sys/kernel/hostname", "a.csv", "", files["data"] + "/blob.bin"]:
        with pytest.raises(PolicyViolation):
            read(vm, path)
    # the VM survives all of that, and a caught refusal is an ordinary error
    assert vm.execute("local ok, e = pcall(fs.read, '/etc/passwd') return ok, e:find('refused') ~= nil") \
        == (False, True)


def test_fs_no_policy_no_files(manager, files):
    vm = manager.create_vm("fs5")
    with pytest.raises(PolicyViolation):
        read(vm, files["data"] + "/a.csv")


def test_fs_too_large_and_missing_are_plain_errors(pm, files):
    vm = pm.create_vm("fs6", policy=Policy().allow_fs(files["data"] + "/*.csv"))
    with pytest.raises(LuaError) as ei:
        read(vm, files["data"] + "/huge.csv")
    assert not isinstance(ei.value, PolicyViolation) and "limit" in str(ei.value)
    with pytest.raises(LuaError) as ei:
        read(vm, files["data"] + "/nope.csv")
    assert not isinstance(ei.value, PolicyViolation) and "No such file" in str(ei.value)


# -- require ------------------------------------------------------------------

def test_import_grant_cached_per_vm(pm):
    vm = pm.create_vm("im1", policy=Policy().allow_import("mymod").allow_import("pkg.util"))
    assert vm.execute("local m = require('mymod') return m.name, m.v") == ("mymod", 42)
    assert vm.execute("return require('mymod') == require('mymod'), count") == (True, 1)
    assert vm.execute("return require('pkg.util').twice(21)") == 42


def test_import_refused_and_missing(pm):
    vm = pm.create_vm("im2", policy=Policy().allow_import("ghost"))
    with pytest.raises(PolicyViolation) as ei:
        vm.execute("return require('mymod')")
    assert "not in the policy's imports" in str(ei.value)
    ev = violations(pm, 1)[0]
    assert ev.detail == {"action": "require", "target": "mymod",
                         "reason": "not in the policy's imports", "severity": "warn"}
    with pytest.raises(LuaError) as ei:
        vm.execute("return require('ghost')")
    assert not isinstance(ei.value, PolicyViolation)
    assert "module 'ghost' not found" in str(ei.value)


def test_import_symlink_out_of_module_dir_refused(pm):
    vm = pm.create_vm("im3", policy=Policy().allow_import("escape"))
    with pytest.raises(PolicyViolation) as ei:
        vm.execute("return require('escape')")
    assert "outside the module directory" in str(ei.value)


def test_module_reaches_nothing_the_vm_cannot(pm, files):
    vm = pm.create_vm("im4", policy=Policy().allow_import("probe"))
    assert vm.execute("local p = require('probe') return p.io == nil, p.os_execute == nil, "
                      "p.debug == nil, p.package == nil, p.dofile == nil, p.loadfile == nil") \
        == (True,) * 6
    with pytest.raises(PolicyViolation):
        vm.execute("return require('probe').read(%s)" % lua_str(files["outside"] + "/secret.csv"))
    with pytest.raises(PolicyViolation):
        vm.execute("return require('probe').req('mymod')")
    with pytest.raises(LuaError, match="cycle"):
        pm.create_vm("im5", policy=Policy().allow_import("selfish")).execute(
            "return require('selfish')")


def test_module_counts_against_vm_limits(pm):
    vm = pm.create_vm("im6", timeout=0.5,
                      policy=Policy(mem="4MiB").allow_import("hog").allow_import("spin"))
    with pytest.raises(MemoryLimitExceeded):
        vm.execute("return require('hog')")
    with pytest.raises(ExecutionTimeout) as ei:
        vm.execute("return require('spin')")
    assert not ei.value.restarted      # the count hook stopped it inside the module
    assert vm.execute("return 1") == 1


# -- memory and tcp -----------------------------------------------------------

def test_mem_from_policy_enforced(manager):
    vm = manager.create_vm("mem1", memory_limit=64 << 20, policy=Policy(mem="4M"))
    assert vm.stats()["mem_limit"] == 4 << 20
    with pytest.raises(MemoryLimitExceeded):
        vm.execute("return #string.rep('x', 8 << 20)")
    vm.set_policy(Policy(mem="32MiB"))
    assert vm.execute("return #string.rep('x', 8 << 20)") == 8 << 20
    assert vm.stats()["mem_limit"] == 32 << 20


CONNECT = ("local s = socket.tcp() s:settimeout(0.2) "
           "local ok, err = s:connect('192.0.2.1', 9) s:close() return ok, err")


def test_tcp_grant_and_refusal(manager):
    vm = manager.create_vm("tcp1", networked=True)
    with pytest.raises(PolicyViolation):
        vm.execute(CONNECT)
    vm.set_policy(Policy().allow_tcp("192.0.2.1:9"))
    ok, err = vm.execute(CONNECT)    # not refused: the network answers (or not)
    assert ok is None and isinstance(err, str)
    vm.set_policy(Policy())
    with pytest.raises(PolicyViolation):
        vm.execute(CONNECT)
    evs = violations(manager, 4)
    assert [e.type for e in evs] == ["SECURITY_VIOLATION", "POLICY_HOTLOAD", "POLICY_HOTLOAD",
                                     "SECURITY_VIOLATION"]
    assert evs[3].detail["action"] == "connect" and evs[3].detail["target"] == "192.0.2.1:9"
    assert evs[1].detail["tcp"] == ["192.0.2.1:9"]


def test_tcp_grant_at_create_makes_vm_networked(manager):
    vm = manager.create_vm("tcp2", policy=Policy().allow_tcp("192.0.2.1:9"))
    ok, err = vm.execute(CONNECT)
    assert ok is None and isinstance(err, str)


# -- hot reload, events, restarts ---------------------------------------------

def test_hot_reload_grant_revoke_keeps_globals(pm, files):
    path = files["data"] + "/a.csv"
    vm = pm.create_vm("hot1")
    vm.execute("kept = 'still here'")
    with pytest.raises(PolicyViolation):
        read(vm, path)
    vm.set_policy(Policy().allow_fs(path).allow_import("mymod"))
    assert read(vm, path).startswith("x,y")
    assert vm.execute("return require('mymod').v, kept") == (42, "still here")
    vm.set_policy(Policy())
    with pytest.raises(PolicyViolation):
        read(vm, path)
    with pytest.raises(PolicyViolation):        # cached, yet revoked
        vm.execute("return require('mymod')")
    assert vm.execute("return kept") == "still here"


def test_events_in_order(pm, files):
    path = files["data"] + "/a.csv"
    vm = pm.create_vm("ev1", policy=Policy().allow_fs(path))
    new = Policy().allow_import("mymod")
    vm.set_policy(new)
    with pytest.raises(PolicyViolation):
        read(vm, path)
    vm.set_policy(Policy().allow_fs(path))
    with pytest.raises(PolicyViolation):
        vm.execute("return require('mymod')")
    evs = violations(pm, 4)
    assert [e.type for e in evs] == ["POLICY_HOTLOAD", "SECURITY_VIOLATION",
                                     "POLICY_HOTLOAD", "SECURITY_VIOLATION"]
    assert evs[0].detail == new.to_wire() and Policy.from_wire(evs[0].detail) == new
    assert evs[1].detail["action"] == "fs_read" and evs[3].detail["action"] == "require"
    assert all(e.vm == "ev1" for e in evs)
    assert [e.ts for e in evs] == sorted(e.ts for e in evs)


def test_policy_survives_restart_after_timeout_kill(pm, files):
    path = files["data"] + "/a.csv"
    vm = pm.create_vm("rs1", timeout=0.3, policy=Policy().allow_import("mymod"))
    vm.set_policy(Policy(mem="8MiB").allow_fs(path))     # the hot policy is the one kept
    pid = vm.stats()["pid"]
    with pytest.raises(ExecutionTimeout) as ei:
        vm.execute(BOMB)
    assert ei.value.restarted
    assert vm.stats()["pid"] != pid
    assert read(vm, path).startswith("x,y")
    assert vm.stats()["mem_limit"] == 8 << 20
    with pytest.raises(PolicyViolation):
        vm.execute("return require('mymod')")


# -- bad policies -------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: Policy(mem="12 parsecs"), lambda: Policy(mem=-1), lambda: Policy(mem=True),
    lambda: Policy(mem="1.3k"), lambda: Policy(mem=[1]),
    lambda: Policy().allow_fs("data/*.csv"), lambda: Policy().allow_fs("/srv/../etc/*"),
    lambda: Policy().allow_fs("/proc/*"), lambda: Policy().allow_fs(3),
    lambda: Policy().allow_import("1bad"), lambda: Policy().allow_import("a..b"),
    lambda: Policy().allow_import("a.b."), lambda: Policy().allow_import("a/b"),
    lambda: Policy().allow_tcp("nohost"), lambda: Policy().allow_tcp("h:99999"),
    lambda: Policy().allow_tcp(":80"), lambda: Policy().allow_tcp("h o:80"),
])
def test_bad_policy_invalid_request(make):
    with pytest.raises(InvalidRequest):
        make()


def test_policy_sizes_parse():
    assert Policy(mem="256MiB").mem == 256 << 20
    assert Policy(mem="16M").mem == 16 << 20
    assert Policy(mem="1G").mem == 1 << 30
    assert Policy(mem="512k").mem == 512 << 10
    assert Policy(mem="1.5GiB").mem == 3 << 29
    assert Policy(mem=1234).mem == 1234 and Policy().mem is None
    p = Policy().allow_tcp("127.0.0.1:9200").allow_fs("/srv/data/*.csv").allow_import("mymod")
    assert (p.tcp, p.fs, p.imports) == (["127.0.0.1:9200"], ["/srv/data/*.csv"], ["mymod"])
    assert repr(p) == ("Policy(mem=None).allow_tcp('127.0.0.1:9200')"
                       ".allow_fs('/srv/data/*.csv').allow_import('mymod')")


def test_bad_policy_object_refused_by_client(manager):
    with pytest.raises(InvalidRequest):
        manager.create_vm("bad1", policy={"fs": []})
    vm = manager.create_vm("bad2")
    with pytest.raises(InvalidRequest):
        vm.set_policy("allow everything")


def test_module_dir_must_be_a_directory(tmp_path):
    with pytest.raises(InvalidRequest):
        VMManager(module_dir=str(tmp_path / "nope"))



BAD_WIRE = [
    "allow everything", {"fs": "/srv/*"}, {"fs": ["srv/*"]}, {"fs": ["/a/../b"]},
    {"fs": [3]}, {"fs": ["/proc/self/*"]}, {"imports": ["1x"]}, {"imports": "m"},
    {"mem": -1}, {"mem": "1G"}, {"mem": 1.5}, {"bogus": []}, {"tcp": ["x"]},
    {"tcp": ["h:65536"]}, {"fs": ["/a\u0000b"]},
]


@pytest.mark.parametrize("bad", BAD_WIRE)
def test_bad_policy_on_the_wire(manager, bad):
    c = Raw(manager._core.embedded.socket_path)
    r = c.req(op="create", name="w1", policy=bad)
    assert r["error"]["code"] == "BAD_REQUEST", r
    assert "policy" in r["error"]["message"]
    assert "result" in c.req(op="create", name="w2")
    r = c.req(op="set_policy", vm="w2", policy=bad)
    assert r["error"]["code"] == "BAD_REQUEST", r
    c.sock.close()


def test_set_policy_and_allow_tcp_on_the_wire(manager):
    c = Raw(manager._core.embedded.socket_path)
    r = c.req(op="set_policy", vm="ghost", policy={})
    assert r["error"]["code"] == "VM_NOT_FOUND"
    assert c.req(op="create", name="w3", allow_tcp="x")["error"]["code"] == "BAD_REQUEST"
    assert "result" in c.req(op="create", name="w3", networked=True,
                             allow_tcp=["192.0.2.1:9"], policy={"fs": ["/nothing/*"]})
    r = c.req(op="exec", vm="w3", code=CONNECT)
    assert r["result"]["values"][0] is None       # allow_tcp is still a grant
    assert c.req(op="set_policy", vm="w3", policy={"mem": None})["result"] is True
    r = c.req(op="exec", vm="w3", code="return fs.read('/nothing/x')")
    assert r["error"]["code"] == "POLICY_VIOLATION"
    c.sock.close()
