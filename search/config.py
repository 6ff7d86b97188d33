"""What defines a study (:class:`SearchConfig`) and what an evaluator returns for one configuration
(:class:`Evaluation`, or :class:`EvaluationError`): shared by the study (:mod:`search.study`) and its
confirmation stage (:mod:`search.confirm`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from costmodels.errors import CodesignError

from .budget import Budget, Metric
from .space import SearchSpace

OBJECTIVES = ("pareto", "acc-per-cost")
CONTEXT_ATTR = "codesign:context"
LATER_CONTEXT = ("seed", "screen", "trainings_per_config")
"""Context keys studies stored only from 2026-12-05 on: a study without them resumes (its values are unknown)."""


class EvaluationError(CodesignError):
    """One configuration could not be evaluated (the trial fails; the search goes on)."""


@dataclass(frozen=True)
class Evaluation:
    """What an evaluator returns for one configuration.

    ``cost`` is the searched metric in its SI unit; ``costs`` the full breakdown (flat numbers, e.g.
    ``RunCost.to_dict()`` scalars); ``attrs`` anything else to record (EB epoch, wall time, ...).
    """

    val_accuracy: float
    cost: float
    test_accuracy: float | None = None
    costs: Mapping[str, Any] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)


Evaluator = Callable[[dict[str, Any], int], Evaluation]
"""``evaluator(params, seed) -> Evaluation``; raise :class:`EvaluationError` for a bad configuration."""


def check_counts(n_trials: int, n_jobs: int, repeats: int) -> None:
    """``--trials``, ``--n-jobs`` and ``--trainings-per-config`` are each at least 1 (one line naming the value)."""
    if n_trials < 1:
        raise CodesignError(f"--trials {n_trials}: must be at least 1 (trained trials the study should hold)")
    if n_jobs < 1:
        raise CodesignError(f"--n-jobs {n_jobs}: must be at least 1")
    if repeats < 1:
        raise CodesignError(f"--trainings-per-config {repeats}: must be at least 1 (trainings of one configuration)")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a study (``context`` is stored and must match on resume)."""

    study_name: str
    storage: str
    n_trials: int
    metric: Metric
    budget: Budget | None = None
    objective: str = "pareto"
    seed: int = 0
    n_jobs: int = 1
    context: Mapping[str, Any] = field(default_factory=dict)
    screen: bool = True
    repeats: int = 1

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise CodesignError(f"--objective {self.objective!r}: use one of {', '.join(OBJECTIVES)}")
        check_counts(self.n_trials, self.n_jobs, self.repeats)
        if self.budget is not None and self.budget.metric != self.metric:
            raise CodesignError(f"budget is for {self.budget.metric.name} but --metric is {self.metric.name}")

    def stored_context(self, space: SearchSpace) -> dict[str, Any]:
        """What is written into the study and compared on resume."""
        return {
            **dict(self.context),
            "metric": self.metric.name,
            "cost_unit": self.metric.unit,
            "objective": self.objective,
            "budget": None if self.budget is None else self.budget.to_dict(),
            "space": space.to_dict(),
            # each decides which configurations a slot trains, or what its result means: a resume with
            # another value would mix two searches in one study
            "seed": self.seed,
            "screen": self.screen,
            "trainings_per_config": self.repeats,
        }
