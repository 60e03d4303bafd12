"""The examples run from the repo root and print what they show."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, expect", [
    ("basic_usage.py", ["4.0", "42", "Hello, Python", "alice"]),
    ("callbacks.py", ["Python got", "ValueError"]),
    ("distributed_compute.py", ["pi", "speed-up", "pool map: 16/16 chunks (100%)"]),
    ("sandbox.py", ["stopped by the counting allocator", "Seccomp 2", "POLICY_HOTLOAD",
                    "stopped by the policy", "the manager still answers: True"]),
    ("p2p_messaging.py", ["Hello from client!", "broadcast reached 3 peers",
                          "late hello", "from Python"]),
])
def test_example_runs(name, expect):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, str(REPO / "examples" / name)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    for word in expect:
        assert word in r.stdout, (word, r.stdout)
