"""The client's shape: no import cycle inside the package, no module over
450 lines, and one error table shared by C and Python.

The import graph counts every import of a package module, at module level,
under ``if TYPE_CHECKING`` or inside a function: a function-level import is
still a dependency, only a later one.
"""

import ast
import re
from pathlib import Path

from conftest import REPO

from pylua_bioxen_vm import errors

PKG = REPO / "python" / "pylua_bioxen_vm"
MAX_LINES = 450


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> list:
    """The package modules one ``from ... import ...`` names."""
    if node.level == 0:
        base = node.module or ""
    else:
        parts = mod.split(".")
        if not is_pkg:
            parts.pop()                      # a module's package
        parts = parts[:len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [base] + [base + "." + a.name for a in node.names]


def import_graph() -> dict:
    """module -> set of package modules it imports (anywhere in its body)."""
    mods = _modules()
    graph = {}
    for mod, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = _resolve(mod, path.name == "__init__.py", node)
            deps.update(n for n in names if n in mods and n != mod)
        graph[mod] = deps
    return graph


def _cycle(graph: dict):
    """One import cycle as a list of modules, or None."""
    state = {}                               # 1: on the stack, 2: done
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_package_has_no_import_cycle():
    graph = import_graph()
    assert "pylua_bioxen_vm" in graph and len(graph) > 10
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_sees_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_450_lines():
    long = {m: n for m, p in _modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, "modules over %d lines: %r" % (MAX_LINES, long)


def _c_error_codes() -> dict:
    """enum name -> wire string, from net/proto.h and net/proto.c."""
    header = (REPO / "net" / "proto.h").read_text()
    enum = re.search(r"enum\s+bx_err\s*\{(.*?)\};", header, re.S)
    assert enum, "enum bx_err not found in net/proto.h"
    body = re.sub(r"/\*.*?\*/", "", enum.group(1), flags=re.S)
    names = [n.split("=")[0].strip() for n in body.split(",")]
    names = [n for n in names if n and n not in ("BX_OK", "BX_E__COUNT")]
    source = (REPO / "net" / "proto.c").read_text()
    table = dict(re.findall(r"\[(BX_\w+)\]\s*=\s*\"([A-Z_]+)\"", source))
    missing = [n for n in names if n not in table]
    assert not missing, "bx_err codes without a string in net/proto.c: %r" % missing
    return {n: table[n] for n in names}


def test_c_error_codes_and_python_map_agree():
    c_codes = set(_c_error_codes().values())
    assert len(c_codes) >= 15 and "MEMORY_LIMIT" in c_codes
    py_codes = set(errors._ERRORS)
    assert c_codes - py_codes == set(), "C codes Python does not map"
    assert py_codes - c_codes == set(), "Python maps codes C never sends"
    for code, cls in errors._ERRORS.items():
        # each code gets a class of its own kind, never the catch-all base
        assert issubclass(cls, errors.BioxenError) and cls is not errors.BioxenError, code
