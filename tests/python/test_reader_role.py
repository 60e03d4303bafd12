"""The leader/follower reader (reader.py): synchronous callers read their own
replies, the background thread reads the rest; nothing may be lost, read
twice, or waited on forever.  Mostly against the scripted fake manager so
replies can be held back, reordered and interleaved with pushes."""

import random
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout, wait

import pytest

from fakemanager import FakeManager
from pylua_bioxen_vm import ManagerError, VMManager
from pylua_bioxen_vm import reader as reader_mod

T = 10.0


def exec_reply(msg):
    return {"id": msg["id"], "result": {"values": [msg["code"]], "output": "",
                                        "duration_ms": 0.1, "mem_bytes": 1}}


class Shuffler:
    """Handler that answers requests in small random batches, out of order,
    from its own thread, with events and callback frames mixed in."""

    def __init__(self, events=0, callbacks=0):
        self.cv = threading.Condition()
        self.held = []
        self.stop = False
        self.events_left, self.callbacks_left = events, callbacks
        self.cb_ids = []
        self.fake = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __call__(self, fake, msg):
        if "id" not in msg:
            return None  # cb_result
        if msg["op"] == "create":
            return {"id": msg["id"], "result": {"name": msg["name"], "pid": 1}}
        if msg["op"] != "exec":
            return {"id": msg["id"], "result": True}
        if msg["code"].startswith("never"):
            return None
        with self.cv:
            self.fake = fake
            self.held.append(msg)
            self.cv.notify()
        return None

    def _run(self):
        rnd = random.Random(7)
        while True:
            with self.cv:
                self.cv.wait_for(lambda: self.held or self.stop, 0.05)
                if self.stop:
                    return
                batch, self.held = self.held, []
            rnd.shuffle(batch)
            for m in batch:
                if self.events_left and rnd.random() < 0.3:
                    self.events_left -= 1
                    self.fake.send({"event": "TICK", "vm": "a", "ts": 1.0,
                                    "detail": {"n": self.events_left}})
                if self.callbacks_left and rnd.random() < 0.3:
                    self.callbacks_left -= 1
                    cid = 1000 + self.callbacks_left
                    self.cb_ids.append(cid)
                    self.fake.send({"callback": cid, "vm": "a", "fn": "add",
                                    "args": [cid, 1]})
                self.fake.send(exec_reply(m))


@pytest.fixture
def shuffled():
    made = []

    def make(**kw):
        h = Shuffler(**kw)
        h.thread.start()
        fake = FakeManager(h)
        m = VMManager("unix:" + fake.path, start_timeout=T)
        made.append((h, fake, m))
        return h, fake, m
    yield make
    for h, fake, m in made:
        with h.cv:
            h.stop = True
            h.cv.notify()
        m.close()
        fake.close()


def test_sync_async_events_callbacks_all_at_once(shuffled):
    h, fake, m = shuffled(events=200, callbacks=100)
    seen_events = []
    m.on("TICK", seen_events.append)
    vm = m.create_vm("a", callbacks={"add": lambda a, b: a + b}, echo=False)
    errors = []

    def sync_worker(t):
        try:
            for i in range(150):
                code = "s%d-%d" % (t, i)
                assert vm.execute(code) == code
        except BaseException as e:  # noqa: reported below
            errors.append(e)

    def async_worker(t):
        try:
            futs = {vm.execute_async("a%d-%d" % (t, i)): "a%d-%d" % (t, i)
                    for i in range(300)}
            done, not_done = wait(futs, T)
            assert not not_done
            for f, code in futs.items():
                assert f.result() == code
        except BaseException as e:  # noqa: reported below
            errors.append(e)
    threads = [threading.Thread(target=sync_worker, args=(t,)) for t in range(6)]
    threads += [threading.Thread(target=async_worker, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
        assert not th.is_alive(), "a worker hung"
    assert not errors, errors[:3]
    # Every callback frame got exactly one cb_result, every event arrived.
    deadline = time.monotonic() + T
    want = set(h.cb_ids)
    while time.monotonic() < deadline:
        with fake.got:
            got = [x["callback"] for x in fake.received if x.get("op") == "cb_result"]
        if set(got) == want and len(seen_events) == 200 - h.events_left:
            break
        time.sleep(0.01)
    assert sorted(got) == sorted(want)
    assert len(seen_events) == 200 - h.events_left


def test_sync_wait_timeout_then_late_reply_still_resolves(shuffled):
    h, fake, m = shuffled()
    vm = m.create_vm("a", echo=False)
    conn = m._core.conn
    fut = vm.execute_async("never-1")
    with pytest.raises(FutureTimeout):
        conn.wait(fut, 0.05)
    sent = fake.wait_for(lambda x: x.get("code") == "never-1")
    # Nobody is waiting now: the background thread must read the reply.
    fake.send(exec_reply(sent))
    assert fut.result(T) == "never-1"
    assert vm.execute("after") == "after"


def test_event_reaches_handler_when_no_request_is_outstanding(shuffled):
    h, fake, m = shuffled()
    vm = m.create_vm("a", echo=False)
    got = threading.Event()
    m.on("LATE", lambda ev: got.set())
    for _ in range(20):
        vm.execute("x")  # leaves the background thread parked for a moment
    fake.send({"event": "LATE", "vm": "a", "ts": 1.0, "detail": {}})
    assert got.wait(T)
    # And once more after the grace period, from a polling thread.
    got.clear()
    time.sleep(reader_mod.GRACE * 4)
    fake.send({"event": "LATE", "vm": "a", "ts": 2.0, "detail": {}})
    assert got.wait(T)


def test_async_reply_after_sync_caller_left_is_read(shuffled):
    # The last sync caller leaves with an async request outstanding: the
    # background thread must be woken to read it, not wait for a timer.
    h, fake, m = shuffled()
    vm = m.create_vm("a", echo=False)
    for i in range(50):
        assert vm.execute("s") == "s"
        fut = vm.execute_async("never-a%d" % i)
        sent = fake.wait_for(lambda x, i=i: x.get("code") == "never-a%d" % i)
        fake.send(exec_reply(sent))
        assert fut.result(T) == "never-a%d" % i


def test_connection_loss_wakes_leader_and_followers(shuffled):
    h, fake, m = shuffled()
    vm = m.create_vm("a", echo=False)
    errors = []

    def stuck():
        try:
            vm.execute("never-stuck")
        except ManagerError as e:
            errors.append(e)
    threads = [threading.Thread(target=stuck) for _ in range(5)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + T
    while time.monotonic() < deadline:
        with fake.got:
            n = sum(1 for x in fake.received if x.get("code") == "never-stuck")
        if n == 5:
            break
        time.sleep(0.01)
    fake.drop()
    for th in threads:
        th.join(T)
        assert not th.is_alive(), "a sync caller waited forever"
    assert len(errors) == 5


def test_close_from_another_thread_wakes_sync_caller(shuffled):
    h, fake, m = shuffled()
    vm = m.create_vm("a", echo=False)
    out = []
    th = threading.Thread(target=lambda: out.append(
        pytest.raises(ManagerError, vm.execute, "never-close")))
    th.start()
    fake.wait_for(lambda x: x.get("code") == "never-close")
    m.close()
    th.join(T)
    assert not th.is_alive() and out


def test_done_callback_may_call_sync(shuffled):
    # Done-callbacks run on whichever thread reads; one that makes a blocking
    # call keeps reading on that thread instead of deadlocking.
    h, fake, m = shuffled()
    vm = m.create_vm("a", echo=False)
    res = []
    done = threading.Event()

    def cb(f):
        res.append(vm.execute("inner"))
        done.set()
    vm.execute_async("outer").add_done_callback(cb)
    assert done.wait(T)
    assert res == ["inner"]


def test_real_manager_threads_mixed(manager):
    vms = [manager.create_vm("mix%d" % i, echo=False,
                             callbacks={"twice": lambda x: 2 * x}) for i in range(3)]
    errors = []

    def sync_worker(t):
        try:
            vm = vms[t % 3]
            for i in range(100):
                assert vm.execute("return twice(%d)" % i) == 2 * i
                assert vm.call("tostring", i) == str(i)
        except BaseException as e:  # noqa: reported below
            errors.append(e)

    def async_worker(t):
        try:
            futs = [vms[i % 3].execute_async("return %d" % i) for i in range(400)]
            done, not_done = wait(futs, 30)
            assert not not_done
            assert [f.result() for f in futs] == list(range(400))
        except BaseException as e:  # noqa: reported below
            errors.append(e)
    threads = [threading.Thread(target=sync_worker, args=(t,)) for t in range(4)]
    threads += [threading.Thread(target=async_worker, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
        assert not th.is_alive(), "a worker hung"
    assert not errors, errors[:3]
