"""Full isolation, proven layer by layer on real node processes.

Most tests use bioxen-vmnode-testhooks, a test-only build of the node whose
Lua gets ``__bx_test``: raw system calls no real VM can make (open, execve,
fork, ptrace, an executable mmap, an x32 call, a TCP connect, a malloc
outside the Lua heap). A plain VM of the same build makes them, which shows
the hook works; a fully isolated one is killed by seccomp, or finds no
network, or runs as nobody, as /proc/<pid>/status shows from outside.
"""

import os
import socket
import threading
from pathlib import Path

import pytest

from pylua_bioxen_vm import (ExecutionTimeout, InvalidRequest, IsolatedLuaVM,
                             IsolationUnavailable, MemoryLimitExceeded, VMCrashed)

NOBODY = 65534


def _testhooks_node():
    mgr = Path(os.environ["BIOXEN_MANAGER"]).resolve()
    node = mgr.parent.parent / "vmnode" / "bioxen-vmnode-testhooks"
    if not node.exists():
        pytest.skip("bioxen-vmnode-testhooks is not built")
    return str(node)


@pytest.fixture
def hooked(make_manager, monkeypatch):
    """A manager whose nodes carry __bx_test."""
    monkeypatch.setenv("BIOXEN_VMNODE", _testhooks_node())
    return make_manager()


@pytest.fixture
def hooked_no_seccomp(make_manager, monkeypatch):
    """The same, with seccomp left off, to prove the other layers alone."""
    monkeypatch.setenv("BIOXEN_VMNODE", _testhooks_node())
    monkeypatch.setenv("BX_TEST_NO_SECCOMP", "1")
    return make_manager()


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def ns(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


def is_asan(vm):
    return vm.execute("return __bx_test.asan()")


def events_until(m, kind, timeout=20.0):
    seen = []
    for ev in m.events(timeout=timeout):
        seen.append(ev)
        if ev.type == kind:
            return seen
    raise AssertionError("no %s event; saw %r" % (kind, [e.type for e in seen]))


def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    threading.Thread(target=lambda: [srv.accept() for _ in range(8)], daemon=True).start()
    return srv, srv.getsockname()[1]


# -- what a fully isolated node is, seen from outside ----------------------

def test_full_isolation_layers_visible_in_proc(manager):
    vm = manager.create_vm("iso", full_isolation=True, memory_limit=16 << 20)
    assert vm.execute("return 1 + 1") == 2
    st = status(vm.pid)
    if os.geteuid() == 0:
        assert st["Uid"] == [str(NOBODY)] * 4 and st["Gid"] == [str(NOBODY)] * 4
        assert st.get("Groups", []) == []
    assert st["NoNewPrivs"] == ["1"]
    assert st["Seccomp"] == ["2"]                       # filter mode
    assert st["NSpid"][-1] == "1"                      # pid 1 of its own namespace
    me = os.getpid()
    for kind in ("pid", "mnt", "ipc", "uts", "net"):
        assert ns(vm.pid, kind) != ns(me, kind), kind
    iso = vm.isolation
    assert iso["full"] and iso["seccomp"] and iso["no_new_privs"]
    assert set(iso["namespaces"].split(",")) >= {"pid", "mount", "ipc", "uts", "net"}
    assert vm.stats()["pid"] == vm.pid                 # the host's pid, not 1


def test_networked_full_isolation_keeps_the_host_network(manager):
    vm = manager.create_vm("isonet", networked=True, full_isolation=True)
    assert ns(vm.pid, "net") == ns(os.getpid(), "net")
    assert "net" not in vm.isolation["namespaces"].split(",")
    assert status(vm.pid)["Seccomp"] == ["2"]


def test_uid_gid_drop_without_full_isolation(manager):
    if os.geteuid() != 0:
        pytest.skip("needs a root manager")
    vm = manager.create_vm("dropped", uid=NOBODY, gid=NOBODY)
    st = status(vm.pid)
    assert st["Uid"] == [str(NOBODY)] * 4 and st["Gid"] == [str(NOBODY)] * 4
    assert st.get("Groups", []) == []
    assert st["Seccomp"] == ["0"]
    assert vm.execute("return 6 * 7") == 42


def test_explicit_uid_in_full_isolation(manager):
    if os.geteuid() != 0:
        pytest.skip("needs a root manager")
    vm = manager.create_vm("u1234", full_isolation=True, uid=1234, gid=4321)
    st = status(vm.pid)
    assert st["Uid"][0] == "1234" and st["Gid"][0] == "4321"


def test_cgroup_holds_every_node(manager):
    vm = manager.create_vm("cg", memory_limit=8 << 20)
    if not vm.isolation.get("cgroup"):
        pytest.skip("no cgroups here: %s" % vm.isolation.get("cgroup_unavailable"))
    with open("/proc/%d/cgroup" % vm.pid) as f:
        lines = f.read()
    assert "bioxen.%d/n" % manager._core.embedded.proc.pid in lines
    assert vm.isolation["cgroup"]["pids_max"] >= 1


# -- seccomp: each forbidden call kills the node, nothing else --------------

FORBIDDEN = [
    ("open", "__bx_test.open('/etc/hostname')"),
    ("execve", "__bx_test.execve('/nonexistent')"),
    ("fork", "__bx_test.fork()"),
    ("ptrace", "__bx_test.ptrace()"),
    ("mmap_exec", "__bx_test.mmap_exec()"),
    ("x32", "__bx_test.x32()"),
    ("socket", "__bx_test.connect('127.0.0.1', 9)"),
]
# what the sanitizer runtime needs is allowed in ASan builds (seccomp.c)
ASAN_ALLOWED = {"open", "ptrace"}


@pytest.mark.parametrize("name,call", FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_seccomp_kills_a_forbidden_syscall(hooked, name, call):
    bystander = hooked.create_vm("bystander", full_isolation=True)
    bystander.execute("kept = 'still here'")
    vm = hooked.create_vm("victim", full_isolation=True)
    if name in ASAN_ALLOWED and is_asan(vm):
        pytest.skip("the sanitizer runtime needs %s" % name)
    with pytest.raises(VMCrashed, match="seccomp") as ei:
        vm.execute("return " + call)
    assert not ei.value.restarted
    kinds = [e.type for e in events_until(hooked, "VM_CRASH")]
    assert "SECURITY_VIOLATION" in kinds
    assert bystander.execute("return kept") == "still here"
    assert hooked.ping()


SAFE_IN_PLAIN = [f for f in FORBIDDEN if f[0] not in ("ptrace",)]


@pytest.mark.parametrize("name,call", SAFE_IN_PLAIN, ids=[f[0] for f in SAFE_IN_PLAIN])
def test_the_same_call_runs_in_a_plain_vm(hooked, name, call):
    """Control: the hook really makes the call; only seccomp stops it."""
    vm = hooked.create_vm("plain")
    vm.execute("return " + call)     # returns a value or an errno text; no crash
    assert vm.execute("return 1") == 1


# -- the network namespace, on its own ----------------------------------------

def test_no_network_in_full_isolation_even_without_seccomp(hooked_no_seccomp):
    srv, port = listener()
    with srv:
        plain = hooked_no_seccomp.create_vm("plain")
        assert plain.execute("return __bx_test.connect('127.0.0.1', %d)" % port) == "connected"
        iso = hooked_no_seccomp.create_vm("iso", full_isolation=True)
        assert status(iso.pid)["Seccomp"] == ["0"]    # this layer alone
        got = iso.execute("return __bx_test.connect('127.0.0.1', %d)" % port)
        assert got != "connected" and isinstance(got, str)   # "Network is unreachable"


def test_uid_drop_on_its_own(hooked_no_seccomp):
    if os.geteuid() != 0:
        pytest.skip("needs a root manager")
    vm = hooked_no_seccomp.create_vm("iso", full_isolation=True)
    uid, gid, pid = vm.execute("return __bx_test.ids()")
    assert (uid, gid, pid) == (NOBODY, NOBODY, 1)
    assert vm.execute("return __bx_test.open('/root')") != 0   # EACCES or similar text


def test_net_enable_refused_in_full_isolation(manager):
    vm = manager.create_vm("iso", full_isolation=True)
    with pytest.raises(IsolationUnavailable, match="networked=True"):
        vm.start_server(0)
    assert vm.execute("return 1") == 1


def test_networked_full_isolation_vms_talk(manager):
    a = manager.create_vm("a", networked=True, full_isolation=True)
    b = manager.create_vm("b", networked=True, full_isolation=True)
    port = a.start_server(0)
    b.connect_to("localhost", port)       # no /etc/hosts lookup: a fixed name
    b.send_message("hi from b")
    assert a.receive_message(timeout=10) == "hi from b"
    with pytest.raises(Exception, match="numeric"):
        b.execute("net.connect('example.invalid', 80)")
    assert status(a.pid)["Seccomp"] == ["2"]


# -- kernel bounds: cgroup memory and pids -----------------------------------

def test_cgroup_memory_kill_is_a_memory_limit(hooked):
    vm = hooked.create_vm("big", memory_limit=8 << 20, timeout=20)
    if not vm.isolation.get("cgroup"):
        pytest.skip("no cgroups here")
    vm.execute("kept = 1")
    # an ASan build's cgroup allows 1 GiB of sanitizer overhead (cgroup.c)
    size = (2048 if is_asan(vm) else 400) * 1024 * 1024
    with pytest.raises(MemoryLimitExceeded, match="cgroup") as ei:
        vm.execute("return __bx_test.alloc(%d)" % size)
    assert ei.value.restarted
    kinds = [e.type for e in events_until(hooked, "VM_RESTART")]
    assert "MEM_KILL" in kinds
    assert vm.execute("return kept") is None          # a fresh state
    assert vm.execute("return 2") == 2


def test_cgroup_pids_stop_a_fork_bomb(hooked):
    vm = hooked.create_vm("forky")
    if not vm.isolation.get("cgroup"):
        pytest.skip("no cgroups here")
    got = vm.execute("local r = {} for i = 1, 10 do r[i] = __bx_test.fork() end return r")
    assert any(isinstance(x, str) for x in got), got    # EAGAIN once pids.max is reached
    assert vm.execute("return 1") == 1


# -- restart="on-crash" -------------------------------------------------------

def test_restart_on_crash_with_back_off(hooked):
    vm = hooked.create_vm("phoenix", full_isolation=True, restart="on-crash")
    first_pid = vm.pid
    for i in range(3):
        vm.execute("x = 1")
        with pytest.raises(VMCrashed) as ei:
            vm.execute("return __bx_test.x32()")
        assert ei.value.restarted
        # sent during the back-off: waits for the fresh node, then runs
        assert vm.execute_async("return x").result(30) is None
    evs = [e for e in hooked.events(timeout=1.0)]
    restarts = [e.detail["crashes"] for e in evs if e.type == "VM_RESTART"]
    assert restarts == [1, 2, 3]
    crash = [e for e in evs if e.type == "VM_CRASH"]
    assert crash and all(e.detail["restart"] for e in crash)
    assert [v["pid"] for v in hooked.list_vms() if v["name"] == "phoenix"][0] != first_pid


def test_without_restart_a_crash_removes_the_vm(hooked):
    vm = hooked.create_vm("once", full_isolation=True)
    with pytest.raises(VMCrashed):
        vm.execute("return __bx_test.x32()")
    assert "once" not in [v["name"] for v in hooked.list_vms()]


def test_timeouts_still_restart_in_full_isolation(manager):
    vm = manager.create_vm("slow", full_isolation=True, timeout=0.5)
    with pytest.raises(ExecutionTimeout):
        vm.execute("while true do end")
    assert vm.execute("return 3") == 3
    assert status(vm.stats()["pid"])["Seccomp"] == ["2"]


# -- the API ------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{"full_isolation": "yes"}, {"uid": -1}, {"gid": 2 ** 40},
                                {"restart": "always"}, {"uid": True}])
def test_bad_isolation_options(manager, kw):
    with pytest.raises(InvalidRequest):
        manager.create_vm("bad", **kw)


def test_luaward_full_isolation():
    with IsolatedLuaVM(full_isolation=True, memory_limit=8 << 20) as vm:
        assert vm.execute("return 'boxed'") == "boxed"
        assert status(vm.stats()["pid"])["Seccomp"] == ["2"]
