"""A command's output folder: checked before anything is measured or written, and claimed by the study
whose results it holds, so that no run overwrites another's (``--overwrite`` to replace them)."""

from __future__ import annotations

import json
from pathlib import Path

from codesign.runtime.outputs import STUDY_MARK


def check_out_dir(path: str | Path, flag: str = "--out") -> None:
    """A run folder we may create or write: not empty, not a file, not in a read-only place (nothing is created
    here). ``path`` as given (a ``Path`` of ``''`` reads ``'.'``)."""
    from costmodels.errors import CodesignError

    if not str(path):
        raise CodesignError(f"{flag} is empty; give a folder path, e.g. runs/my-search")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CodesignError(f"{flag} {str(out)!r} is a file, not a folder; give a folder path, e.g. runs/my-search")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CodesignError(f"{flag} {str(out)!r}: {str(parent)!r} is a file, not a folder; give a folder path")
    if not can_write_in(parent):
        raise CodesignError(f"{flag} {str(out)!r}: {str(parent)!r} is not writable; give a folder you can write, "
                            "e.g. runs/my-search")


def can_write_in(folder: Path) -> bool:
    """Whether a file can be made in ``folder``: permissions, and a probe file created and removed at once
    (``os.access`` says yes to root in read-only places such as /proc or a read-only mount)."""
    import os
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def make_out_dir(out: Path, flag: str = "--out") -> None:
    """Create the output folder ``out`` (and its parents); a failure is one line naming the folder."""
    from costmodels.errors import CodesignError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CodesignError(f"{flag} {str(out)!r}: cannot create the folder ({exc.strerror or exc}); give a folder "
                            "you can write, e.g. runs/my-run") from None


def unused_path(path: Path) -> Path:
    """``path``, or the first of ``stem-2``, ``stem-3``, ... (same suffix) that does not exist: a default
    output that never replaces an earlier run's."""
    k = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    return candidate


def check_not_results(path: Path, flag: str, overwrite: bool) -> None:
    """Refuse (one line) to replace the results file ``path`` of an earlier run, unless ``overwrite``."""
    from costmodels.errors import CodesignError

    if path.exists() and not overwrite:
        raise CodesignError(f"{flag}: {str(path)!r} holds an earlier run's results; give a new {flag}, or "
                            "--overwrite to replace them")


CLAIM = STUDY_MARK  # a run folder's owner: the study whose outputs it holds


def claim_run_folder(out: Path, study: str, overwrite: bool) -> None:
    """Refuse (one line) to write a search into a folder holding another study's outputs, unless ``overwrite``;
    then mark the folder as this study's. Two searches started together into one folder: the first to create
    the mark wins, the other is refused."""
    import os

    from costmodels.atomic import write_text
    from costmodels.errors import CodesignError

    def owner() -> str | None:
        mark = out / CLAIM
        if mark.is_file():
            return mark.read_text(encoding="utf-8", errors="replace").strip()
        summary = out / "summary.json"
        if summary.is_file():
            try:
                return str(json.loads(summary.read_text(encoding="utf-8")).get("study"))
            except (ValueError, AttributeError, UnicodeDecodeError):
                return "an unreadable summary.json"
        if (out / "trials.csv").exists() or (out / "ticket.pt").exists():
            return "another run"
        return None

    def refuse(held: str) -> None:
        raise CodesignError(f"--out {str(out)!r} holds the results of {held!r}, not of study {study!r}; give "
                            "another --out (or the same options as that run), or --overwrite to replace them")

    held = owner()
    if held is not None and held != study and not overwrite:
        refuse(held)
    make_out_dir(out)
    if held is not None and held != study:  # --overwrite
        write_text(out / CLAIM, study + "\n")
        return
    try:
        fd = os.open(out / CLAIM, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        held = owner()
        if held != study and not overwrite:
            refuse(str(held))
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(study + "\n")
