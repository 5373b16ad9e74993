"""The plan of the package holds: layers without import cycles, no module that hides a dependency
inside a function, no module too long to read, and the command runnable as a script."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import neardup

PACKAGE = Path(neardup.__file__).parent
#: Imported inside functions on purpose: optional extras (imported where they are used, so that
#: neardup works without them), and two core libraries whose import costs a command's start-up
#: time for work most commands never do (scipy.sparse 0.16 s: connected components; datasketch:
#: exporting a signature).
FUNCTION_LEVEL_ALLOWED = ("pyspark", "pyarrow", "pandas", "fastapi", "fastapi_offline", "uvicorn", "zstandard",
                          "scipy.sparse", "datasketch", "neardup.service.app")
#: Longest module, in lines (docstrings included).
MAX_LINES = 600


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function) of every import statement in ``path``."""
    tree = ast.parse(path.read_text())
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(sub) for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in inside) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (imports are absolute here)"
            module = node.module or ""
            for alias in node.names:  # `from neardup.x import y` may import the module neardup.x.y
                found.append((f"{module}.{alias.name}" if module.startswith("neardup") else module,
                              id(node) in inside))
    return found


def graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (at any level, TYPE_CHECKING blocks included)."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, _ in imports(path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "neardup":
                edges[name].add(target)
    return edges


def test_no_import_cycle() -> None:
    """No module reaches itself through the modules it imports (the package's __init__ aside: it
    only gathers the public names)."""
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [node])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, "import cycle: " + " → ".join(cycle[cycle.index(cycle[-1]):])


def test_function_level_imports_only_for_optional_or_costly_modules() -> None:
    """An import inside a function hides a dependency (and a cycle); only optional extras and two
    measured start-up costs may be imported there."""
    hidden = [f"{name}: {target}" for name, path in modules().items() for target, inside in imports(path)
              if inside and not target.startswith(FUNCTION_LEVEL_ALLOWED)]
    assert hidden == []


def test_layers_import_downwards() -> None:
    """text → sketch → match → index → pipeline → service/cli: a lower layer never imports a higher one."""
    order = ["text", "sketch", "match", "index", "io", "pipeline", "service", "cli"]
    edges = graph()
    upward = []
    for name, targets in edges.items():
        layer = name.split(".")[1] if name.count(".") >= 1 else ""
        if layer not in order:
            continue
        for target in targets:
            other = target.split(".")[1] if target.count(".") >= 1 else ""
            if other in order and order.index(other) > order.index(layer) and {layer, other} != {"index", "io"}:
                upward.append(f"{name} → {target}")
    assert upward == []


def test_no_module_is_too_long_to_read() -> None:
    """One concept a module: none is longer than MAX_LINES lines."""
    long = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in long.items() if n > MAX_LINES} == {}


@pytest.mark.parametrize("name", sorted(set(modules()) - {"neardup.__main__"}))
def test_every_module_imports_alone_in_a_fresh_interpreter(name: str) -> None:
    """Each module imports first in its interpreter (an order-dependent import would fail here)."""
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_command_runs_as_a_script_as_spark_submit_runs_it(tmp_path: Path) -> None:
    """``spark-submit .../neardup/__main__.py`` runs the file as a script, from any folder: it
    must not import the package's own modules (io, config, ...) as top-level ones."""
    done = subprocess.run([sys.executable, str(PACKAGE / "__main__.py"), "--version"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("neardup ")
    module = subprocess.run([sys.executable, "-m", "neardup", "--version"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert module.stdout == done.stdout
