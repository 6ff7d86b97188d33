"""The numbers the README and docs/ show are the output of the commands written beside them.

A block is marked in the Markdown as::

    <!-- checked: COMMAND -->
    ```text
    lines the command prints
    ```

``COMMAND`` is ``codesign ...`` (run in this process), ``python -m MODULE ...`` (its ``main(argv)``)
or ``python FILE.py`` (a script in the repository, run in a fresh folder). Every non-blank line of
the block must be a line of the output (spaces collapsed): a number that drifts fails here.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"<!-- checked: (?P<cmd>.+?) -->\n```text\n(?P<body>.*?)\n```", re.S)


def blocks() -> list[tuple[str, str, str]]:
    found = []
    for page in PAGES:
        for m in MARK.finditer(page.read_text()):
            found.append((page.relative_to(ROOT).as_posix(), m["cmd"].strip(), m["body"]))
    return found


def _norm(line: str) -> str:
    return " ".join(line.split())


def run(cmd: str, tmp_path: Path) -> str:
    argv = shlex.split(cmd)
    if argv[0] == "python" and argv[1] != "-m":
        out = subprocess.run([sys.executable, str(ROOT / argv[1]), *argv[2:]], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if argv[0] == "codesign":
            from codesign.cli import main

            assert main(argv[1:]) == 0
        elif argv[:2] == ["python", "-m"]:
            assert importlib.import_module(argv[2]).main(argv[3:]) in (0, None)
        else:
            raise AssertionError(f"cannot run {cmd!r}: write codesign ..., python -m MODULE ... or python FILE.py")
    return buf.getvalue()


def test_the_pages_hold_checked_blocks():
    found = blocks()
    pages = {page for page, _, _ in found}
    assert {"README.md", "docs/costs.md", "docs/hardware.md", "docs/byo.md"} <= pages, pages
    assert all(body.strip() for _, _, body in found)


@pytest.mark.parametrize(("page", "cmd", "body"), blocks(), ids=[f"{p}:{c[:60]}" for p, c, _ in blocks()])
def test_a_checked_block_is_what_its_command_prints(page, cmd, body, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    printed = {_norm(line) for line in run(cmd, tmp_path).splitlines()}
    missing = [line for line in body.splitlines() if line.strip() and _norm(line) not in printed]
    assert not missing, f"{page}: `{cmd}` no longer prints:\n" + "\n".join(missing)


def test_a_drifted_number_is_caught(tmp_path):
    out = run("codesign estimate --model gcn --dataset cora --device h100", tmp_path)
    line = next(ln for ln in out.splitlines() if "train_epoch" in ln)
    assert _norm(line) in {_norm(x) for x in out.splitlines()}
    assert _norm(line.replace("launch", "compute")) not in {_norm(x) for x in out.splitlines()}


def test_the_example_shown_is_the_example_run():
    shown = (ROOT / "docs" / "byo.md").read_text()
    assert "```python\n" + (ROOT / "docs" / "examples" / "byo.py").read_text() + "```" in shown
