"""Nodes forked from the zygote (manager/zygote.c, vmnode/zygote.c).

Every VM's node is a fork of one bioxen-vmnode --zygote process: these
tests prove what a user relies on when that is so. Two VMs share nothing
(globals, math.random), each child is the manager's own, locked the same
as an exec'd node, in its own namespaces when fully isolated, and a zygote
that dies is replaced while creates keep working.
"""

import os
import signal
import subprocess
import time

from conftest import manager_pid, wait_gone, wait_until

from pylua_bioxen_vm import VMManager


def status(pid):
    """/proc/<pid>/status as {field: [values]}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def ns(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


def zygote(m):
    """The zygote's pid, as the manager reports it (hello), or None."""
    return m._core.conn.call("hello", {}).get("zygote")


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")


def test_the_zygote_is_a_child_of_the_manager_and_forks_every_node(manager):
    zpid = zygote(manager)
    assert zpid, "no zygote reported"
    assert b"--zygote" in cmdline(zpid)
    assert int(status(zpid)["PPid"][0]) == manager_pid(manager)
    vm = manager.create_vm("forked")
    assert vm.execute("return 1 + 1") == 2
    # a fork, not an exec: the node's command line is the zygote's
    assert b"--zygote" in cmdline(vm.pid)
    assert int(status(vm.pid)["PPid"][0]) == manager_pid(manager)   # CLONE_PARENT


def test_vms_from_the_zygote_share_no_state(manager):
    a = manager.create_vm("a")
    b = manager.create_vm("b")
    a.execute("shared_secret = 'only in a'")
    assert a.execute("return shared_secret") == "only in a"
    assert b.execute("return shared_secret") is None
    seq = "local t = {} for i = 1, 8 do t[i] = math.random(1, 1 << 40) end return t"
    ra, rb = a.execute(seq), b.execute(seq)
    # two fresh VMs forked from one zygote within a millisecond: Lua's own
    # seed (the time and the state's address) would make these equal
    c = manager.create_vm("c")
    assert len({tuple(ra), tuple(rb), tuple(c.execute(seq))}) == 3


def fd_targets(pid):
    """{fd: what it points to} of pid; fds closed while we look are left out
    (the zygote closes a request's fds right after each fork)."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[fd] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            pass
    return out


def test_a_node_keeps_no_fd_of_the_zygote(manager):
    vm = manager.create_vm("fds")
    vm.execute("return 1")
    zfds = set(fd_targets(zygote(manager)).values())
    fds = fd_targets(vm.pid)
    ctl = {t for t in zfds if t.startswith("socket:")}
    # fd 3 is the node's own channel; the zygote's control socket is not there
    assert not ctl & set(fds.values()), (ctl, fds)
    assert set(fds) <= {"0", "1", "2", "3", "4"}, fds


def test_a_forked_node_is_locked_like_an_exec_d_one(manager):
    plain = manager.create_vm("plain")
    plain.execute("return 1")
    st = status(plain.pid)
    assert st["NoNewPrivs"] == ["1"]
    assert int(st["PPid"][0]) == manager_pid(manager)
    iso = manager.create_vm("iso", full_isolation=True, memory_limit=16 << 20)
    assert iso.execute("return 1 + 1") == 2
    st = status(iso.pid)
    assert st["Seccomp"] == ["2"] and st["NoNewPrivs"] == ["1"]
    assert st["NSpid"][-1] == "1"
    assert int(st["PPid"][0]) == manager_pid(manager)
    me = manager_pid(manager)
    for kind in ("pid", "mnt", "ipc", "uts", "net"):
        assert ns(iso.pid, kind) != ns(me, kind), kind
        assert ns(iso.pid, kind) != ns(zygote(manager), kind), kind
    other = manager.create_vm("iso2", full_isolation=True)
    for kind in ("pid", "mnt", "ipc", "uts", "net"):
        assert ns(iso.pid, kind) != ns(other.pid, kind), kind
    assert set(iso.isolation["namespaces"].split(",")) >= {"pid", "mount", "ipc", "uts", "net"}


def test_a_forked_node_moves_itself_into_its_own_cgroup(manager):
    vm = manager.create_vm("cg", memory_limit=8 << 20)
    assert vm.execute("return 1") == 1
    if vm.isolation.get("cgroup") is None:
        return      # no writable cgroups here: nothing to join
    mine = "/bioxen.%d/n" % manager_pid(manager)
    with open("/proc/%d/cgroup" % vm.pid) as f:
        lines = f.read().splitlines()
    joined = [ln for ln in lines if mine in ln]
    assert joined, lines
    other = manager.create_vm("cg2")
    other.execute("return 1")
    with open("/proc/%d/cgroup" % other.pid) as f:
        assert not set(joined) & set(f.read().splitlines())    # a cgroup each


def test_a_killed_zygote_is_restarted_and_creates_keep_working(manager):
    old = zygote(manager)
    before = manager.create_vm("before")
    os.kill(old, signal.SIGKILL)
    # at once, while it may still be dying or not yet replaced: exec path
    vms = [manager.create_vm("during%d" % i) for i in range(5)]
    for i, vm in enumerate(vms):
        assert vm.execute("return %d" % i) == i
    assert not wait_gone([old])
    assert wait_until(lambda: zygote(manager) not in (None, old))
    new = zygote(manager)
    assert int(status(new)["PPid"][0]) == manager_pid(manager)
    after = manager.create_vm("after")
    assert after.execute("return 'fine'") == "fine"
    assert b"--zygote" in cmdline(after.pid)
    assert before.execute("return 'still here'") == "still here"   # not its zygote's child


def test_no_zygote_execs_every_node(tmp_path):
    sock = str(tmp_path / "m.sock")
    proc = subprocess.Popen([os.environ["BIOXEN_MANAGER"], "--socket", sock, "--exit-with-stdin",
                             "--no-zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().startswith(b"READY")
        m = VMManager("unix:" + sock, start_timeout=20.0)
        try:
            assert zygote(m) is None
            vm = m.create_vm("execd", full_isolation=True)
            assert vm.execute("return 6 * 7") == 42
            assert b"--zygote" not in cmdline(vm.pid)
        finally:
            m.close()
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_forked_nodes_die_with_a_killed_manager(make_manager):
    m = make_manager()
    plain = m.create_vm("p")
    iso = m.create_vm("i", full_isolation=True)
    pids = [plain.pid, iso.pid, zygote(m)]
    assert plain.execute("return 1") == 1 and iso.execute("return 1") == 1
    # busy, so neither reads its channel's EOF: only the parent-death
    # signal (set again after each clone) can end them
    plain.execute_async("while true do end")
    iso.execute_async("while true do end")
    time.sleep(0.2)
    os.kill(manager_pid(m), signal.SIGKILL)
    assert not wait_gone(pids)
