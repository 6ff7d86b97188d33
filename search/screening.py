"""What a study decides before it trains a sampled configuration: its slot, whether it repeats one
already trained, and whether the cost model rules it out.

Slots. Every sampled configuration holds a *slot*: ``0, 1, 2, ...`` in trial-number order, where a
retry of a dead or interrupted trial takes the slot of the trial it retries, and the retry's own
number, like a surplus trial's, opens none (two workers' trials stopped together and retried later
keep their two slots). The sampler is seeded from the slot and the run is
trained with ``seed + slot``, so a search killed and resumed gives the same trials (parameters and
accuracies) as one that ran through.

Duplicates. A configuration whose parameters equal those of a trial that was trained, was screened
or is training under an earlier number (parallel workers record a trial's parameters as soon as
they are sampled) is not trained again (``repeats`` > 1 allows that many trainings of one
configuration, each with its own seed). The repeat is recorded as a FAIL trial with
``duplicate_of`` and is not counted.

Screening. An evaluator may predict, before training, the cost interval of the run a configuration
would make (:class:`CostInterval`, from the cost model: exact where the method's schedule is fixed,
bounds where an early-bird detector decides a phase length). With a budget, a configuration whose
*lower* bound is over the budget cannot be feasible: it is recorded as a PRUNED trial with
``screened = True``, its predicted interval and the constraint ``low - budget`` (so the sampler
ranks it as infeasible), and no accuracy. It is not counted in ``--trials``.

Stopping. Where a phase's length is decided during training (the early-bird detector), the interval
narrows as the run goes on; an evaluator given the budget stops a run as soon as its lower bound is
over it and raises :class:`OverBudget`. The trial is recorded like a screened one (PRUNED,
``screened``, no accuracy, not counted), with ``stopped_after_epochs`` and the training time it took.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class CostInterval:
    """The searched metric's cost of a run, predicted before training (SI unit of the metric).

    ``low <= cost <= high`` for the run the configuration makes; ``exact`` when the schedule is
    fixed (``low == high`` up to mask-count rounding). ``epochs_low``/``epochs_high``: the training
    epochs of that run (every phase), used to estimate the training time screening saved.
    """

    low: float
    high: float
    exact: bool = False
    epochs_low: int | None = None
    epochs_high: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and 0 <= self.low <= self.high):
            raise ValueError(f"cost interval [{self.low}, {self.high}] is not ordered, finite and >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class OverBudget(Exception):
    """An evaluator stopped a run part-way: what the run had shown (``epochs_run`` epochs of its
    phase of undecided length) put its cost interval (``interval``) wholly over the budget."""

    def __init__(self, interval: CostInterval, epochs_run: int, why: str) -> None:
        super().__init__(f"{why}: predicted cost >= {interval.low:g}")
        self.interval, self.epochs_run, self.why = interval, epochs_run, why


Predictor = Callable[[dict[str, Any]], "CostInterval | None"]
"""``predict(params) -> CostInterval`` (None: this configuration cannot be bounded before training)."""


def params_key(params: Mapping[str, Any]) -> str:
    """A canonical text for comparing configurations (floats compared exactly)."""
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)


def _opens_slot(t: optuna.trial.FrozenTrial) -> bool:
    """Whether trial ``t``'s number opened a new slot: not a retry (it takes its original's) nor surplus."""
    return t.user_attrs.get("retry_of") is None and not t.user_attrs.get("surplus")


def slot_of(trials: list[optuna.trial.FrozenTrial], number: int) -> int:
    """The slot of trial ``number`` among ``trials`` (every trial of the study; see the module docstring):
    a retry's is that of the trial it retries, any other's the count of earlier trials that opened a slot."""
    by_number = {t.number: t for t in trials}
    seen: set[int] = set()
    while number in by_number and (r := by_number[number].user_attrs.get("retry_of")) is not None:
        if number in seen:  # pragma: no cover - a cycle cannot be stored, but never loop
            break
        seen.add(number)
        number = int(r)  # a retry holds the slot of the trial it retries
    return sum(1 for t in trials if t.number < number and _opens_slot(t))


def duplicate_of(trials: list[optuna.trial.FrozenTrial], number: int, params: Mapping[str, Any],
                 repeats: int) -> int | None:
    """The number of an earlier trial with the same configuration when training ``params`` again
    would exceed ``repeats`` trainings (screened ones count as one), else None."""
    import optuna

    s = optuna.trial.TrialState
    key = params_key(params)
    same = [t for t in trials if t.number != number and t.user_attrs.get("params") is not None
            and params_key(t.user_attrs["params"]) == key
            and (t.state == s.COMPLETE or t.user_attrs.get("screened")
                 or (t.state == s.RUNNING and t.number < number))]  # of two running at once, the first trains
    if not same:
        return None
    if any(t.user_attrs.get("screened") for t in same) or len(same) >= repeats:
        return min(t.number for t in same)
    return None
