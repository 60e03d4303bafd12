"""The sandbox, as seen from Python (SPEC §5)."""

import shutil
import subprocess

import pytest

from pylua_bioxen_vm import LuaError

# `require` exists but serves only the policy's imports (test_policy.py)
REMOVED = ["io", "debug", "package", "dofile", "loadfile", "string.dump",
           "os.execute", "os.exit", "os.getenv", "os.remove", "os.rename", "os.tmpname"]


@pytest.fixture
def vm(manager):
    return manager.create_vm("sbx")


@pytest.mark.parametrize("name", REMOVED)
def test_removed_is_absent(vm, name):
    head = name.split(".")[0]
    expr = name if "." not in name else "%s and %s" % (head, name)
    assert vm.execute("return %s == nil" % expr) is True, name


def test_kept_functions_work(vm):
    assert vm.execute("return type(os.time()), type(os.clock()), type(os.date('%Y'))") == \
        ("number", "number", "string")
    assert vm.execute("return string.rep('ab', 2), table.concat({1, 2}, ','), utf8.char(72)") == \
        ("abab", "1,2", "H")
    assert vm.execute("return load('return 1 + 2')()") == 3
    co = "local co = coroutine.wrap(function() coroutine.yield(1) end) return co()"
    assert vm.execute(co) == 1


def test_load_refuses_binary_chunks(vm):
    f, err = vm.execute("return load('\\27LuaT\\0\\25\\147\\13\\10\\26\\10')")
    assert f is None and "binary" in err
    f, err = vm.execute("return load('\\27Lua', 'x', 'b')")
    assert f is None
    luac = shutil.which("luac5.4")
    if luac:
        chunk = subprocess.run([luac, "-o", "-", "-"], input=b"return 1", capture_output=True,
                               check=True, timeout=30).stdout
        vm.set_globals({"chunk": chunk})
        f, err = vm.execute("return load(chunk)")
        assert f is None and "binary" in err
    with pytest.raises(LuaError):
        vm.execute("\27LuaT\0")


def test_loaded_code_sees_sandbox_env(vm):
    assert vm.execute("return load('return io')()") is None
    assert vm.execute("x = 9 return load('return x')()") == 9
