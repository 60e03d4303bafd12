"""Mailboxes across hosts (manager/mailremote.c): two real managers joined by
one real nats-server, each in its own network namespace when root
(clusterfix.py on clusterenv.py; plain processes otherwise, and a warning
says why).
Order per sender, back-pressure that holds the sender's ack while the
target is full, missing names, a target host SIGKILLed under a blocked
sender, Python senders, and two senders on two hosts into one box.
Rates are printed; only sanity bounds are asserted."""

import time

import pytest

from clusterenv import cluster_support
from clusterfix import Fix
from pylua_bioxen_vm import BioxenError, ExecutionTimeout, ManagerError, ProtocolError, VMNotFound

pytestmark = pytest.mark.skipif(cluster_support() is not None,
                                reason="no cluster support: %s" % cluster_support())

T = 60.0        # every wait's deadline: catches hangs, not slowness
N = 10_000


class Pair:
    """m1 and m2 on one nats-server (clusterfix.Fix), a client on each, both
    hosts alive to each other (a probe send from m1 to a mailbox on m2 gets
    through)."""

    def __init__(self, fix):
        self.fix, self.nats = fix, fix.nats
        self.m1, self.m2 = fix.m1, fix.m2
        self.c1, self.c2 = self.m1.client(), self.m2.client()
        with self.c2.mailbox("probe") as probe:
            end = time.monotonic() + T
            while True:
                try:
                    assert self.c1.send_to("probe", "hi") is True
                    break
                except VMNotFound:
                    assert time.monotonic() < end, "m1 never reached m2's mailbox"
                    time.sleep(0.1)
            assert probe.recv(timeout=T) == ("@client", "hi")

    def kill_m2(self):
        self.kill("m2")

    def kill(self, name):
        getattr(self, name).kill()      # the manager and its nodes, waited for

    def close(self):
        for c in (self.c1, self.c2):
            try:
                c.close()
            except Exception:   # noqa: BLE001 - its manager was killed
                pass


@pytest.fixture
def pair():
    with Fix(n=2) as fix:
        p = Pair(fix)
        try:
            yield p
        finally:
            p.close()


RECV_ALL = """local n, bad, last = %d, 0, 0
for i = 1, n do
  local v, from = mailbox.recv(30)
  if v ~= i or from ~= %r then bad = bad + 1 end
  last = v
end
return {bad = bad, last = last}"""

SEND_ALL = "for i = 1, %d do mailbox.send(%r, i) end return mailbox.flush()"


def rate(n, secs):
    return "%d msgs in %.2f s = %.0f msgs/s" % (n, secs, n / secs)


def test_ten_thousand_in_order_and_rates(pair):
    recv = pair.c2.create_vm("rcv")
    a = pair.c1.create_vm("snd")
    local = pair.c2.create_vm("lsnd")
    # within one host first, for comparison
    fut = recv.execute_async(RECV_ALL % (N, "lsnd"), timeout=T)
    t0 = time.perf_counter()
    assert local.execute(SEND_ALL % (N, "rcv"), timeout=T) is True
    assert fut.result(T) == {"bad": 0, "last": N}
    print("within one host:", rate(N, time.perf_counter() - t0))
    # across hosts: VM on m1 -> VM on m2
    fut = recv.execute_async(RECV_ALL % (N, "snd"), timeout=T)
    t0 = time.perf_counter()
    assert a.execute(SEND_ALL % (N, "rcv"), timeout=T) is True
    assert fut.result(T) == {"bad": 0, "last": N}
    print("across hosts:", rate(N, time.perf_counter() - t0))


def test_full_remote_box_blocks_the_sender_until_it_reads(pair):
    small = pair.c2.create_vm("small", mailbox_size=4)
    sender = pair.c1.create_vm("sender")
    fut = sender.execute_async("for i = 1, 40 do mailbox.send('small', i) end "
                               "mailbox.flush() return 'all sent'", timeout=T)
    # 4 fit, the rest wait on their acks: the send cannot complete
    with pytest.raises(TimeoutError):
        fut.result(1.5)
    got = small.execute("local t = {} for i = 1, 40 do t[i] = mailbox.recv(20) end return t",
                        timeout=T)
    assert got == list(range(1, 41))
    assert fut.result(T) == "all sent"


def test_a_name_that_exists_nowhere_is_vm_not_found(pair):
    vm = pair.c1.create_vm("lonely")
    with pytest.raises(VMNotFound, match="nowhere"):
        vm.execute("mailbox.send('nowhere', 1)", timeout=T)
    with pytest.raises(VMNotFound):
        pair.c1.send_to("nowhere", 1)


def test_target_host_killed_under_a_blocked_sender_fails_within_10s(pair):
    pair.c2.create_vm("full", mailbox_size=2)
    sender = pair.c1.create_vm("stuck")
    fut = sender.execute_async("for i = 1, 20 do mailbox.send('full', i) end "
                               "return mailbox.flush()", timeout=T)
    with pytest.raises(TimeoutError):
        fut.result(1.0)         # blocked: the box holds 2 and nobody reads
    t0 = time.monotonic()
    pair.kill_m2()
    with pytest.raises(BioxenError) as ei:
        fut.result(T)
    took = time.monotonic() - t0
    print("blocked send failed %.2f s after SIGKILL: %r" % (took, ei.value))
    assert isinstance(ei.value, VMNotFound), ei.value
    assert took < 10.0
    # the sender's VM still serves, and a new send to the gone name fails fast
    assert sender.execute("return 1 + 1") == 2
    with pytest.raises(VMNotFound):
        sender.execute("mailbox.send('full', 1)", timeout=T)


def test_python_send_to_a_remote_vm_and_vm_to_remote_client_mailbox(pair):
    vm = pair.c2.create_vm("worker")
    sends = [pair.c1.send_to_async("worker", {"i": i}) for i in range(500)]
    assert all(f.result(T) is True for f in sends)
    got = vm.execute("local t = {} for i = 1, 500 do local v, f = mailbox.recv(20) "
                     "t[i] = {v.i, f} end return t", timeout=T)
    assert got == [[i, "@client"] for i in range(500)]
    src = pair.c1.create_vm("src")
    with pair.c2.mailbox("inbox") as box:
        assert src.execute("for i = 1, 300 do mailbox.send('inbox', i) end "
                           "return mailbox.flush()", timeout=T) is True
        got = [box.recv(timeout=T) for _ in range(300)]
    assert got == [("src", i) for i in range(1, 301)]


def test_two_senders_on_two_hosts_each_keep_their_order(pair):
    n = 3000
    r = pair.c2.create_vm("sink")
    s1, s2 = pair.c1.create_vm("s1"), pair.c2.create_vm("s2")
    code = "for i = 1, %d do mailbox.send('sink', i) end return mailbox.flush()" % n
    f1 = s1.execute_async(code, timeout=T)
    f2 = s2.execute_async(code, timeout=T)
    got = r.execute("local t = {s1 = {}, s2 = {}} for i = 1, %d do "
                    "local v, f = mailbox.recv(30) local l = t[f] l[#l + 1] = v end "
                    "return t" % (2 * n), timeout=T)
    assert f1.result(T) is True and f2.result(T) is True
    assert got["s1"] == list(range(1, n + 1))
    assert got["s2"] == list(range(1, n + 1))


def blocked_sender(pair, box="full"):
    pair.c2.create_vm(box, mailbox_size=2)
    sender = pair.c1.create_vm("stuck")
    fut = sender.execute_async("for i = 1, 20 do mailbox.send(%r, i) end "
                               "return mailbox.flush()" % box, timeout=T)
    with pytest.raises(TimeoutError):
        fut.result(1.0)
    return sender, fut


def test_nats_gone_under_a_blocked_sender_fails_within_10s(pair):
    sender, fut = blocked_sender(pair)
    t0 = time.monotonic()
    py = pair.c1.send_to_async("full", "from python")     # parked too
    pair.nats.kill()
    # the Lua sender's execute fails with the code too (vmnode/mailbox.c)
    with pytest.raises(ManagerError, match="cluster unavailable") as ei:
        fut.result(T)
    with pytest.raises(ManagerError, match="cluster unavailable"):
        py.result(T)
    took = time.monotonic() - t0
    print("blocked send failed %.2f s after nats-server died: %r" % (took, ei.value))
    assert took < 10.0
    assert sender.execute("return 2 + 2") == 4      # local work goes on
    with pytest.raises(ManagerError, match="cluster unavailable"):
        pair.c1.send_to("full", 1)


def test_target_vm_destroyed_under_a_blocked_sender_is_vm_not_found(pair):
    sender, fut = blocked_sender(pair, "doomed")
    pair.c2.get_vm("doomed").close()
    with pytest.raises(VMNotFound, match="doomed"):
        fut.result(T)
    assert sender.execute("return 3") == 3


def test_a_message_over_the_nats_max_payload_is_refused_not_truncated(pair):
    vm = pair.c2.create_vm("big")
    with pytest.raises(ProtocolError, match="max payload"):
        pair.c1.send_to("big", "x" * (2 << 20))
    assert pair.c1.send_to("big", "small") is True      # the link still works
    assert vm.execute("return mailbox.recv(20)", timeout=T) == ("small", "@client")


def test_python_send_timeout_on_a_full_remote_box(pair):
    vm = pair.c2.create_vm("tiny", mailbox_size=1)
    assert pair.c1.send_to("tiny", 1) is True
    t0 = time.monotonic()
    with pytest.raises(ExecutionTimeout):
        pair.c1.send_to("tiny", 2, timeout=0.3)     # parked on m2, timed out there
    assert time.monotonic() - t0 < 10
    parked = pair.c1.send_to_async("tiny", 3)
    with pytest.raises(TimeoutError):
        parked.result(0.5)
    assert vm.execute("return mailbox.recv(5)", timeout=T) == (1, "@client")
    assert parked.result(T) is True
    assert vm.execute("return mailbox.recv(5)", timeout=T) == (3, "@client")


def test_origin_killed_its_parked_messages_do_not_arrive_later(pair):
    box = pair.c2.create_vm("full", mailbox_size=2)
    sender = pair.c1.create_vm("stuck")
    sender.execute_async("for i = 1, 20 do mailbox.send('full', i) end", timeout=T)
    time.sleep(1.0)             # 2 queued, the next parked on m2
    pair.kill("m1")             # its senders are gone, and were never acked
    time.sleep(5.0)             # m2 sees m1 gone (HOSTS_ALIVE_S + a beat)
    got = box.execute("local t = {} for i = 1, 5 do local v = mailbox.recv(1) "
                      "if v == nil then break end t[#t + 1] = v end return t", timeout=T)
    assert got == [1, 2]
