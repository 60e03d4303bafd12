"""The cluster harness itself (clusterenv.py): namespaces made and removed,
a manager in each answering over its socket, NATS the only path between
them (proved with listeners these tests own), and nothing left behind."""

import inspect
import os
import socket
import subprocess
import sys

import pytest

from clusterenv import REPO, Cluster, ClusterError, cluster_support, descendants
from conftest import wait_until
from natsraw import RawNats
import clusternet
from pylua_bioxen_vm import VMManager

CAN_ISOLATE = clusternet.why_unavailable() is None
needs_netns = pytest.mark.skipif(not CAN_ISOLATE, reason="no network namespaces here: %s"
                                 % clusternet.why_unavailable())

# Run inside a namespace: try one TCP connection, print "ok" or why not.
PROBE = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    s.settimeout(2)
    print("ok", s.recv(200)[:4].decode("ascii", "replace"))
except OSError as e:
    print("no", type(e).__name__)
"""

# Run inside a namespace: listen on argv[1], print the port, greet callers.
LISTENER = r"""
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"HI\r\n"); c.close()
"""


def probe(c, name, host, port):
    """Connect from inside ``name``'s namespace (the root one for None)."""
    prefix = c.net.prefix(name) if name else []
    r = subprocess.run(prefix + [sys.executable, "-c", PROBE, host, str(port)],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


class Listener:
    """A listener this test owns, in ``name``'s namespace (None: root)."""

    def __init__(self, c, name, addr):
        prefix = c.net.prefix(name) if name else []
        self.proc = subprocess.Popen(prefix + [sys.executable, "-c", LISTENER, addr],
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def close(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def cluster():
    with Cluster(n=3) as c:
        yield c
    assert not c.leftovers()


def test_every_manager_answers_ping_over_its_socket(cluster):
    for name in cluster.names:
        assert cluster.connect(name).ping()
        assert os.path.exists(cluster.managers[name].socket)
    vm = cluster.connect("m1").create_vm("a")
    assert vm.execute("return 6 * 7") == 42


def test_nats_server_has_jetstream_and_survives_restart(cluster):
    host, port = cluster.nats.host, cluster.nats.port
    with RawNats(host, port) as nc:
        assert nc.info["jetstream"] is True
        assert nc.ping() < 5.0
    url = cluster.url
    cluster.restart_nats()
    assert cluster.url == url
    with RawNats(host, port) as nc:
        assert nc.info["jetstream"] is True
    cluster.stop_nats()
    with pytest.raises(OSError):
        RawNats(host, port, timeout=2.0)
    cluster.start_nats()
    RawNats(host, port).close()


@needs_netns
def test_each_manager_in_its_own_namespace(cluster):
    assert cluster.isolated
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True,
                            text=True).stdout
    for name in cluster.names:
        m = cluster.managers[name]
        assert m.ns in listed
        assert m.pid in cluster.net.pids(name)
    assert len({m.ns for m in cluster.managers.values()}) == 3
    # only the network differs: the manager still sees the host's cgroups,
    # where it makes one per VM
    inside = subprocess.run(cluster.net.prefix("m1") + ["ls", "/sys/fs/cgroup"],
                            capture_output=True, text=True, timeout=30).stdout
    assert inside.split() == sorted(os.listdir("/sys/fs/cgroup"))


@needs_netns
def test_namespaces_reach_nats_and_nothing_else(cluster):
    c = cluster
    for name in c.names:
        assert probe(c, name, c.nats.host, c.nats.port) == "ok INFO"
    # the root namespace's loopback: reachable from root only
    root = Listener(c, None, "127.0.0.1")
    # m2's loopback, and m2's own address: reachable from m2 only
    lo2 = Listener(c, "m2", "127.0.0.1")
    any2 = Listener(c, "m2", "0.0.0.0")
    try:
        assert probe(c, None, "127.0.0.1", root.port) == "ok HI"
        assert probe(c, "m2", "127.0.0.1", lo2.port) == "ok HI"
        assert probe(c, "m2", c.net.addr["m2"], any2.port) == "ok HI"
        for other in ("m1", "m3"):
            assert probe(c, other, "127.0.0.1", root.port).startswith("no")
            assert probe(c, other, c.net.hub_addr, root.port).startswith("no")
            assert probe(c, other, "127.0.0.1", lo2.port).startswith("no")
            assert probe(c, other, c.net.addr["m2"], any2.port).startswith("no")
    finally:
        for lst in (root, lo2, any2):
            lst.close()


def test_nothing_left_after_a_sigkilled_manager():
    with Cluster(n=3) as c:
        vm = c.connect("m2").create_vm("busy")
        assert vm.execute("return 1") == 1
        pid = c.managers["m2"].pid
        procs = [pid] + descendants(pid)
        assert len(procs) > 1, "the VM's node should be a child of its manager"
        c.kill("m2")
        assert not c.managers["m2"].alive()
        assert all(not os.path.exists("/proc/%d/cmdline" % p) or _zombie(p) for p in procs)
        assert c.connect("m1").ping()      # the others serve on
        c.start_manager("m2")              # and the host can come back
        assert c.connect("m2").ping()
        all_procs = [c.nats.proc.pid] + [m.pid for m in c.managers.values()]
        all_procs += [d for p in all_procs for d in descendants(p)]
    assert not c.leftovers()
    assert all(not os.path.exists("/proc/%d/cmdline" % p) or _zombie(p) for p in all_procs)
    if c.isolated:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        assert c.net.run not in listed.stdout


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_failed_start_leaves_nothing():
    c = Cluster(n=2, manager_args=["--no-such-flag"], verbose=False)
    with pytest.raises(ClusterError, match="did not start"):
        with c:
            pass
    assert not c.leftovers()


def test_plain_processes_when_not_isolated():
    with Cluster(n=2, isolate=False, verbose=False) as c:
        assert not c.isolated and c.why_not_isolated
        assert c.nats.host == "127.0.0.1"
        assert all(c.connect(n).ping() for n in c.names)
    assert not c.leftovers()


def test_cgroup_quota_holds_the_managers_tree(cluster):
    if not cluster.cgroups:
        pytest.skip("no cpu cgroup controller here")
    cluster.cgroup_quota("m1", cpus=0.5)
    vm = cluster.connect("m1").create_vm("q")
    assert vm.execute("return 2") == 2
    m = cluster.managers["m1"]
    with open(cluster.cgroups.procs_file("m1")) as f:
        inside = {int(p) for p in f.read().split()}
    assert m.pid in inside
    assert set(descendants(m.pid)) <= inside
    d = cluster.cgroups.dirs["m1"]
    if cluster.cgroups.version == 2:
        assert open(os.path.join(d, "cpu.max")).read().split()[0] == "50000"
    else:
        assert open(os.path.join(d, "cpu.cfs_quota_us")).read().strip() == "50000"


@pytest.mark.skipif(cluster_support() is not None, reason=str(cluster_support()))
def test_managers_join_nats_when_they_know_how():
    with Cluster(n=2, verbose=False) as c:
        assert c.cluster_flags
        c.wait_cluster(timeout=15.0)
        for name in c.names:
            assert c.hello(name)["cluster"]["host"] == name
    assert not c.leftovers()


def test_socket_paths_fit_sun_path(cluster):
    for m in cluster.managers.values():
        assert len(m.socket.encode()) < 108
        s = socket.socket(socket.AF_UNIX)
        s.connect(m.socket)
        s.close()


def test_example_cluster_runs_and_names_what_is_missing():
    r = subprocess.run([sys.executable, "examples/cluster.py"], cwd=str(REPO),
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pi ~= 3.14" in r.stdout and "speed-up" in r.stdout
    assert "per-host work (runs): m1 " in r.stdout
    if "cluster" not in inspect.signature(VMManager).parameters:
        # until VMManager(cluster=...) exists, the example says so plainly
        env = dict(os.environ, BIOXEN_CLUSTER="nats://127.0.0.1:1")
        r = subprocess.run([sys.executable, "examples/cluster.py"], cwd=str(REPO), env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "not available yet: VMManager(cluster=" in r.stdout


def test_two_clusters_at_once_do_not_clash():
    with Cluster(n=1, verbose=False) as a, Cluster(n=1, verbose=False) as b:
        assert a.url != b.url
        if a.isolated:
            assert a.net.run != b.net.run and a.net.subnet != b.net.subnet
        assert a.connect("m1").ping() and b.connect("m1").ping()
    assert not a.leftovers() and not b.leftovers()


# A harness that dies by SIGKILL cleans nothing up: its managers go with
# their stdin (--exit-with-stdin), nats-server with its parent (pdeathsig),
# and the next run sweeps its namespaces.
DYING = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from clusterenv import Cluster
c = Cluster(n=2, verbose=False).__enter__()
pids = [c.nats.proc.pid] + [m.pid for m in c.managers.values()]
print(c.run, *pids, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_sigkilled_harness_is_swept():
    r = subprocess.run([sys.executable, "-c", DYING, str(REPO / "tests" / "python")],
                       capture_output=True, text=True, timeout=120)
    words = r.stdout.split()
    assert len(words) == 4, r.stdout + r.stderr
    run, pids = words[0], [int(p) for p in words[1:]]
    from conftest import wait_gone
    assert not wait_gone(pids, timeout=15.0)
    from clusterenv import sweep
    sweep()
    assert run not in " ".join(os.listdir("/tmp"))
    if os.path.isdir("/sys/fs/cgroup/cpu"):
        # a group goes once its processes are reaped; nodes orphaned by the
        # SIGKILL are reaped by init, which may take a while: sweep again
        assert wait_until(lambda: sweep() is not None and
                          run not in " ".join(os.listdir("/sys/fs/cgroup/cpu")), 30.0), \
            os.listdir("/sys/fs/cgroup/cpu")
    if CAN_ISOLATE:
        for cmd in (["ip", "netns", "list"], ["ip", "-o", "link"]):
            assert run not in subprocess.run(cmd, capture_output=True, text=True).stdout


@pytest.mark.skipif(cluster_support() is not None, reason=str(cluster_support()))
def test_managers_rejoin_after_nats_restarts():
    with Cluster(n=2, verbose=False) as c:
        c.wait_cluster(timeout=15.0)
        c.stop_nats()
        c.wait_cluster(timeout=15.0, connected=False)
        # local work goes on (pool runs are local; a create would claim its
        # name in the cluster and fail fast with "cluster unavailable")
        assert c.connect("m1").run("return 1") == 1
        c.start_nats()
        c.wait_cluster(timeout=20.0)     # the managers reconnect by themselves
        c.kill("m2")
        assert c.hello("m1")["cluster"]["connected"]
    assert not c.leftovers()
