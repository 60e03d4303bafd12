"""Failover events across hosts (issue 13): a restart="on-crash" VM whose
host is SIGKILLed is recreated on a live host, and VM_RESTART naming the new
host reaches its owner's clients on *every* host, not only the new one
(manager/namesfail.c relays it on "<prefix>.names"). The client's pending
call has already failed with a typed error; its VM handle works on by name
against the new host. Three real managers (clusterfix.py: network
namespaces when root), one real nats-server.

The sweeping host -- the one that recreates the VM -- is the live host with
the lowest name, m1 here; so the client that must hear the relay is on m3.
"""

import threading
import time

import pytest

from clusterenv import cluster_support
from clusterfix import Fix
from pylua_bioxen_vm import VMCrashed

pytestmark = pytest.mark.skipif(cluster_support() is not None,
                                reason="no cluster support: %s" % cluster_support())

T = 60.0


class Events:
    """VM_RESTART events a client heard, waited for with a deadline."""

    def __init__(self, client):
        self.got, self.cv = [], threading.Condition()
        client.on("VM_RESTART", self._add)

    def _add(self, ev):
        with self.cv:
            self.got.append(ev)
            self.cv.notify_all()

    def wait(self, within):
        with self.cv:
            assert self.cv.wait_for(lambda: self.got, within), "no VM_RESTART within %.0f s" % within
            return self.got[0]


@pytest.fixture
def three():
    with Fix(n=3, tcp=True) as c:
        yield c


def test_the_owner_on_another_host_hears_vm_restart_and_works_on(three):
    m1, m2, m3 = three.hosts
    owner = m3.client()                  # has no proxy on m1: only the relay tells it
    twin = m3.client()                   # the same identity, with a proxy on m1: m1 must
    twin.create_vm("anchor", host="m1").execute("return 1")   # not tell it twice
    near = m1.client()                   # the same identity, on the new host
    other = m3.client("tok-bob")         # another identity, on the owner's host
    ev3, evtwin, ev1, evbob = Events(owner), Events(twin), Events(near), Events(other)
    vm = owner.create_vm("phoenix", host="m2", restart="on-crash", timeout=120)
    vm.execute("x = 41")
    assert vm.execute("return x + 1") == 42
    pending = vm.execute_async("while true do end", timeout=120)
    time.sleep(0.5)                      # the call is running on m2
    t0 = time.monotonic()
    m2.kill()
    with pytest.raises(VMCrashed) as e:
        pending.result(T)
    failed = time.monotonic() - t0
    assert failed < 10, "the pending call failed only after %.1f s" % failed   # budget 5 s
    assert "m2" in str(e.value)
    ev = ev3.wait(T)
    moved = time.monotonic() - t0
    print("pending call failed after %.1f s; VM_RESTART on m3 after %.1f s: %s"
          % (failed, moved, ev))
    assert moved < 30, moved
    assert ev["vm"] == "phoenix" and ev["type"] == "VM_RESTART"
    assert ev["detail"]["host"] == "m1" and ev["detail"]["from"] == "m2"
    assert ev["detail"]["reason"] == "HOST_DOWN" and ev["detail"]["pid"] > 0
    assert ev1.wait(T)["detail"]["host"] == "m1"
    assert evtwin.wait(T)["detail"]["host"] == "m1"
    # the same handle, by name, now reaches m1: fresh state
    assert vm.execute("return x") is None
    assert vm.execute("return 6 * 7") == 42
    assert owner.get_vm("phoenix").execute("return 'on m1'") == "on m1"
    where = [v["host"] for v in owner.list_vms(cluster=True) if v["name"] == "phoenix"]
    assert where == ["m1"]
    time.sleep(1.0)                      # a duplicate would have come by now
    assert [len(e.got) for e in (ev3, evtwin, ev1)] == [1, 1, 1], (ev3.got, evtwin.got, ev1.got)
    assert evbob.got == []               # not bob's VM: he hears nothing of it
    vm.close()
    for c in (owner, twin, near, other):
        c.close()


def test_a_shared_vm_restart_reaches_subscribers_of_other_identities(three):
    """A subscriber (``subscribe`` op) sees events of VMs it may see: a
    shared VM's restart reaches bob's subscription on m3."""
    m1, m2, m3 = three.hosts
    bob = m3.client("tok-bob")
    got = []
    cv = threading.Condition()

    def add(ev):
        with cv:
            got.append(ev)
            cv.notify_all()
    bob.on("VM_RESTART", add)
    bob._core.conn.request("subscribe", {}).result(10)
    alice = m3.client("tok-alice")
    alice.create_vm("common", host="m2", restart="on-crash", shared=True).execute("return 1")
    m2.kill()
    with cv:
        assert cv.wait_for(lambda: [e for e in got if e["vm"] == "common"], T), got
    ev = [e for e in got if e["vm"] == "common"][0]
    assert ev["detail"]["host"] == "m1" and ev["detail"]["from"] == "m2"
    assert bob.get_vm("common").execute("return 2") == 2
    alice.close()
    bob.close()
