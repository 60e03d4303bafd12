"""The examples run from the repo root and print what they show."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_net_jobs import need_free

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, expect", [
    ("basic_usage.py", ["4.0", "42", "Hello, Python", "alice"]),
    ("callbacks.py", ["Python got", "ValueError"]),
    ("distributed_compute.py", ["pi", "speed-up", "pool map: 16/16 chunks (100%)"]),
    ("sandbox.py", ["stopped by the counting allocator", "Seccomp 2", "POLICY_HOTLOAD",
                    "stopped by the policy", "the manager still answers: True"]),
    ("p2p_messaging.py", ["Hello from client!", "broadcast reached 3 peers", "from Python",
                          "[client job] server replied: {", "[p2p job] peer's greeting: {'hello': 'server'}",
                          "'re': 'late hello'", "[client first] p2p got: {'hello': 'server'}"]),
])
def test_example_runs(name, expect):
    if name == "p2p_messaging.py":
        need_free(8080, 8081)     # the seed's example names its ports
    env = dict(os.environ)
    r = subprocess.run([sys.executable, str(REPO / "examples" / name)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    for word in expect:
        assert word in r.stdout, (word, r.stdout)
