"""VMs by name, from any connection: ``VMManager.vm_stats(name)`` and
``destroy_vm(name)`` (their ``_async`` Futures and asyncio twins), which
``bioxen top``/``stats``/``kill`` use; and the CLI reaches nothing private
of the client (it once read ``m._core.conn``).  Real manager and nodes."""

import ast
import asyncio
from pathlib import Path

import pytest

from pylua_bioxen_vm import AsyncVMManager, VMManager, VMNotFound

T = 30.0
CLI = Path(__file__).resolve().parents[2] / "python" / "pylua_bioxen_vm" / "cli"


def test_stats_and_destroy_by_name_from_another_connection(manager):
    vm = manager.create_vm("owned", echo=False)
    vm.execute("return 1")
    with VMManager(manager.address) as other:
        st = other.vm_stats("owned")
        assert st["pid"] == vm.stats()["pid"] and st["executions"] >= 1
        assert other.vm_stats_async("owned").result(T)["pid"] == st["pid"]
        with pytest.raises(VMNotFound):
            other.vm_stats("nobody")
        assert other.destroy_vm("owned") is None
        assert "owned" not in [v["name"] for v in manager.list_vms()]
        with pytest.raises(VMNotFound):
            other.destroy_vm("owned")          # not idempotent: kill reports it
        with pytest.raises(VMNotFound):
            other.destroy_vm_async("owned").result(T)


def test_destroy_by_name_closes_our_handle(manager):
    vm = manager.create_vm("mine", echo=False)
    manager.destroy_vm("mine")
    with pytest.raises(VMNotFound, match="closed"):
        vm.execute("return 1")
    # the name is free again
    assert manager.create_vm("mine", echo=False).execute("return 2") == 2


def test_asyncio_twins():
    async def main():
        async with AsyncVMManager(start_timeout=20.0) as m:
            vm = await m.create_vm("a", echo=False)
            await vm.execute("return 1")
            st = await m.vm_stats("a")
            assert st["pid"] == vm.pid and st["executions"] >= 1
            await m.destroy_vm("a")
            assert await m.list_vms() == []
            with pytest.raises(VMNotFound):
                await m.vm_stats("a")
            with pytest.raises(VMNotFound):
                await m.destroy_vm("a")
    asyncio.run(asyncio.wait_for(main(), T))


def test_the_cli_uses_public_api_only():
    # No attribute with a leading underscore on anything but self/cls (or
    # the standard library), and no underscore name imported.
    stdlib = {"argparse", "sys", "os"}
    bad = []
    for path in sorted(CLI.glob("*.py")):
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.Attribute) and n.attr.startswith("_") \
                    and not n.attr.startswith("__"):
                base = n.value
                if isinstance(base, ast.Name) and base.id in {"self", "cls"} | stdlib:
                    continue
                bad.append("%s:%d %s" % (path.name, n.lineno, ast.unparse(n)))
            if isinstance(n, ast.ImportFrom):
                bad += ["%s:%d import %s" % (path.name, n.lineno, a.name)
                        for a in n.names if a.name.startswith("_")]
    assert not bad, bad
