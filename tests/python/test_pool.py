"""The manager-side pool behind VMManager.run/map (issue 6, docs/protocol.md "Pool").

Every test drives a real manager and real nodes.  A pool of max 1 makes the
"same VM" tests deterministic: every run lands on the one VM.
"""

import os
import signal
import time

import pytest

from conftest import wait_until

from pylua_bioxen_vm import (ExecutionTimeout, InstructionLimitExceeded, InvalidRequest,
                             LuaError, VMCrashed, VMNotFound)


def pool_vms(m):
    return [v for v in m.list_vms() if v.get("pool")]



def test_run_returns_the_value_like_execute(make_manager):
    m = make_manager()
    assert m.run("return 1 + 1") == 2
    assert m.run("return 'a', 2") == ("a", 2)
    assert m.run("return n * 2", globals={"n": 21}) == 42
    assert m.run("1 + 2", expr=True) == 3            # IsoBox's run("1 + 2")
    assert m.run("x = 1", expr=True) is None


def test_reuse_leaves_no_state_behind(make_manager):
    m = make_manager(pool_max=1)
    m.run("x = 1; string.x = 1; math.pi = 3; _G.evil = {1}; print = nil; "
          "table.insert = function() return 'hijacked' end")
    assert m.run("return x, string.x, evil, print ~= nil, math.pi > 3.1") == \
        (None, None, None, True, True)
    assert m.run("local t = {}; table.insert(t, 5); return t[1]") == 5
    # globals of one run do not leak into the next either
    m.run("return g", globals={"g": "secret"})
    assert m.run("return g") is None
    assert len(pool_vms(m)) == 1


def test_same_limits_after_reset_same_process(make_manager):
    m = make_manager(pool_max=1, instruction_limit=200000)
    for _ in range(3):
        with pytest.raises(InstructionLimitExceeded):
            m.run("while true do end")
        assert m.run("return 7") == 7
    pids = {v["pid"] for v in pool_vms(m)}
    assert len(pids) == 1   # reset, not a new node


def test_queueing_beyond_max(make_manager):
    m = make_manager(pool_max=2)
    futs = [m.run_async("local s = 0 for i = 1, 200000 do s = s + i end return %d" % i)
            for i in range(12)]
    assert [f.result(60) for f in futs] == list(range(12))
    assert len(pool_vms(m)) == 2


def test_idle_vms_above_min_shrink(make_manager):
    m = make_manager(pool_min=1, pool_max=4, pool_idle_timeout=0.2)
    # four runs in flight at once need four VMs (a busy VM takes no second run)
    futs = [m.run_async("local s = 0 for i = 1, 300000 do s = s + i end return 1")
            for _ in range(4)]
    assert [f.result(60) for f in futs] == [1] * 4
    assert wait_until(lambda: len(pool_vms(m)) == 1), pool_vms(m)
    assert m.run("return 3") == 3


def test_warmup_starts_min_vms(make_manager):
    m = make_manager(pool_min=3, pool_max=5)
    assert m.warmup_pool(timeout=60) == 3
    vms = pool_vms(m)
    assert len(vms) == 3 and all(v["state"] == "idle" and v["pid"] > 0 for v in vms)


def test_warmup_with_min_zero_answers_at_once(make_manager):
    assert make_manager().warmup_pool(timeout=60) == 0


@pytest.mark.parametrize("chunksize", [1, 7, None])   # None: picked from the pool size
def test_map_keeps_order(make_manager, chunksize):
    m = make_manager(pool_max=3)
    items = list(range(23))
    assert m.map("function(x) return x * x end", items, chunksize=chunksize) == \
        [x * x for x in items]
    assert m.map("string.upper", ["a", "b", "c"], chunksize=chunksize) == ["A", "B", "C"]
    assert m.map("function(x) return x end", [], chunksize=chunksize) == []


def test_map_async_one_future_per_chunk(make_manager):
    m = make_manager(pool_max=2)
    futs = m.map_async("function(x) return x + 1 end", range(10), chunksize=3)
    assert len(futs) == 4
    assert [f.result(60) for f in futs] == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]


def test_map_errors_raise_the_lua_error(make_manager):
    m = make_manager(pool_max=2)
    with pytest.raises(LuaError, match="bad item"):
        m.map("function(x) if x == 5 then error('bad item') end return x end", range(10),
              chunksize=3)
    with pytest.raises(InvalidRequest):
        m.map("function(x) return x end", [1], chunksize=0)
    assert m.map("function(x) return -x end", [1, 2]) == [-1, -2]


def test_timed_out_pool_vm_does_not_break_later_runs(make_manager):
    m = make_manager(pool_max=1)
    with pytest.raises(ExecutionTimeout):
        m.run("while true do end", timeout=0.3)
    assert m.run("return 'after'") == "after"
    assert len(pool_vms(m)) == 1


def test_crashed_pool_vm_does_not_break_later_runs(make_manager):
    m = make_manager(pool_max=1)
    assert m.warmup_pool(timeout=60) == 0
    assert m.run("return 1") == 1
    pid = pool_vms(m)[0]["pid"]
    fut = m.run_async("while true do end", timeout=60)
    # the exec and its reset are in the VM's FIFO (the run is not queued)
    assert wait_until(lambda: pool_vms(m)[0]["pending"] >= 2)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(VMCrashed):
        fut.result(60)
    assert m.run("return 'alive'") == "alive"
    assert m.map("function(x) return x end", [1, 2, 3]) == [1, 2, 3]
    assert pool_vms(m)[0]["pid"] != pid


def test_pool_vms_are_out_of_the_users_reach(make_manager):
    m = make_manager(pool_min=1)
    m.warmup_pool(timeout=60)
    name = pool_vms(m)[0]["name"]
    with pytest.raises(VMNotFound):
        m._core.conn.call("exec", {"code": "return 1"}, vm=name)
    with pytest.raises(VMNotFound):
        m._core.conn.call("destroy", {}, vm=name)
    with pytest.raises(InvalidRequest):
        m.create_vm(name)
    assert m.shutdown_all() == 0    # the pool is not the user's VMs
    assert len(pool_vms(m)) == 1


def test_pool_goes_with_its_connection(make_manager):
    a, b = make_manager(pool_min=2), None
    a.warmup_pool(timeout=60)
    from pylua_bioxen_vm import VMManager
    b = VMManager(a.address)
    try:
        b.warmup_pool(timeout=60)
        assert b.run("return 5") == 5
        assert len(pool_vms(a)) == 3    # list shows every connection's pool VMs
        b.close()
        assert wait_until(lambda: len(pool_vms(a)) == 2)
    finally:
        b.close()


def test_bad_pool_requests_get_typed_errors(make_manager):
    m = make_manager()
    conn = m._core.conn
    for fields in ({"min": 5, "max": 2}, {"max": 0}, {"min": -1}, {"idle_timeout": "x"},
                   {"limits": {"timeout": -1}}, {"limits": 3}, {"max": 1 << 40}):
        with pytest.raises(InvalidRequest):
            conn.call("pool_config", fields)
    for fields in ({}, {"code": 1}, {"code": "return 1", "globals": [1]},
                   {"code": "return 1", "chunkname": 5}, {"code": "return 1", "timeout": -1},
                   {"code": "return 1", "stream": True}, {"code": "return 1", "expr": 1}):
        with pytest.raises(InvalidRequest):
            conn.call("run", fields)
    assert m.run("return 'still serving'") == "still serving"


# ---- spare nodes (manager/spare.c) ---------------------------------------

def spare_pids(m):
    return set(m._core.conn.call("hello", {}).get("spares") or [])


def test_create_takes_a_spare_that_already_existed(make_manager):
    m = make_manager()
    assert wait_until(lambda: len(spare_pids(m)) == 2)   # default --spares 2
    before = spare_pids(m)
    vm = m.create_vm("fromspare", memory_limit=8 << 20, instruction_limit=100000)
    assert vm.pid in before
    assert vm.execute("return 6 * 7") == 42
    with pytest.raises(InstructionLimitExceeded):
        vm.execute("while true do end")     # init applied the VM's own limits
    assert vm.stats()["mem_limit"] == 8 << 20
    assert wait_until(lambda: len(spare_pids(m)) == 2)   # refilled
    assert vm.pid not in spare_pids(m)


def node_memory_bound(pid):
    """The memory limit of pid's own cgroup in bytes (None: unlimited or no cgroup)."""
    with open("/proc/%d/cgroup" % pid) as f:
        lines = [ln.rstrip("\n").split(":", 2) for ln in f]
    for _, ctl, path in lines:
        if "memory" in ctl.split(","):
            file = "/sys/fs/cgroup/memory%s/memory.limit_in_bytes" % path
            break
    else:
        file = "/sys/fs/cgroup%s/memory.max" % lines[0][2]
    with open(file) as f:
        v = f.read().strip()
    return None if v == "max" or int(v) >= 1 << 60 else int(v)


def test_spares_get_each_vms_own_memory_bound(make_manager):
    m = make_manager()
    probe = m.create_vm("probe", memory_limit=8 << 20)
    if probe.isolation.get("cgroup") is None:
        pytest.skip("no cgroups here: spares carry no memory bound")
    # spares are made for the last create's heap: mix bounded and unbounded
    for i, mem in enumerate([8 << 20, None, 8 << 20, 8 << 20, None, None, 32 << 20, None]):
        assert wait_until(lambda: len(spare_pids(m)) == 2)
        vm = m.create_vm("v%d" % i, memory_limit=mem)
        bound = node_memory_bound(vm.pid)
        if mem is None:
            assert bound is None, "an unbounded VM got a spare's bound"
        else:
            assert bound is not None and mem <= bound < mem + (2 << 30)
        assert vm.execute("return 1") == 1


def test_full_isolation_does_not_take_a_spare(make_manager):
    from pylua_bioxen_vm import IsolationUnavailable
    m = make_manager()
    assert wait_until(lambda: len(spare_pids(m)) == 2)
    before = spare_pids(m)
    try:
        vm = m.create_vm("iso", full_isolation=True)
    except IsolationUnavailable:
        pytest.skip("no namespaces here")
    assert vm.pid not in before
    assert spare_pids(m) == before


def test_spares_zero_turns_them_off(tmp_path):
    import subprocess
    from pylua_bioxen_vm import VMManager
    sock = str(tmp_path / "m.sock")
    p = subprocess.Popen([os.environ["BIOXEN_MANAGER"], "--socket", sock, "--spares", "0",
                          "--exit-with-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().startswith(b"READY")
        with VMManager("unix:" + sock) as m:
            assert spare_pids(m) == set()
            assert m.create_vm("plain").execute("return 1") == 1
            assert spare_pids(m) == set()
    finally:
        p.stdin.close()
        assert p.wait(60) == 0


def test_map_default_chunksize_is_a_few_chunks_per_pool_vm(make_manager):
    m = make_manager(pool_max=2)
    futs = m.map_async("function(x) return -x end", range(100))
    assert len(futs) == 8      # ceil(100 / (4 * 2)) = 13 items a chunk
    assert [v for f in futs for v in f.result(60)] == [-x for x in range(100)]
