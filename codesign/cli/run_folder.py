"""A command's output folder: checked before anything is measured or written, and claimed by the study
whose results it holds, so that no run overwrites another's (``--overwrite`` to replace them)."""

from __future__ import annotations

import json
from pathlib import Path


def check_out_dir(out: Path, flag: str = "--out") -> None:
    """A run folder we may create or write: not a file, not in a read-only place (nothing is created here)."""
    import os

    from costmodels.errors import CodesignError

    if out.exists() and not out.is_dir():
        raise CodesignError(f"{flag} {str(out)!r} is a file, not a folder; give a folder path, e.g. runs/my-search")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CodesignError(f"{flag} {str(out)!r}: {str(parent)!r} is a file, not a folder; give a folder path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CodesignError(f"{flag} {str(out)!r}: {str(parent)!r} is not writable; give a folder you can write, "
                            "e.g. runs/my-search")


CLAIM = ".codesign-study"  # a run folder's owner: the study whose outputs it holds


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
    out.mkdir(parents=True, exist_ok=True)
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
