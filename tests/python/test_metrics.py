"""Metrics, history, per-VM stats and the Prometheus endpoint, end to end
against a fresh manager so every count is exact."""

import os
import signal
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pylua_bioxen_vm import (ExecutionTimeout, InvalidRequest, LuaError, LuaSyntaxError,
                             MemoryLimitExceeded, VMCrashed, VMManager)

T = 30.0


def run_mix(vm):
    """5 successes (4 exec, 1 call) and one each of LUA_ERROR, SYNTAX_ERROR,
    TIMEOUT and MEMORY_LIMIT, in this order."""
    vm.execute("function sq(x) return x * x end")
    for i in range(3):
        assert vm.execute("return %d" % i) == i
    assert vm.call("sq", 7) == 49
    with pytest.raises(LuaError):
        vm.execute("error('boom')")
    with pytest.raises(LuaSyntaxError):
        vm.execute("return +")
    with pytest.raises(ExecutionTimeout):
        vm.execute("while true do end", timeout=0.3)
    with pytest.raises(MemoryLimitExceeded):
        vm.execute("return #string.rep('x', 1 << 30)")


CODES = ["LUA_ERROR", "SYNTAX_ERROR", "TIMEOUT", "MEMORY_LIMIT"]


def test_metrics_add_up(make_manager):
    m = make_manager()
    vm = m.create_vm("mix", memory_limit=16 << 20)
    run_mix(vm)
    mt = m.metrics()
    assert mt["executions"] == mt["executions_total"] == 9
    assert mt["errors"] == mt["errors_total"] == 4
    assert mt["error_rate"] == pytest.approx(4 / 9)
    assert mt["errors_by_code"] == {c: 1 for c in CODES}
    assert mt["vms"] == mt["vms_alive"] == 1 and mt["vms_created_total"] == 1
    assert mt["vms_crashed_total"] == 0 and mt["vms_restarted_total"] == 0
    # durations: the successful runs, over a window of the latest ones
    assert mt["duration_window"] == 5 and mt["duration_window_max"] >= 1000
    assert 0 <= mt["min_ms"] <= mt["p50_ms"] <= mt["p99_ms"] <= mt["max_ms"]
    assert mt["min_ms"] <= mt["avg_ms"] <= mt["max_ms"]
    assert mt["peak_mem_bytes"] > 0 and mt["uptime_s"] > 0
    m.create_vm("second")
    assert m.metrics()["vms_created_total"] == 2


def test_history_order_content_and_bound(make_manager):
    m = make_manager()
    vm = m.create_vm("h", memory_limit=16 << 20)
    run_mix(vm)
    h = m.history()
    assert [e["op"] for e in h] == ["exec"] * 4 + ["call"] + ["exec"] * 4
    assert [e["ok"] for e in h] == [True] * 5 + [False] * 4
    assert [e["error"] for e in h] == [None] * 5 + CODES
    assert all(e["vm"] == "h" for e in h)
    assert [e["ts"] for e in h] == sorted(e["ts"] for e in h)
    for e in h[:5]:
        assert e["duration_ms"] >= 0 and e["mem_bytes"] > 0
    assert m.history(3) == h[-3:]
    assert m.history(0) == []
    assert m.history(5000) == h
    with pytest.raises(InvalidRequest):
        m.history(-1)
    with pytest.raises(InvalidRequest):
        m._core.conn.call("history", {"n": "ten"})
    # the ring keeps the latest 1024 runs, newest last
    futs = [vm.execute_async("return %d" % i) for i in range(1030)]
    assert [f.result(T) for f in futs] == list(range(1030))
    h = m.history(2000)
    assert len(h) == 1024 and all(e["ok"] for e in h)
    assert m.metrics()["executions_total"] == 1039


def test_vm_stats_fields(manager):
    vm = manager.create_vm("st", memory_limit=16 << 20)
    st = vm.stats()
    assert st["executions"] == 0 and st["errors"] == 0 and st["last_error"] is None
    vm.execute("x = {} for i = 1, 1000 do x[i] = i end")
    with pytest.raises(LuaError):
        vm.execute("error('the message')")
    st = vm.stats()
    for k in ("pid", "cpu_ms", "mem_bytes", "mem_limit", "rss_bytes", "executions",
              "errors", "restarts"):
        assert k in st
    assert st["rss_bytes"] > 0 and st["mem_bytes"] > 0 and st["cpu_ms"] >= 0
    assert st["executions"] == 2 and st["errors"] == 1 and st["restarts"] == 0
    le = st["last_error"]
    assert le["code"] == "LUA_ERROR" and "the message" in le["message"] and le["ts"] > 0
    # a later success keeps the last error; another VM has its own counters
    vm.execute("return 1")
    assert vm.stats()["last_error"]["code"] == "LUA_ERROR"
    assert manager.create_vm("other").stats()["executions"] == 0


def test_kills_and_crashes_count(manager):
    """Runs the node never answers still count: a timeout kill (the node is
    stuck in C) restarts the node and the VM's counters live on; a crash
    counts its run and the crash."""
    vm = manager.create_vm("blk", timeout=0.3)
    vm.execute("return 1")
    with pytest.raises(ExecutionTimeout) as ei:
        vm.execute("return string.find(string.rep('a', 40), string.rep('a*', 30) .. 'b')")
    assert ei.value.restarted
    st = vm.stats()
    assert st["executions"] == 2 and st["errors"] == 1 and st["restarts"] == 1
    assert st["last_error"]["code"] == "TIMEOUT"
    assert [e["error"] for e in manager.history()] == [None, "TIMEOUT"]
    victim = manager.create_vm("victim")
    pid = victim.stats()["pid"]
    fut = victim.execute_async("while true do end")
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(VMCrashed):
        fut.result(T)
    mt = manager.metrics()
    assert mt["vms_restarted_total"] == 1 and mt["vms_crashed_total"] == 1
    assert mt["errors_by_code"] == {"TIMEOUT": 1, "VM_CRASHED": 1}
    assert mt["executions_total"] == 3 and mt["vms_created_total"] == 2
    assert mt["vms_alive"] == 1


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=T) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_matches_metrics(make_manager):
    m = make_manager(metrics_port=0)
    port = m.metrics_port
    assert isinstance(port, int) and port > 0
    vm = m.create_vm("prom", memory_limit=16 << 20)
    run_mix(vm)
    vm.stats()      # caches cpu and rss for the per-VM gauges
    mt = m.metrics()
    assert mt["metrics_port"] == port
    s = samples(scrape(port))
    assert s[("bioxen_executions_total", ())] == mt["executions_total"] == 9
    for code in CODES:
        assert s[("bioxen_errors_total", (("code", code),))] == 1
    assert s[("bioxen_vms_created_total", ())] == 1
    assert s[("bioxen_vms_alive", ())] == 1
    assert s[("bioxen_peak_memory_bytes", ())] == mt["peak_mem_bytes"]
    assert s[("bioxen_execution_duration_seconds_count", ())] == 5
    q = s[("bioxen_execution_duration_seconds", (("quantile", "0.5"),))]
    assert q == pytest.approx(mt["p50_ms"] / 1e3)
    vml = (("vm", "prom"),)
    assert s[("bioxen_vm_executions_total", vml)] == 9
    assert s[("bioxen_vm_errors_total", vml)] == 4
    assert s[("bioxen_vm_heap_bytes", vml)] > 0
    assert s[("bioxen_vm_rss_bytes", vml)] > 0


def test_prometheus_other_paths_and_garbage(make_manager):
    m = make_manager(metrics_port=0, metrics_host="127.0.0.1")
    port = m.metrics_port
    with pytest.raises(urllib.error.HTTPError) as ei:
        scrape(port, "/")
    assert ei.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as ei:
        scrape(port, "/metrics/../etc")
    assert ei.value.code in (400, 404)
    # garbage, a huge header and a half-sent request: none hurts the manager
    for junk in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET /metrics HTTP/1.1\r\nX: "
                 + b"a" * 100000 + b"\r\n\r\n", b"GET /met"):
        with socket.create_connection(("127.0.0.1", port), timeout=T) as s:
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                s.recv(4096)
            except OSError:
                pass    # the manager may close on us mid-send: that is fine
    idle = socket.create_connection(("127.0.0.1", port), timeout=T)  # left open
    try:
        vm = m.create_vm("still")
        assert vm.execute("return 6 * 7") == 42
        assert samples(scrape(port))[("bioxen_executions_total", ())] == 1
    finally:
        idle.close()


def test_metrics_port_arguments(make_manager):
    with pytest.raises(InvalidRequest):
        VMManager(metrics_port=70000)
    with pytest.raises(InvalidRequest):
        VMManager(metrics_port="9100")
    with pytest.raises(InvalidRequest):
        VMManager(metrics_host="127.0.0.1")
    with pytest.raises(InvalidRequest):
        VMManager("unix:/nonexistent.sock", metrics_port=0)
    assert make_manager().metrics_port is None
