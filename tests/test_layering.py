"""Dependency direction (codesign -> search -> costmodels), the rooms inside codesign, no import circles,
the CLI kept at the door, and lint, as tests (docs/layout.md)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "costmodels": {"codesign", "search"},
    "search": {"codesign", "torch", "torch_geometric"},
}
# The analytical core of costmodels must not import torch (meters may, lazily, inside functions).
TORCH_FREE = ["errors", "ops", "workloads", "profiles", "analytical", "runs", "stats", "cnn", "units",
              "cnn_resnets", "calibrate", "knobs", "templates", "traffic"]
PACKAGES = ("codesign", "search", "costmodels")
# the rooms of codesign: what each may import of the others (cli may import all; nothing imports cli)
ROOMS = {
    "runtime": set(),
    # graphs prices a run with the counted launches of its steps (costing -> dispatch.opcount), which
    # dispatch counts by running the graph step code (lazily, inside the counting functions): the one
    # pair of rooms that use each other; no module imports itself back (test_no_import_circles)
    "graphs": {"runtime", "dispatch"},
    "cnn": {"runtime", "graphs"},
    "dispatch": {"runtime", "graphs", "cnn"},
    "machine": {"runtime", "graphs", "dispatch"},
    "pipelines": {"runtime", "graphs", "cnn", "dispatch"},
}


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_downwards(package):
    for path in (ROOT / package).rglob("*.py"):
        bad = imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_costmodels_analytical_core_is_torch_free():
    for name in TORCH_FREE:
        path = ROOT / "costmodels" / f"{name}.py"
        if path.exists():
            assert not imports(path) & {"torch", "torch_geometric"}, name
    code = "import sys, costmodels, costmodels.cnn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run([ruff, "check", "--quiet", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_mypy_clean_on_costmodels_and_search():
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    result = subprocess.run([str(mypy), "--no-error-summary"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]


def module_graph() -> dict[str, set[str]]:
    """Every project module -> the project modules it imports (module- and function-level, relative
    resolved); a module's own ancestor packages are left out (importing ``costmodels.errors`` runs
    ``costmodels/__init__`` first whatever imports it)."""
    mods: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    here = here[:len(here) - node.level + 1]
                    base = ".".join(here + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                dep = known(target)
                if dep and dep != name and not name.startswith(dep + "."):
                    deps.add(dep)
        graph[name] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert circles(module_graph()) == []


def test_the_circle_finder_sees_imports_and_circles():
    graph = module_graph()
    assert {"search.plots", "search.export", "search.cost_split"} <= graph["search.outputs"]
    assert "codesign.dispatch.opcount" in graph["codesign.dispatch.workload"]  # a relative import, resolved
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph["search.export"].add("search.outputs")  # what export importing its writer would do
    assert circles(graph) == [["search.cost_split", "search.export", "search.outputs", "search.plots"]]


def test_codesign_rooms_import_by_their_rules():
    bad = []
    for name, deps in module_graph().items():
        parts = name.split(".")
        if parts[0] != "codesign" or len(parts) < 2 or parts[1] not in ROOMS:
            continue
        for dep in deps:
            room = dep.split(".")[1] if dep.startswith("codesign.") else None
            if room and room != parts[1] and room not in ROOMS[parts[1]]:
                bad.append(f"{name} -> {dep}")
    assert not bad, "imports against docs/layout.md: " + "; ".join(sorted(bad))


def test_namespace_only_at_the_door():
    found = [f"{path.relative_to(ROOT)}:{i}" for package in PACKAGES for path in (ROOT / package).rglob("*.py")
             if not path.relative_to(ROOT).as_posix().startswith("codesign/cli/")
             for i, line in enumerate(path.read_text().splitlines(), 1) if "Namespace" in line]
    assert not found, f"argparse.Namespace below the CLI: {found}"


def test_every_package_says_what_it_holds_and_may_import():
    for package in PACKAGES:
        for init in (ROOT / package).rglob("__init__.py"):
            doc = ast.get_docstring(ast.parse(init.read_text())) or ""
            assert len(doc) > 80, f"{init.relative_to(ROOT)}: no docstring saying what the package holds"
            if init.parent.parent == ROOT / "codesign" or init.parent.parent == ROOT:
                assert "import" in doc, f"{init.relative_to(ROOT)}: docstring does not say what it may import"
