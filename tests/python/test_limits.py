"""Limits end to end: memory, instructions, wall timeout, node kill."""

import os
import signal
import time

import pytest

from pylua_bioxen_vm import (ExecutionTimeout, InstructionLimitExceeded,
                             MemoryLimitExceeded, VMCrashed)

T = 30.0


def test_memory_limit_loop_and_single_rep(manager):
    vm = manager.create_vm("mem", memory_limit=16 << 20)
    with pytest.raises(MemoryLimitExceeded) as ei:
        vm.execute("local t = {} for i = 1, 1e9 do t[i] = i end")
    assert "still usable" in str(ei.value) or ei.value.restarted
    assert vm.execute("return 1 + 1") == 2
    with pytest.raises(MemoryLimitExceeded):
        vm.execute("return #string.rep('x', 1 << 30)")
    assert vm.execute("return 'alive'") == "alive"
    st = vm.stats()
    assert st["mem_bytes"] < 16 << 20


def test_instruction_limit_plain_and_pcall(manager):
    vm = manager.create_vm("ins", instruction_limit=1_000_000)
    with pytest.raises(InstructionLimitExceeded) as ei:
        vm.execute("while true do end")
    assert not ei.value.restarted and "'ins'" in str(ei.value)
    with pytest.raises(InstructionLimitExceeded):
        vm.execute("local ok = pcall(function() while true do end end) "
                   "while true do end")
    with pytest.raises(InstructionLimitExceeded):
        vm.execute("for i = 1, 10 do pcall(function() while true do end end) end return 'escaped'")
    assert vm.execute("return 40 + 2") == 42
    # a per-call override
    with pytest.raises(InstructionLimitExceeded):
        manager.create_vm("ins2").execute("while true do end", instruction_limit=10_000)


def test_wall_timeout_keeps_globals(manager):
    vm = manager.create_vm("wall", timeout=0.5)
    vm.execute("kept = 42")
    t0 = time.monotonic()
    with pytest.raises(ExecutionTimeout) as ei:
        vm.execute("while true do end")
    assert time.monotonic() - t0 < 10
    assert ei.value.restarted is False and "still usable" in str(ei.value)
    assert vm.execute("return kept") == 42


def test_per_call_timeout_override(manager):
    vm = manager.create_vm("wall2")
    with pytest.raises(ExecutionTimeout):
        vm.execute("while true do end", timeout=0.3)
    assert vm.execute("return 1") == 1


def test_pattern_bomb_times_out_neighbour_answers(manager):
    bomb = manager.create_vm("bomb", timeout=1.0)
    other = manager.create_vm("neighbour")
    t0 = time.monotonic()
    fut = bomb.execute_async(
        "return string.find(string.rep('a', 40), string.rep('a*', 30) .. 'b')")
    answers = 0
    while not fut.done() and time.monotonic() - t0 < T:
        assert other.execute("return 7", timeout=5) == 7
        answers += 1
    with pytest.raises(ExecutionTimeout) as ei:
        fut.result(T)
    elapsed = time.monotonic() - t0
    print("pattern bomb stopped after %.2f s; neighbour answered %d times"
          % (elapsed, answers))
    assert elapsed < 2.0, "took %.2f s" % elapsed
    assert answers > 0
    assert "restarted" in str(ei.value)
    assert bomb.execute("return 'fresh'") == "fresh"


def test_sigkill_mid_call_is_vm_crashed(manager):
    victim = manager.create_vm("victim")
    other = manager.create_vm("bystander")
    other.execute("x = 5")
    pid = victim.stats()["pid"]
    fut = victim.execute_async("while true do end")
    queued = victim.execute_async("return 1")
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(VMCrashed) as ei:
        fut.result(T)
    assert "'victim'" in str(ei.value)
    with pytest.raises(VMCrashed):
        queued.result(T)
    assert other.execute("return x") == 5


def test_cpu_limit_kills_and_restarts(manager):
    from pylua_bioxen_vm import CPULimitExceeded
    vm = manager.create_vm("cpu", cpu_limit=1)
    with pytest.raises(CPULimitExceeded) as ei:
        vm.execute("while true do end")
    assert ei.value.restarted and "restarted" in str(ei.value)
    assert vm.execute("return 'back'") == "back"
