"""Which torch device a training run uses (``--run-on cpu|cuda|auto``), shared by both tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from costmodels.errors import CodesignError

if TYPE_CHECKING:
    import torch

RUN_ON = ("cpu", "cuda", "auto")


def check_run_on(run_on: str) -> None:
    """One line naming the bad value and the valid ones (config validation; no torch import)."""
    if run_on not in RUN_ON:
        raise CodesignError(f"--run-on {run_on!r}: valid choices are {', '.join(RUN_ON)}")


def resolve_run_on(run_on: str) -> torch.device:
    """``cpu``; ``cuda`` (an error if torch sees no GPU); ``auto`` (cuda when visible, else cpu)."""
    import torch

    check_run_on(run_on)
    if run_on == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if run_on == "auto":
        return torch.device("cpu")
    raise CodesignError("--run-on cuda: no CUDA device is visible to torch; use --run-on cpu or auto")
