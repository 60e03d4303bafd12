"""The attack suite (tests/attacks/*.lua) run against real VMs.

Each attack file starts with a header of ``-- key: value`` lines (format in
tests/attacks/README.md) saying what the attack is and how the sandbox must
answer it.  For every attack and every isolation ``mode``:

1. a fresh VM is created with the header's limits (plus the mode's options);
2. the attack runs and its outcome is checked (exception class and message,
   or the returned value);
3. the blast radius is checked: the manager still answers ``ping``, a
   bystander VM created before the suite still computes and still holds its
   global, the attacked VM answers ``return 42`` (or, if its node crashed,
   the name is free again and a new VM under it answers), and once the
   attacked VM is closed no node process of it is left.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

import pylua_bioxen_vm as bx
from pylua_bioxen_vm import VMCrashed, VMManager, VMNotFound

from conftest import descendants, manager_pid, wait_gone

ATTACKS = Path(__file__).resolve().parents[1] / "attacks"
FILES = sorted(ATTACKS.glob("[0-9][0-9][0-9]_*.lua"))

DEFAULTS = {"memory_limit": 32 << 20, "timeout": 5.0}
HEADER_KEYS = {"attack", "expect", "message", "limits", "result", "truncated", "callbacks"}
# Anything may answer an "any-error" attack but success, a hang or harm to
# others: a clean Lua-level error or the node's death.
ANY_ERROR = (bx.LuaError, bx.LimitExceeded, VMCrashed, bx.ConversionError)
BYSTANDER_MARK = "still here after the attacks"
CHECK_TIMEOUT = 10.0  # seconds for the after-attack probes; only catches hangs


def _fail(*args: Any) -> None:
    raise ValueError("the host refuses: %d arguments" % len(args))


# Host functions an attack may ask for with "-- callbacks: name ...".
CALLBACKS = {
    "echo": lambda *args: args[0] if args else None,
    "fail": _fail,
}


def parse_header(path: Path) -> dict[str, Any]:
    """The attack's header: the leading ``-- key: value`` comment lines."""
    head: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"--\s*([a-z_]+):\s*(.*?)\s*$", line)
        if not m:
            break
        key, val = m.groups()
        assert key in HEADER_KEYS, "%s: unknown header key %r" % (path.name, key)
        head[key] = val
    assert head.get("attack"), "%s: no '-- attack:' line" % path.name
    assert head.get("expect"), "%s: no '-- expect:' line" % path.name
    limits: dict[str, Any] = {}
    for item in head.get("limits", "").split():
        k, _, v = item.partition("=")
        limits[k] = ast.literal_eval(v)
    head["limits"] = limits
    if "result" in head:
        head["result"] = ast.literal_eval(head["result"])
    head["callbacks"] = {n: CALLBACKS[n] for n in head.get("callbacks", "").split()}
    if "truncated" in head:
        head["truncated"] = head["truncated"] == "true"
    return head


def expected_class(name: str) -> type[BaseException]:
    cls = getattr(bx, name, None)
    assert isinstance(cls, type) and issubclass(cls, bx.BioxenError), \
        "expect: %r is not an exception class of pylua_bioxen_vm" % name
    return cls


@pytest.fixture(scope="module", params=[{}, {"full_isolation": True}], ids=["plain", "full"])
def mode(request: Any) -> dict[str, Any]:
    """Extra create_vm options every attacked VM gets (the isolation mode)."""
    return dict(request.param)


@pytest.fixture(scope="module")
def arena() -> Iterator[tuple[VMManager, Any]]:
    """One manager for the whole suite and a bystander VM holding a global.

    At the end: the bystander's node is the manager's only child left (no
    node of an attacked VM leaked), then close() leaves no process at all.
    """
    m = VMManager(start_timeout=20.0)
    mpid = manager_pid(m)
    bystander = m.create_vm("bystander", memory_limit=16 << 20, timeout=5.0, echo=False)
    bystander.execute("mark = %r" % BYSTANDER_MARK)
    try:
        yield m, bystander
        assert bystander.execute("return mark") == BYSTANDER_MARK
        # spare nodes (manager/spare.c) wait for a create, and the zygote
        # (manager/zygote.c) forks the nodes: not leaks
        hello = m._core.conn.call("hello", {})
        spares = set(hello.get("spares") or []) | {hello.get("zygote")}
        left = set(descendants(mpid)) - spares
        assert left == {bystander.stats()["pid"]}, \
            "processes under the manager other than the bystander: %r" % left
    finally:
        procs = [mpid] + descendants(mpid)
        m.close()
        assert not wait_gone(procs), "processes left after close()"


def run_attack(vm: Any, code: str, head: dict[str, Any]) -> Optional[BaseException]:
    """Runs the attack, checks its outcome; returns the exception it raised."""
    expect = head["expect"]
    if expect == "ok":
        res = vm.execute_result(code)
        if "result" in head:
            assert res.value == head["result"]
        if "truncated" in head:
            assert res.output_truncated == head["truncated"]
        return None
    cls = ANY_ERROR if expect == "any-error" else expected_class(expect)
    with pytest.raises(cls) as ei:
        res = vm.execute_result(code)
        pytest.fail("attack succeeded: returned %.300s" % (res.values,))
    if "message" in head:
        assert head["message"] in str(ei.value), str(ei.value)[:500]
    return ei.value


def node_pid(vm: Any) -> Optional[int]:
    """The current node pid of vm, or None if it has none (crashed, gone)."""
    try:
        return int(vm.stats()["pid"])
    except bx.BioxenError:
        return None


def check_attacked_vm(m: VMManager, vm: Any, err: Optional[BaseException],
                      name: str, kw: dict[str, Any]) -> Any:
    """The attacked VM answers again, or its crash freed the name cleanly.

    Returns the handle to close at the end (a new VM after a crash).
    """
    if isinstance(err, VMCrashed) and not err.restarted:
        # A crash removes the VM: the name is free again and usable.
        with pytest.raises(VMNotFound):
            vm.execute("return 42", timeout=CHECK_TIMEOUT)
        vm = m.create_vm(name, echo=False, **kw)
    assert vm.execute("return 42", timeout=CHECK_TIMEOUT) == 42
    return vm


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_attack(arena: tuple[VMManager, Any], mode: dict[str, Any], path: Path) -> None:
    """One attack: the expected outcome, and nothing else harmed."""
    m, bystander = arena
    head = parse_header(path)
    kw = dict(DEFAULTS)
    kw.update(mode)
    kw.update(head["limits"])
    if head["callbacks"]:
        kw["callbacks"] = head["callbacks"]
    name = "atk-" + path.name.split("_", 1)[0]
    vm = m.create_vm(name, echo=False, **kw)
    try:
        err = run_attack(vm, path.read_text(), head)
        assert m.ping()
        assert bystander.execute("return 1 + 1", timeout=CHECK_TIMEOUT) == 2
        assert bystander.execute("return mark", timeout=CHECK_TIMEOUT) == BYSTANDER_MARK
        vm = check_attacked_vm(m, vm, err, name, kw)
    finally:
        pid = node_pid(vm)
        vm.close()
    if pid is not None:
        # generous: a SIGKILLed ASan node with a large heap can take seconds to exit
        assert not wait_gone([pid], timeout=60.0), "node %d of %s outlived close()" % (pid, name)


def test_enough_attacks() -> None:
    """The suite is not allowed to shrink below what the issue asks for."""
    assert len(FILES) >= 45
    names = [p.name.split("_", 1)[0] for p in FILES]
    assert len(set(names)) == len(names), "two attacks share a number"
