"""Dependency direction (codesign -> search -> costmodels) and lint, as tests."""

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
              "cnn_resnets", "calibrate"]


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
