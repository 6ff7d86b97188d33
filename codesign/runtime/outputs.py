"""What a run leaves in its ``--out`` folder, and clearing an earlier run's files before a new run saves.

A `codesign train` folder is whole when it holds ``result.json``: each task writes its other files first
(``ticket.pt`` and ``ticket.json``, or ``model.pt``) and ``result.json`` last, each one atomically
(``costmodels.atomic``). Before the first of them, :func:`clear_earlier_run` removes the earlier run's
``result.json``, then the rest of what that run left (the CLI let the run into the folder only with
``--overwrite``), so a Ctrl-C, a SIGTERM or a full disk part-way leaves the folder without a result, never
the earlier run's ``result.json`` beside the new run's ticket, nor another task's model beside it.
Plain Python, no torch.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

RESULT = "result.json"
RUN_FILES = ("ticket.pt", "model.pt", RESULT, "study.db", "trials.csv", "summary.json")
EXPORT_FILES = ("ticket.json", "state_dict.pt", "edge_index.pt")  # `codesign export --format pyg`
STUDY_MARK = ".codesign-study"  # a search folder's owner: the study whose outputs it holds


def clear_earlier_run(folder: str | os.PathLike[str], keep: tuple[str, ...] = ()) -> None:
    """Remove an earlier run's files from ``folder``: ``result.json`` first, then the other ``RUN_FILES``,
    ``EXPORT_FILES``, the study mark and temporary files a killed write left (``.NAME.tmp-*``), except the
    names in ``keep`` (the files the new run replaces atomically itself). A missing folder: nothing."""
    out = Path(folder)
    if not out.is_dir():
        return
    names = (RESULT, *RUN_FILES, *EXPORT_FILES, STUDY_MARK)
    for name in dict.fromkeys(names):
        if name not in keep:
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
    for name in dict.fromkeys(names):
        for tmp in out.glob(f".{name}.tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
