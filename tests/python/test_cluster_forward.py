"""Forwarding across hosts (issue 13, cl-fwd): a client of m1 uses VMs that
live on m2 through m1 -- every op, typed errors, identities, host death,
NATS outage, payload bounds, list_vms(cluster=True).

A real nats-server and real managers, each in its own network namespace
when root, so that NATS is the only path between them (clusterfix.py on
clusterenv.py; plain processes otherwise, and a warning says why). The
setup is the one ``cluster`` fixture below.
"""

import asyncio
import json
import socket
import time

import pytest

from clusterenv import cluster_support
from clusterfix import Fix
from conftest import wait_until
from pylua_bioxen_vm import (AsyncVMManager, ExecutionTimeout, InvalidRequest, LuaError, ManagerError,
                             MemoryLimitExceeded, VMCrashed, VMNotFound)

from natsbench import nats_echo_p50, nats_request_p50, p50

pytestmark = pytest.mark.skipif(cluster_support() is not None,
                                reason="no cluster support: %s" % cluster_support())

@pytest.fixture
def cluster():
    with Fix(n=2, tcp=True) as c:
        yield c


def on_host(client, name, host):
    return [v for v in client.list_vms(cluster=True) if v["name"] == name and v["host"] == host]


def test_create_on_m2_through_m1_and_every_op(cluster):
    with cluster.m1.client() as a, cluster.m2.client() as b:
        vm = a.create_vm("far", host="m2")
        assert vm.execute("return 1 + 1") == 2
        assert [v["name"] for v in b.list_vms()] == ["far"]     # it is m2's
        assert a.list_vms() == []                               # not m1's
        assert on_host(a, "far", "m2")
        vm.set_globals({"x": 41, "t": {"k": "v"}})
        assert vm.get_global("x") == 41 and vm.get_global("t") == {"k": "v"}
        vm.execute("function add(p, q) return p + q end")
        assert vm.call("add", 2, 3) == 5
        assert vm.function_exists("add") and not vm.function_exists("nope")
        assert vm.stats()["executions"] >= 1
        with vm.stream("print('a') coroutine.yield(7) return 9") as s:
            kinds = [(i.kind, i.value) for i in s]
        assert ("print", "a") in kinds and ("yield", (7,)) in kinds and kinds[-1] == ("result", 9)
        vm.close()
        assert wait_until(lambda: b.list_vms() == [], 10)


def test_host_star_and_get_vm_from_another_host(cluster):
    with cluster.m1.client() as a, cluster.m2.client() as b:
        vm = a.create_vm("anywhere", host="*", persistent=True)
        assert vm.execute("return 'ok'") == "ok"
        hosts = [v["host"] for v in a.list_vms(cluster=True) if v["name"] == "anywhere"]
        assert len(hosts) == 1 and hosts[0] in ("m1", "m2")
        # a VM made on m2 by a client of m2, found and used from m1
        b.create_vm("native", persistent=True).execute("n = 5")
        got = a.get_vm("native")
        assert got.execute("return n") == 5
        got.close()
        a.get_vm("anywhere").close()
        with pytest.raises(VMNotFound):
            a.get_vm("no-such-vm")


def test_callbacks_run_on_the_m1_client(cluster):
    seen = []
    with cluster.m1.client() as a:
        vm = a.create_vm("cbvm", host="m2", callbacks={"py": lambda v: seen.append(v) or v * 2})
        assert vm.execute("return py(21)") == 42
        assert seen == [21]


HOG = "local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100) .. i end"


def test_typed_errors_cross(cluster):
    with cluster.m1.client() as a:
        near = a.create_vm("near", memory_limit=8 << 20)
        vm = a.create_vm("errs", host="m2", memory_limit=8 << 20, timeout=1.0)
        with pytest.raises(LuaError) as e:
            vm.execute("local function f() error('boom') end f()")
        assert "boom" in str(e.value) and e.value.traceback
        with pytest.raises(MemoryLimitExceeded) as here:
            near.execute(HOG)
        with pytest.raises(MemoryLimitExceeded) as m:
            vm.execute(HOG)
        assert m.value.restarted == here.value.restarted    # as a local call says it
        assert vm.execute("return 3") == 3
        with pytest.raises(ExecutionTimeout):
            vm.execute("while true do end", timeout=0.3)
        assert vm.execute("return 4") == 4


def test_identity_travels(cluster):
    with cluster.m1.client("tok-alice") as alice, cluster.m1.client("tok-bob") as bob:
        vm = alice.create_vm("alices", host="m2")
        assert vm.execute("return 1") == 1
        with pytest.raises(VMNotFound):
            bob.get_vm("alices")
        assert not [v for v in bob.list_vms(cluster=True) if v["name"] == "alices"]
        # even with the name known, bob's request goes to m2 and m2 says no
        bob._core.conn.request("exec", {"code": "return 1"}, vm="alices")
        with pytest.raises(VMNotFound):
            bob._core.conn.request("exec", {"code": "return 1"}, vm="alices").result(10)


def test_client_leaving_destroys_its_vms_on_m2(cluster):
    with cluster.m2.client() as b:
        with cluster.m1.client() as a:
            a.create_vm("temp", host="m2").execute("return 1")
            a.create_vm("keep", host="m2", persistent=True).execute("return 1")
            assert sorted(v["name"] for v in b.list_vms()) == ["keep", "temp"]
        assert wait_until(lambda: [v["name"] for v in b.list_vms()] == ["keep"], 10)


def test_origin_dying_frees_its_proxies_and_their_vms(cluster):
    with cluster.m2.client() as b:
        a = cluster.m1.client()
        a.create_vm("orphan", host="m2").execute("return 1")
        a.create_vm("kept", host="m2", persistent=True).execute("return 1")
        assert sorted(v["name"] for v in b.list_vms()) == ["kept", "orphan"]
        cluster.m1.kill()       # no bye: m2 learns it from the heartbeats
        assert wait_until(lambda: [v["name"] for v in b.list_vms()] == ["kept"], 15)
        a.close()


def test_sigkill_of_m2_fails_forwarded_call_fast(cluster):
    with cluster.m1.client() as a:
        vm = a.create_vm("doomed", host="m2")
        fut = vm.execute_async("while true do end", timeout=120)
        time.sleep(0.5)
        t0 = time.monotonic()
        cluster.m2.kill()
        with pytest.raises(VMCrashed) as e:
            fut.result(30)
        assert time.monotonic() - t0 < 10, "failed only after %.1f s" % (time.monotonic() - t0)
        assert "m2" in str(e.value)
        assert a.create_vm("local").execute("return 'still here'") == "still here"


def test_a_stopped_host_fails_forwarded_calls_then_serves_again(cluster):
    """SIGSTOP: NATS still holds m2's connection, so only m1's own probe
    (no pong) can tell; m2 comes back with SIGCONT."""
    with cluster.m1.client() as a:
        vm = a.create_vm("frozen", host="m2", persistent=True)
        assert vm.execute("return 1") == 1
        cluster.m2.stop()
        try:
            t0 = time.monotonic()
            with pytest.raises(VMCrashed):
                vm.execute("return 2", timeout=60)
            assert time.monotonic() - t0 < 10
        finally:
            cluster.m2.cont()
        assert wait_until(lambda: _try(vm, VMCrashed), 10)


def test_nats_down_fails_fast(cluster):
    with cluster.m1.client() as a:
        vm = a.create_vm("faraway", host="m2")
        here = a.create_vm("here")
        assert vm.execute("return 1") == 1
        cluster.nats.kill()
        assert wait_until(lambda: not cluster.m1.connected(), 15)
        t0 = time.monotonic()
        with pytest.raises(ManagerError) as e:
            vm.execute("return 1")
        assert "cluster unavailable" in str(e.value)
        with pytest.raises(ManagerError):
            a.create_vm("x", host="m2")
        assert time.monotonic() - t0 < 5
        assert here.execute("return 2") == 2     # local work goes on
        cluster.nats.start()
        assert wait_until(lambda: cluster.m1.connected() and cluster.m2.connected(), 15)
        assert wait_until(lambda: _try(vm), 10)


def _try(vm, errors=ManagerError):
    try:
        return vm.execute("return 5") == 5
    except errors:
        return False


def test_oversized_request_is_refused_not_truncated(cluster):
    with cluster.m1.client() as a:
        vm = a.create_vm("big", host="m2")
        blob = "x" * (1 << 20)      # over nats-server's 1 MB max payload
        with pytest.raises(Exception) as e:
            vm.execute("return #[[%s]]" % blob)
        assert "max payload" in str(e.value)
        assert vm.execute("return #[[%s]]" % ("y" * 1000)) == 1000
        # a reply too big for NATS is an error reply, not a lost one
        with pytest.raises(Exception) as e:
            vm.execute("return ('z'):rep(2 * 1024 * 1024)")
        assert "max payload" in str(e.value)
        assert vm.execute("return 6") == 6


def test_bad_input_over_nats_is_checked_there(cluster):
    with cluster.m1.client() as a:
        vm = a.create_vm("chk", host="m2")
        conn = a._core.conn
        with pytest.raises(InvalidRequest):     # m1 checks first, like m2 would
            conn.request("exec", {"code": "return 1", "bogus": 1}, vm="chk").result(10)
        with pytest.raises(InvalidRequest):
            a.create_vm("h", host="bad host!")
        assert vm.execute("return 7") == 7


class RawNats:
    """A bare NATS client (the text protocol) for what no manager would send."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=10)
        self.f = self.s.makefile("rb")
        self.f.readline()   # INFO
        self.s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')

    def sub(self, subject, sid):
        self.s.sendall(b"SUB %s %d\r\n" % (subject.encode(), sid))

    def pub(self, subject, payload):
        self.s.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))

    def flush(self):
        self.s.sendall(b"PING\r\n")
        while not self.f.readline().startswith(b"PONG"):
            pass

    def next_msg(self):
        while True:
            line = self.f.readline()
            if line.startswith(b"MSG"):
                return json.loads(self.f.readline())
            if line.startswith(b"PING"):
                self.s.sendall(b"PONG\r\n")

    def close(self):
        self.s.close()


def test_bad_input_arriving_over_nats(cluster):
    """What a peer publishes straight to m2's request subject gets the
    socket's treatment there: unknown ops and bad fields answered (to the
    origin's out subject), non-JSON and bad envelopes dropped, m2 serving on."""
    raw = RawNats(cluster.nats.host, cluster.nats.port)
    try:
        raw.sub("bioxen.h.fake.out", 1)
        raw.flush()

        def env(req):
            return json.dumps({"from": "fake", "client": 7, "identity": "token:alice",
                               "admin": False, "req": req}).encode()
        raw.pub("bioxen.h.m2.req", b"not json at all {")
        raw.pub("bioxen.h.m2.req", b'{"from": "fa.ke", "client": 7}')
        raw.pub("bioxen.h.m2.req", env({"id": 1, "op": "no_such_op"}))
        assert raw.next_msg()["frame"]["error"]["code"] == "UNKNOWN_OP"
        raw.pub("bioxen.h.m2.req", env({"id": 2, "op": "exec", "vm": "x", "code": "1",
                                        "bogus": True}))
        assert raw.next_msg()["frame"]["error"]["code"] == "BAD_REQUEST"
        raw.pub("bioxen.h.m2.req", env({"id": 3, "op": "shutdown"}))
        assert raw.next_msg()["frame"]["error"]["code"] == "FORBIDDEN"   # not an admin
        raw.pub("bioxen.h.m2.req", env({"id": 4, "op": "exec", "vm": "x", "code": "1"}))
        got = raw.next_msg()
        assert got["client"] == 7 and got["from"] == "m2"
        assert got["frame"] == {"id": 4, "error": got["frame"]["error"]}
        assert got["frame"]["error"]["code"] == "VM_NOT_FOUND"
    finally:
        raw.close()
    with cluster.m1.client() as a:
        assert a.create_vm("still", host="m2").execute("return 8") == 8


def test_half_close_waits_for_forwarded_replies(cluster):
    """printf '...' | socat: every line read gets its one reply, forwarded
    ones included, and then the connection closes."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(cluster.m1.sock)
    f = s.makefile("rb")
    s.sendall(b'{"id":"c","op":"create","name":"hc","host":"m2"}\n')
    assert json.loads(f.readline())["id"] == "c"
    s.sendall(b'{"id":7,"op":"exec","vm":"hc","code":"return 6 * 7"}\n'
              b'{"id":"two","op":"exec","vm":"hc","code":"error(\'x\')"}\n')
    s.shutdown(socket.SHUT_WR)
    got = {m["id"]: m for m in map(json.loads, f.read().splitlines())}    # to EOF
    s.close()
    assert set(got) == {7, "two"}
    assert got[7]["result"]["values"] == [42] and got["two"]["error"]["code"] == "LUA_ERROR"


def test_asyncio_twins(cluster):
    async def main():
        async with AsyncVMManager(cluster.m1.sock, start_timeout=20.0) as m:
            vm = await m.create_vm("aio", host="m2")
            assert await vm.execute("return 2 * 21") == 42
            assert [v["host"] for v in await m.list_vms(cluster=True) if v["name"] == "aio"] == ["m2"]
            assert await (await m.get_vm("aio")).execute("return 1") == 1
    asyncio.run(asyncio.wait_for(main(), 30))


def test_list_cluster_without_a_cluster_is_the_local_list(manager):
    manager.create_vm("solo")
    assert [v["name"] for v in manager.list_vms(cluster=True)] == ["solo"]
    assert manager.create_vm("star", host="*").execute("return 1") == 1


def test_measure_local_vs_remote_exec(cluster, capsys):
    """Prints the p50s for the report; asserts only a generous sanity bound."""
    hop = nats_echo_p50(cluster.nats.port, 500, cluster.nats.host)
    req = nats_request_p50(cluster.nats.port, 500, cluster.nats.host)
    with cluster.m1.client() as a:
        here, far = a.create_vm("here"), a.create_vm("there", host="m2")
        for vm in (here, far):
            vm.execute("return 1")
        local = p50(lambda: here.execute("return 1 + 1"), 300)
        remote = p50(lambda: far.execute("return 1 + 1"), 300)
    with capsys.disabled():
        print("\nexec p50: local %.0f us, remote %.0f us; NATS self-echo %.0f us, "
              "request to another process (2 hops) %.0f us"
              % (local * 1e6, remote * 1e6, hop * 1e6, req * 1e6))
    assert remote < local + 0.05
