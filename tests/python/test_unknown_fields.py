"""The wire fails closed: every op refuses a field it does not take.

A misspelled limit, or ``memory_limit`` at the top level of ``create``
instead of inside ``limits``, must never make an unlimited VM: the request
is refused with BAD_REQUEST naming the field, and nothing happens.
"""

import re

import pytest

from conftest import REPO
from test_manager_protocol import DEADLINE, mgr, conn  # noqa: F401 (fixtures)


def table_ops():
    """(name, flags) of every op declared in manager/ops.def."""
    text = (REPO / "manager" / "ops.def").read_text()
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"^OP\((\w+),\s*\w+,\s*\w+,\s*([^,]+),", text, re.M)]


REPLIED = [name for name, flags in table_ops() if "OPF_NOREPLY" not in flags]


def test_the_table_is_read():
    names = {n for n, _ in table_ops()}
    assert {"exec", "create", "shutdown", "mail_send", "cb_result"} <= names


@pytest.mark.parametrize("op", REPLIED)
def test_every_op_refuses_an_unknown_field(conn, op):
    e = conn.err(op, bogus_field=1, vm="v", name="n")
    assert e["code"] == "BAD_REQUEST", e
    assert "bogus_field" in e["message"] and op in e["message"], e
    assert conn.ok("ping") == "pong"    # refused, and nothing else happened


def test_create_with_a_limit_at_the_top_level_is_refused(conn):
    e = conn.err("create", name="loose", memory_limit=1 << 20)
    assert e["code"] == "BAD_REQUEST"
    assert "'memory_limit'" in e["message"] and '"limits"' in e["message"], e
    assert "loose" not in {v["name"] for v in conn.ok("list")}


def test_create_with_a_misspelled_limit_is_refused(conn):
    e = conn.err("create", name="loose", limits={"memory_limt": 1 << 20})
    assert e["code"] == "BAD_REQUEST" and "memory_limt" in e["message"], e
    assert "loose" not in {v["name"] for v in conn.ok("list")}


def test_create_with_an_unknown_policy_field_is_refused(conn):
    e = conn.err("create", name="loose", policy={"mem": 1 << 20, "memroy": 1})
    assert e["code"] == "BAD_REQUEST" and "memroy" in e["message"], e


def test_a_misspelled_exec_override_is_refused(conn):
    conn.ok("create", name="v1")
    e = conn.err("exec", vm="v1", code="return 1", timout=0.01)
    assert e["code"] == "BAD_REQUEST" and "timout" in e["message"], e
    r = conn.ok("exec", vm="v1", code="return 1", timeout=5)
    assert r["values"] == [1]


def test_shutdown_with_an_unknown_field_does_not_stop_the_manager(mgr, conn):
    e = conn.err("shutdown", please=True)
    assert e["code"] == "BAD_REQUEST"
    assert conn.ok("ping") == "pong"
    assert mgr.proc.poll() is None


def test_the_documented_create_fields_are_accepted(conn):
    r = conn.ok("create", name="full", limits={"memory_limit": 1 << 24, "timeout": 5.0,
                                               "instruction_limit": 10 ** 8,
                                               "cpu_limit": 10.0, "max_output": 4096},
                callbacks=[], networked=False, persistent=False, restart="never",
                policy={"mem": None, "tcp": [], "fs": [], "imports": []},
                mailbox_size=8, outbox_size=8)
    assert r["name"] == "full"
