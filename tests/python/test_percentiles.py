"""metrics() p50/p99 and the Prometheus summary quantiles are nearest-rank
percentiles over the duration window: checked against the durations the
manager itself reports run by run in history(), so every expected figure is
exact and nothing here depends on how fast the machine is."""

import math
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

T = 30.0
WINDOW = 4096   # STATS_WINDOW in manager/stats.h
HEAVY = "local x = 0 for i = 1, %d do x = x + i end return x"


def nearest_rank(values, q):
    s = sorted(values)
    return s[max(1, math.ceil(q * len(s) - 1e-9)) - 1]


def ok_durations(m, n=1024):
    return [e["duration_ms"] for e in m.history(n) if e["ok"]]


def run_all(vm, codes):
    futs = [vm.execute_async(c) for c in codes]
    for f in futs:
        f.result(T)


def quantiles(port):
    url = "http://127.0.0.1:%d/metrics" % port
    with urllib.request.urlopen(url, timeout=T) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "bioxen_execution_duration_seconds":
                out[s.labels["quantile"]] = s.value
    return out


def check_against(m, durations, port=None):
    mt = m.metrics()
    assert mt["duration_window"] == len(durations)
    assert mt["p50_ms"] == nearest_rank(durations, 0.5)
    assert mt["p99_ms"] == nearest_rank(durations, 0.99)
    assert mt["avg_ms"] == pytest.approx(sum(durations) / len(durations), rel=1e-9)
    if port is not None:
        q = quantiles(port)
        assert q["0.5"] == pytest.approx(mt["p50_ms"] / 1e3, rel=1e-12)
        assert q["0.99"] == pytest.approx(mt["p99_ms"] / 1e3, rel=1e-12)
    return mt


def test_one_slow_run_is_the_p99(make_manager):
    """The issue's case: one long run among nine short ones is the p99, in
    metrics() and on the Prometheus endpoint."""
    m = make_manager(metrics_port=0)
    vm = m.create_vm("outlier")
    run_all(vm, ["return 1"] * 9 + [HEAVY % 3000000])
    d = ok_durations(m)
    assert len(d) == 10
    mt = check_against(m, d, m.metrics_port)
    assert mt["p99_ms"] == max(d) == mt["max_ms"]


def test_ramp_of_fifty(make_manager):
    """A ramp of run lengths: rank ceil(0.99 * 50) = 50 is the longest, where
    an index of (n-1)*0.99 rounded down named the 49th."""
    m = make_manager(metrics_port=0)
    vm = m.create_vm("ramp")
    run_all(vm, [HEAVY % (i * 20000) for i in range(1, 51)])
    d = ok_durations(m)
    assert len(d) == 50
    mt = check_against(m, d, m.metrics_port)
    assert mt["p99_ms"] == max(d)


def test_wrapped_window_forgets_old_runs(make_manager):
    """60 long runs, then a full window of short ones: the percentiles and
    the average are over the latest WINDOW runs only, while min/max stay
    totals since start. Each chunk's durations are read from history before
    the ring (1024) moves on, so the whole window is known."""
    m = make_manager(metrics_port=0)
    vm = m.create_vm("wrap")
    run_all(vm, [HEAVY % 1000000] * 60)
    heavy = ok_durations(m)
    assert len(heavy) == 60
    check_against(m, heavy, m.metrics_port)
    fast = []
    for _ in range(WINDOW // 1024):
        run_all(vm, ["return 1"] * 1024)
        fast += ok_durations(m)
    assert len(fast) == WINDOW
    # before the wrap the long runs dominate the p99; after it none is left
    mt = check_against(m, fast, m.metrics_port)
    assert mt["executions_total"] == 60 + WINDOW
    assert mt["max_ms"] == max(heavy + fast)
    assert mt["min_ms"] == min(heavy + fast)
