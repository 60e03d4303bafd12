"""A fully isolated node lives in an empty read-only root (vmnode/emptyroot.c):
from the host, /proc/<pid>/root is an empty directory, so a gap in seccomp
would still find no file. Code, the time zone, stats, fs grants and imports
(brokered by the manager) and networking keep working; where the empty root
cannot be made, create fails with IsolationUnavailable."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from pylua_bioxen_vm import ExecutionTimeout, Policy

NOBODY = 65534
T = 60.0


def mounts(pid):
    with open("/proc/%d/mountinfo" % pid) as f:
        return [line.split() for line in f]


def assert_empty_root(vm, pid=None):
    pid = pid or vm.pid
    assert vm.isolation["root"] == "empty"
    root = "/proc/%d/root" % pid
    assert os.listdir(root) == []
    assert not os.path.exists(root + "/etc/passwd")
    (mount,) = mounts(pid)           # one mount in the whole namespace
    assert mount[4] == "/" and mount[5].split(",")[0] == "ro"
    assert mount[mount.index("-") + 1] == "tmpfs"


def test_fully_isolated_node_sees_an_empty_root(manager):
    vm = manager.create_vm("iso", full_isolation=True, memory_limit=16 << 20)
    assert_empty_root(vm)
    assert vm.execute("local t = {} for i = 1, 100 do t[i] = i * i end return t[12]") == 144
    assert vm.execute("return #os.date('%Y-%m-%d %H:%M')") == 16   # tz loaded before
    assert vm.stats()["rss_bytes"] > 0                               # statm held open
    plain = manager.create_vm("plain")
    assert plain.isolation["root"] == "host"
    assert os.listdir("/proc/%d/root" % plain.pid) == os.listdir("/")
    # the host's tree is untouched by the node's private mounts
    assert not any("bioxen-empty" in line for line in open("/proc/self/mountinfo"))


def test_restarted_node_gets_an_empty_root_too(manager):
    vm = manager.create_vm("iso", full_isolation=True, restart="on-crash", timeout=0.3)
    first = vm.pid
    with pytest.raises(ExecutionTimeout):   # stuck in C: the manager kills the node
        vm.execute("return string.find(string.rep('a', 40), string.rep('a*', 30) .. 'b')")
    assert vm.execute("return 1") == 1
    pid = vm.stats()["pid"]
    assert pid != first
    assert_empty_root(vm, pid)


def test_fs_grants_and_imports_still_work(make_manager, tmp_path):
    data, mods = tmp_path / "data", tmp_path / "mods"
    data.mkdir()
    mods.mkdir()
    (data / "a.csv").write_text("x,y\n1,2\n")
    (mods / "mymod.lua").write_text("return {v = 42}")
    m = make_manager(module_dir=str(mods))
    vm = m.create_vm("isofs", full_isolation=True,
                     policy=Policy().allow_fs(str(data) + "/*.csv").allow_import("mymod"))
    assert_empty_root(vm)
    assert vm.execute("return fs.read(%r)" % str(data / "a.csv")) == "x,y\n1,2\n"
    assert vm.execute("local n = 0 for l in fs.lines(%r) do n = n + 1 end return n"
                      % str(data / "a.csv")) == 2
    assert vm.execute("return require('mymod').v") == 42


def test_networked_full_isolation_still_talks(manager):
    a = manager.create_vm("a", networked=True, full_isolation=True)
    b = manager.create_vm("b", networked=True, full_isolation=True)
    assert_empty_root(a)
    port = a.start_server(0)
    b.connect_to("localhost", port)
    b.send_message("through an empty root")
    assert a.receive_message(timeout=10) == "through an empty root"


def _testhooks_node():
    node = Path(os.environ["BIOXEN_MANAGER"]).resolve().parents[1] / "vmnode" / \
        "bioxen-vmnode-testhooks"
    if not node.exists():
        pytest.skip("bioxen-vmnode-testhooks is not built")
    return str(node)


def test_with_seccomp_off_open_finds_nothing(make_manager, monkeypatch):
    """The layer on its own: with seccomp left off (test build), a raw open
    in a fully isolated node finds no file, where a plain node opens it."""
    monkeypatch.setenv("BIOXEN_VMNODE", _testhooks_node())
    monkeypatch.setenv("BX_TEST_NO_SECCOMP", "1")
    m = make_manager()
    plain = m.create_vm("plain")
    iso = m.create_vm("iso", full_isolation=True)
    for path in ("/etc/passwd", "/proc/self/status", sys.executable, str(REPO / "README.md")):
        assert isinstance(plain.execute("return __bx_test.open(%r)" % path), int), path
        assert iso.execute("return __bx_test.open(%r)" % path) == "No such file or directory"


# -- where it cannot be done, and the manager that is not root --------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set up")


def run_as(script, argv_prefix=(), preexec=None):
    """Runs a Python snippet (which prints one JSON line) under argv_prefix."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"), HOME="/tmp")
    r = subprocess.run(list(argv_prefix) + ["/usr/bin/python3", "-c", textwrap.dedent(script)],
                       env=env, capture_output=True, text=True, timeout=T,
                       preexec_fn=preexec)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


CREATE = """
    import json
    from pylua_bioxen_vm import IsolationUnavailable, VMManager
    with VMManager() as m:
        out = {"plain": m.create_vm("plain").execute("return 1")}
        try:
            vm = m.create_vm("iso", full_isolation=True)
        except IsolationUnavailable as e:
            out["error"] = str(e)
        else:
            out["run"] = vm.execute("return 6 * 7")
            out["isolation"] = vm.isolation
            out["root"] = os.listdir("/proc/%d/root" % vm.pid)
            st = dict(l.split(":\\t", 1) for l in open("/proc/%d/status" % vm.pid).read().splitlines())
            out["caps"] = [st[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")]
        print(json.dumps(out))
"""


def _binaries_readable_by_nobody():
    for p in (os.environ["BIOXEN_MANAGER"], os.environ.get("BIOXEN_VMNODE") or "", str(REPO)):
        path = Path(p).resolve() if p else None
        while path and path != path.parent:
            if not os.stat(path).st_mode & 0o001:
                pytest.skip("%s is not reachable by nobody" % path)
            path = path.parent


def _as_nobody():
    def preexec():
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return preexec


@needs_root
def test_unprivileged_manager_node_gets_an_empty_root_and_no_capabilities():
    """A manager that is not root adds a user namespace; it lends the node
    CAP_SYS_ADMIN there for the pivot, and the node gives it back."""
    _binaries_readable_by_nobody()
    out = run_as("import os\n" + textwrap.dedent(CREATE), preexec=_as_nobody())
    assert out["plain"] == 1 and out.get("error") is None, out
    assert out["run"] == 42
    assert out["isolation"]["root"] == "empty"
    assert "user" in out["isolation"]["namespaces"].split(",")
    assert out["root"] == []
    assert out["caps"] == ["0000000000000000"] * 4


@needs_root
@pytest.mark.skipif(not (shutil.which("unshare") and shutil.which("chroot")),
                    reason="needs unshare and chroot")
def test_in_a_chroot_isolation_is_unavailable(tmp_path):
    """A manager chrooted into a directory that is not a mount point: the
    node cannot pivot, so the create fails instead of running with the
    host's files."""
    jail = tmp_path / "jail"
    jail.mkdir()
    setup = ["set -e"]
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "usr", "etc", "work", "tmp", "dev",
              "proc"):
        if os.path.islink("/" + d):
            os.symlink(os.readlink("/" + d), jail / d)
        elif os.path.isdir("/" + d):
            (jail / d).mkdir()
            setup.append("mount --rbind /%s %s/%s" % (d, jail, d))
    if not str(REPO).startswith(("/work/", "/tmp/", "/usr/")) or \
            not str(Path(os.environ["BIOXEN_MANAGER"]).resolve()).startswith(
                ("/work/", "/tmp/", "/usr/")):
        pytest.skip("the build is outside the directories bound into the jail")
    setup.append('exec chroot %s "$@"' % jail)
    out = run_as("import os\n" + textwrap.dedent(CREATE),
                 ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                  "\n".join(setup), "jail"])
    assert out["plain"] == 1
    assert "empty root" in out["error"], out
