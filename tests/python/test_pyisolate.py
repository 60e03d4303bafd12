"""The pyisolate face (issue 15 §2): pyisolate's own API examples (its
API.md v0.1, /work/shared/seeds/004), imports adapted, guest code in Lua,
against real managers and nodes.

pyisolate's guest language is Python; each example whose guest line is
Python runs its Lua equivalent, written next to it.  Most tests use the
face's shared embedded manager (what ``psi.spawn`` uses by default); the
``shared`` fixture shuts it down after each test and checks that the
manager and every node it started are gone.
"""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import REPO, descendants, wait_gone
from pylua_bioxen_vm import (BioxenError, CPULimitExceeded, ExecutionTimeout,
                             InstructionLimitExceeded, InvalidRequest, LuaError,
                             LuaSyntaxError, MemoryLimitExceeded, PolicyViolation,
                             VMExists, VMManager)
from pylua_bioxen_vm import Policy as BioxenPolicy
import pylua_bioxen_vm.pyisolate as psi
from pylua_bioxen_vm.pyisolate.policy import Policy

T = 30.0    # generous deadline of every wait on a loaded machine


@pytest.fixture
def shared():
    """The face's shared embedded manager, shut down and checked after."""
    m = psi.get_manager()
    mpid = m._core.embedded.proc.pid
    try:
        yield m
    finally:
        procs = [mpid] + descendants(mpid)
        psi.shutdown()
        assert psi.list_active() == {}
        left = wait_gone(procs)
        assert not left, "processes left after psi.shutdown(): %r" % left


def test_seed_section2_exec_post_recv(shared):
    """§2: ``sb.exec("from math import sqrt; post(sqrt(2))")`` with its
    guest line in Lua; the seed's ``recv(timeout=0.1)`` widened to T so a
    loaded CI machine cannot fail it."""
    sb = psi.spawn("guest42", policy="defaults")
    sb.exec("local sqrt = math.sqrt; post(sqrt(2))")
    result = sb.recv(timeout=T)      # 1.4142135623
    assert abs(result - 1.4142135623) < 1e-9
    assert sb.vm.stats()["pid"] in descendants(shared._core.embedded.proc.pid)
    sb.close()


def test_exec_exception_goes_to_the_outbox_in_order(shared):
    """§2: exec's exceptions are posted to the outbox and retrieved with
    recv(), after what the guest posted before failing; later work runs."""
    sb = psi.spawn("errs")
    sb.exec("post(1) post({a = 2}) error('boom')")       # returns at once, no raise
    sb.exec("post(3)")
    sb.exec("this is not lua")
    sb.exec("post(4)")
    assert sb.recv(timeout=T) == 1
    assert sb.recv(timeout=T) == {"a": 2}
    with pytest.raises(psi.SandboxError) as e:
        sb.recv(timeout=T)
    assert isinstance(e.value, LuaError) and "boom" in str(e.value)
    assert sb.recv(timeout=T) == 3
    with pytest.raises(LuaSyntaxError):
        sb.recv(timeout=T)
    assert sb.recv(timeout=T) == 4
    # many at once: every post of a failing exec still comes before its error
    sb.exec("for i = 1, 300 do post(i) end error('late')")
    assert [sb.recv(timeout=T) for _ in range(300)] == list(range(1, 301))
    with pytest.raises(LuaError, match="late"):
        sb.recv(timeout=T)
    with pytest.raises(InvalidRequest):
        sb.exec(42)                  # not source: refused where it is given
    sb.close()


def test_recv_without_timeout_never_misses_a_wakeup(shared):
    """Many short rounds of exec then recv() with no timeout: a pull answered
    before recv registered for it (the race of a reply read by the
    background reader) must still wake recv, or a round hangs for ever."""
    sb = psi.spawn("rounds")
    done = []

    def rounds():
        for i in range(300):
            sb.exec("post(%d)" % i if i % 3 else "error('e%d')" % i)
            try:
                done.append(sb.recv())
            except LuaError as e:
                done.append(str(e))
    t = threading.Thread(target=rounds, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "recv() hung after %d rounds" % len(done)
    assert done[1:3] == [1, 2] and "e0" in done[0] and "e3" in done[3]
    sb.close()


def test_call_dotted_with_kwargs_as_trailing_table(shared):
    """§2: call(func, *args, **kw) calls the dotted func in the guest; it is
    an RPC, so its value returns and its error raises right there."""
    sb = psi.spawn("rpc")
    # exec returns at once; the call takes its turn behind it
    sb.exec("util = {} function util.scale(x, opts) return x * opts.by, opts.tag end")
    assert sb.call("util.scale", 21, by=2, tag="t") == (42, "t")
    assert sb.call("string.format", "%d-%s", 4, "x") == "4-x"
    assert sb.call("math.max", 3, 9, 4) == 9
    with pytest.raises(LuaError):
        sb.call("util.scale", 1)     # opts is nil: the guest errs, call raises
    with pytest.raises(LuaError):
        sb.call("no.such.fn")
    assert sb.call_async("math.abs", -5).result(T) == 5
    sb.close()


def test_recv_raises_pyisolates_timeout_and_loses_nothing(shared):
    sb = psi.spawn("slow")
    with pytest.raises(psi.TimeoutError) as e:
        sb.recv(timeout=0.05)
    assert isinstance(e.value, TimeoutError) and isinstance(e.value, psi.SandboxError)
    # busy for 0.3 s of CPU, then posts: a 0.05 s recv cannot get it ...
    sb.exec("local t = os.clock() while os.clock() - t < 0.3 do end post('late')")
    with pytest.raises(psi.TimeoutError):
        sb.recv(timeout=0.05)
    # ... and the value is not lost to the recv that gave up
    assert sb.recv(timeout=T) == "late"
    with pytest.raises(psi.TimeoutError):
        sb.recv(timeout=0)
    sb.close()


def test_seed_section3_policy_chain(shared, tmp_path):
    """§3 verbatim (import adapted), then what each grant lets the Lua guest do."""
    cust = (Policy(mem="256MiB")
            .allow_fs("/srv/data/*.parquet")
            .allow_tcp("127.0.0.1:9200")
            .allow_import("math"))
    assert cust.fs == ["/srv/data/*.parquet"]
    assert cust.tcp == ["127.0.0.1:9200"]
    assert cust.imports == ["math"] and cust.mem == 256 << 20
    assert isinstance(cust, BioxenPolicy)     # bioxen's Policy, not a copy
    sb = psi.spawn("etl", policy=cust)
    assert sb.vm.stats()["mem_limit"] == 256 << 20
    sb.exec("post(type(socket))")             # a TCP grant makes it networked
    assert sb.recv(timeout=T) == "table"
    sb.exec("return fs.read('/etc/hostname')")
    with pytest.raises(psi.PolicyError) as e:
        sb.recv(timeout=T)
    assert isinstance(e.value, PolicyViolation)
    sb.close()
    # a file grant that matches: the guest reads it
    (tmp_path / "a.txt").write_text("hello")
    with psi.spawn("reader", policy={"fs": [str(tmp_path / "*.txt")]}) as sb:
        sb.exec("post(fs.read(%r))" % str(tmp_path / "a.txt"))
        assert sb.recv(timeout=T) == "hello"


def test_policy_forms_and_policy_errors(shared):
    """spawn's policy: "defaults", None, a Policy, a dict of its fields;
    anything wrong is a PolicyError raised at once."""
    for form in ("defaults", None, Policy(), {"mem": "16MiB"}, BioxenPolicy(mem=1 << 24)):
        with psi.spawn("forms", policy=form) as sb:
            sb.exec("post(1 + 1)")
            assert sb.recv(timeout=T) == 2
            assert sb.policy.tcp == [] and sb.policy.fs == []
    mine = Policy().allow_import("a")
    with psi.spawn("imp", policy=mine, allowed_imports=["b.c"]) as sb:
        assert sb.policy.imports == ["a", "b.c"]
    assert mine.imports == ["a"]              # the caller's Policy is not changed
    bad = [lambda: Policy(mem="lots"), lambda: Policy().allow_fs("relative/*"),
           lambda: Policy().allow_tcp("nohost"), lambda: Policy().allow_import("a b"),
           lambda: psi.spawn("x", policy="paranoid"),
           lambda: psi.spawn("x", policy={"memory": "1G"}),     # misspelled: refused
           lambda: psi.spawn("x", policy={"fs": "/srv/*"}),     # a str is no list
           lambda: psi.spawn("x", policy=3),
           lambda: psi.spawn("x", allowed_imports="math")]
    for make in bad:
        with pytest.raises(psi.PolicyError) as e:
            make()
        assert isinstance(e.value, InvalidRequest)    # bioxen's class for it too
    assert psi.list_active() == {}


def test_exceptions_are_bioxens_classes(shared):
    """§5: the names are bioxen's classes or bases of them, so pyisolate's
    except catches what bioxen raises (here from a plain VM too)."""
    assert psi.SandboxError is BioxenError
    assert issubclass(psi.PolicyError, psi.SandboxError)
    assert issubclass(PolicyViolation, psi.PolicyError)
    assert issubclass(ExecutionTimeout, psi.TimeoutError)
    assert issubclass(InstructionLimitExceeded, psi.TimeoutError)
    assert issubclass(MemoryLimitExceeded, psi.MemoryExceeded)
    assert issubclass(CPULimitExceeded, psi.CPUExceeded)
    for cls in (psi.PolicyError, psi.TimeoutError, psi.MemoryExceeded, psi.CPUExceeded):
        assert issubclass(cls, psi.SandboxError)
    vm = shared.create_vm("plain", memory_limit=8 << 20)
    try:
        vm.execute("local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end")
    except psi.MemoryExceeded as e:
        assert isinstance(e, MemoryLimitExceeded) and isinstance(e, MemoryError)
    else:
        raise AssertionError("no MemoryExceeded from a memory limit")
    vm.close()


def test_limits_raise_by_pyisolates_names_through_recv(shared):
    with psi.spawn("mem", policy=Policy(mem="8MiB")) as sb:
        sb.exec("local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end")
        with pytest.raises(psi.MemoryExceeded):
            sb.recv(timeout=T)
        sb.exec("post('still here')")
        assert sb.recv(timeout=T) == "still here"
    with psi.spawn("ins", instruction_limit=100_000) as sb:
        sb.exec("while true do end")
        with pytest.raises(psi.TimeoutError) as e:
            sb.recv(timeout=T)
        assert isinstance(e.value, InstructionLimitExceeded)
    with psi.spawn("cpu", cpu_limit=1) as sb:
        sb.exec("while true do end")
        with pytest.raises(psi.CPUExceeded):
            sb.recv(timeout=T)


def _rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def test_stats_are_live_cpu_and_resident_set(shared):
    """§4: sb.stats.cpu_ms (CPU since launch) and sb.stats.mem_bytes (the
    node's resident set), read afresh on each access."""
    sb = psi.spawn("stats")
    pid = sb.vm.stats()["pid"]
    cpu0, rss0 = sb.stats.cpu_ms, sb.stats.mem_bytes
    assert cpu0 >= 0 and 0.5 * _rss(pid) < rss0 < 2 * _rss(pid) + (8 << 20)
    sb.exec("local t = os.clock() while os.clock() - t < 0.3 do end")
    assert sb.call("tostring", 1) == "1"          # queued behind the exec
    assert sb.stats.cpu_ms >= cpu0 + 200          # 300 ms of CPU, generous
    sb.exec("big = {} for i = 1, 400000 do big[i] = ('y'):rep(100) .. i end post(#big)")
    assert sb.recv(timeout=T) == 400000
    rss1 = sb.stats.mem_bytes
    assert rss1 > rss0 + (20 << 20)               # ~45 MB of strings, resident
    assert sb.stats.heap_bytes > (20 << 20)
    assert rss1 >= sb.stats.heap_bytes            # the process holds its heap
    sb.close()


def test_events_async_iterator(shared):
    """§4: psi.events yields (ts, sandbox, event); each async for sees every
    event from its start (two consumers here), MEM_KILL and POLICY_HOTLOAD
    among them."""
    async def main():
        got_a, got_b = [], []

        async def consume(into, want):
            async for ts, name, event in psi.events:
                into.append((ts, name, event))
                if len([1 for _, n, _ in into if n == "ev"]) >= want:
                    return
        ta = asyncio.ensure_future(consume(got_a, 2))
        tb = asyncio.ensure_future(consume(got_b, 2))
        await asyncio.sleep(0)                    # both subscribed from here on

        def provoke():
            sb = psi.spawn("ev", policy=Policy(mem="8MiB"))
            sb.exec("local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end")
            with pytest.raises(psi.MemoryExceeded):
                sb.recv(timeout=T)
            sb.vm.set_policy(Policy(mem="16MiB").allow_fs("/srv/*.csv"))
            return sb
        sb = await asyncio.get_running_loop().run_in_executor(None, provoke)
        await asyncio.wait_for(asyncio.gather(ta, tb), T)
        return sb, got_a, got_b
    sb, got_a, got_b = asyncio.run(main())
    for got in (got_a, got_b):
        mine = [(ts, e) for ts, n, e in got if n == "ev"]
        assert [e for _, e in mine] == ["MEM_KILL", "POLICY_HOTLOAD"], got
        assert mine[0][1].detail["limit"] == 8 << 20
        assert abs(mine[0][0] - time.time()) < 600
        assert isinstance(mine[1][1], psi.SandboxEvent) and mine[1][1].type == "POLICY_HOTLOAD"
    sb.close()


def test_arecv_and_call_async_on_an_event_loop(shared):
    """The asyncio twins (a bioxen extension): arecv awaits the same queue
    without blocking the loop; call_async's Future wraps into the loop."""
    sb = psi.spawn("aio")

    async def main():
        ticks = []

        async def ticker():
            while True:
                ticks.append(1)
                await asyncio.sleep(0.01)
        t = asyncio.ensure_future(ticker())
        sb.exec("local t = os.clock() while os.clock() - t < 0.3 do end post('a')")
        sb.exec("error('aio boom')")
        assert await sb.arecv(T) == "a"
        with pytest.raises(LuaError, match="aio boom"):
            await sb.arecv(T)
        with pytest.raises(psi.TimeoutError):
            await sb.arecv(0.05)
        assert await asyncio.wrap_future(sb.call_async("string.upper", "x")) == "X"
        t.cancel()
        return len(ticks)
    assert asyncio.run(main()) >= 2         # the loop kept running meanwhile
    sb.close()


def test_close_graceful_then_kill(shared):
    """§1: close(timeout=0.2) lets running work finish that long, then kills."""
    sb = psi.spawn("spin")
    pid = sb.vm.stats()["pid"]
    sb.exec("while true do end")
    t0 = time.monotonic()
    assert sb.close(timeout=0.2) is False         # cut off: killed
    assert time.monotonic() - t0 < T
    assert not wait_gone([pid])
    assert "spin" not in psi.list_active()
    with pytest.raises(psi.SandboxError):
        sb.exec("post(1)")
    with pytest.raises(psi.SandboxError):
        sb.recv(timeout=0)
    assert sb.close() is True                     # idempotent
    # work still queued when close cuts off: a waiting call fails, never hangs
    sb = psi.spawn("queued")
    sb.exec("while true do end")
    for _ in range(500):
        sb.exec("post(1)")
    caught = []

    def waiter():
        try:
            sb.call("tostring", 1)
        except psi.SandboxError as e:
            caught.append(e)
    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    assert sb.close(timeout=0.1) is False
    t.join(T)
    assert not t.is_alive() and len(caught) == 1, caught
    sb = psi.spawn("spin")                        # the name is free again
    pid = sb.vm.stats()["pid"]
    sb.exec("local t = os.clock() while os.clock() - t < 0.1 do end")
    assert sb.close(timeout=T) is True            # finished by itself
    assert not wait_gone([pid])


def test_list_active_and_context_manager(shared):
    """§1: with psi.spawn(name, policy) closes on exit; list_active names
    the live ones; a live name cannot be spawned twice."""
    with psi.spawn("cm", "defaults") as sb:
        assert psi.list_active() == {"cm": sb}
        with pytest.raises(VMExists):
            psi.spawn("cm")
        sb.exec("post('in')")
        assert sb.recv(timeout=T) == "in"
        other = psi.spawn("cm2")
        assert set(psi.list_active()) == {"cm", "cm2"}
    assert psi.list_active() == {"cm2": other}
    other.close()
    assert psi.list_active() == {}
    with pytest.raises(InvalidRequest):
        psi.spawn("bad name!")
    assert psi.list_active() == {}


def test_concurrent_first_spawns_share_one_manager():
    """The shared manager starts once even when first spawns race."""
    psi.shutdown()
    boxes, errors = [], []

    def go(i):
        try:
            sb = psi.spawn("race%d" % i)
            sb.exec("post(%d)" % i)
            boxes.append((sb, sb.recv(timeout=T)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T)
    assert not errors and len(boxes) == 6
    assert {id(sb._manager) for sb, _ in boxes} == {id(psi.get_manager())}
    assert sorted(v for _, v in boxes) == list(range(6))
    mpid = psi.get_manager()._core.embedded.proc.pid
    procs = [mpid] + descendants(mpid)
    psi.shutdown()
    assert not wait_gone(procs)


def test_explicit_manager_with_module_dir(tmp_path):
    """A manager of the caller's: spawn(manager=m) for one sandbox,
    set_manager(m) as the default; allowed_imports grants require; the
    face never closes it."""
    (tmp_path / "mymod.lua").write_text("return {twice = function(x) return 2 * x end}")
    with VMManager(module_dir=str(tmp_path), start_timeout=20.0) as m:
        sb = psi.spawn("own", allowed_imports=["mymod"], manager=m)
        sb.exec("post(require('mymod').twice(21))")
        assert sb.recv(timeout=T) == 42
        sb.exec("require('othermod')")
        with pytest.raises(psi.PolicyError):
            sb.recv(timeout=T)
        sb.close()
        psi.set_manager(m)
        try:
            with psi.spawn("dflt", allowed_imports=["mymod"]) as sb2:
                assert sb2._manager is m
                sb2.exec("post(require('mymod').twice(5))")
                assert sb2.recv(timeout=T) == 10
            psi.shutdown()                        # ours only: m stays open
            assert not m.closed and m.ping()
        finally:
            psi.set_manager(None)


def test_shared_manager_closed_at_exit(tmp_path):
    """A script that spawns and never closes leaves no manager or node."""
    script = tmp_path / "leave.py"
    script.write_text(textwrap.dedent("""
        import pylua_bioxen_vm.pyisolate as psi
        sb = psi.spawn("left")
        sb.exec("post(7)")
        assert sb.recv(timeout=30) == 7
        m = psi.get_manager()
        print(m._core.embedded.proc.pid, sb.vm.stats()["pid"], flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    assert not wait_gone(pids)
