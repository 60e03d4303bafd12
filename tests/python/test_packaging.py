"""The package ships its PEP 561 marker: ``py.typed`` is in the source
package, ``cmake --install`` puts it beside the modules, and pyproject.toml
lists it as package data (so a wheel carries it)."""

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "python" / "pylua_bioxen_vm"


def build_dir():
    """The cmake build of the binaries under test (from BIOXEN_MANAGER)."""
    exe = os.environ.get("BIOXEN_MANAGER")
    for d in Path(exe).resolve().parents if exe else []:
        if (d / "CMakeCache.txt").is_file():
            return d
    return None


def test_py_typed_in_the_source_package_and_pyproject():
    assert (PKG / "py.typed").is_file()
    with open(REPO / "python" / "pyproject.toml", "rb") as f:
        cfg = tomllib.load(f)
    assert "py.typed" in cfg["tool"]["setuptools"]["package-data"]["pylua_bioxen_vm"]


def test_cmake_install_puts_py_typed_beside_the_modules(tmp_path):
    build = build_dir()
    if build is None or shutil.which("cmake") is None:
        pytest.skip("no cmake build directory to install from")
    r = subprocess.run(["cmake", "--install", str(build), "--prefix", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    typed = list(tmp_path.rglob("pylua_bioxen_vm/py.typed"))
    assert len(typed) == 1, typed
    assert (typed[0].parent / "manager.py").is_file()
    assert (typed[0].parent / "aio" / "hub.py").is_file()
