"""The cluster as issue 13 runs it: three managers, each in its own network
namespace, whose only path to each other is one real nats-server
(tests/python/clusterenv.py). The feature tests (test_cluster_*.py) cover
each part in depth on plain processes; this file proves the same paths
hold when NATS really is the only way between hosts. Where namespaces
cannot be made, the harness runs plain processes and this file says so.
"""

import time

import pytest

import clusternet
from clusterenv import Cluster, cluster_support
from conftest import wait_until
from pylua_bioxen_vm import VMCrashed, VMExists, VMNotFound

pytestmark = pytest.mark.skipif(cluster_support() is not None,
                                reason="no cluster support: %s" % cluster_support())
ISOLATED = clusternet.why_unavailable() is None


@pytest.fixture(scope="module")
def cluster():
    with Cluster(n=3, verbose=False) as c:
        if not c.isolated:
            print("clusterenv: plain processes (%s)" % c.why_not_isolated)
        c.wait_cluster(timeout=20.0)
        for name in c.names:        # every host has heard every other
            m = c.connect(name)
            assert wait_until(lambda: sum(h["alive"] for h in m.hosts()) == 3, 20.0), m.hosts()
        yield c


def test_the_managers_are_isolated_when_the_kernel_allows(cluster):
    assert cluster.isolated == ISOLATED


def test_a_vm_on_another_host_is_used_through_this_one(cluster):
    m1 = cluster.connect("m1")
    vm = m1.create_vm("ns-remote", host="m2")
    vm.execute("function add(a, b) return a + b end")
    assert vm.call("add", 20, 22) == 42
    where = {v["name"]: v["host"] for v in m1.list_vms(cluster=True)}
    assert where["ns-remote"] == "m2"
    # from a third host, by name
    m3 = cluster.connect("m3")
    assert m3.get_vm("ns-remote").execute("return add(1, 2)") == 3
    with pytest.raises(VMExists):
        cluster.connect("m3").create_vm("ns-remote")
    vm.close()
    with pytest.raises(VMNotFound):
        m3.get_vm("ns-remote").execute("return 1")


def test_mail_crosses_hosts_in_order(cluster):
    m1 = cluster.connect("m1")
    recv = m1.create_vm("ns-recv", host="m3")
    send = m1.create_vm("ns-send", host="m2")
    fut = recv.execute_async("local got = {} for i = 1, 500 do local v = mailbox.recv(30) "
                             "got[i] = v end return got", timeout=60)
    send.execute("for i = 1, 500 do mailbox.send('ns-recv', i) end", timeout=60)
    assert fut.result(90) == list(range(1, 501))
    recv.close()
    send.close()


def test_map_spreads_over_the_hosts(cluster):
    m1 = cluster.connect("m1")
    before = {h["name"]: h["executions"] for h in m1.hosts()}
    out = m1.map("function(x) local s = 0 for i = 1, 20000 do s = s + i end return x * 2 end",
                 range(120), chunksize=2)
    assert out == [x * 2 for x in range(120)]
    after = {h["name"]: h["executions"] for h in m1.hosts()}
    assert wait_until(lambda: sum(1 for h in m1.hosts()
                                  if h["executions"] > before.get(h["name"], 0)) >= 2, 10.0), \
        (before, after)


def test_a_killed_host_fails_its_calls_fast_and_the_rest_serve_on(cluster):
    m1 = cluster.connect("m1")
    vm = m1.create_vm("ns-doomed", host="m3", timeout=120)
    fut = vm.execute_async("while true do end", timeout=120)
    time.sleep(0.5)                       # the call is running on m3
    t0 = time.monotonic()
    cluster.kill("m3")
    with pytest.raises(VMCrashed):
        fut.result(30)
    assert time.monotonic() - t0 < 10.0   # the budget is 5 s; not the 120 s timeout
    assert m1.create_vm("ns-after").execute("return 'still here'") == "still here"
    assert wait_until(lambda: not {h["name"]: h["alive"] for h in m1.hosts()}["m3"], 15.0)
    # its names are free again (the budget is 30 s)
    assert wait_until(lambda: _can_create(m1, "ns-doomed"), 40.0)


def _can_create(m, name):
    try:
        m.create_vm(name).close()
        return True
    except VMExists:
        return False
