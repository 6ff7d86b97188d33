"""Run a cost-aware Optuna study to a target number of COMPLETE trials, resumably.

Objectives (``objective="pareto"``): maximise validation accuracy and minimise the metric's cost,
``values = (acc_val, cost)`` with Optuna's TPE sampler (default settings) re-seeded per trial (see Seeds).
``objective="acc-per-cost"``: maximise the scalar ``acc_val / cost``. With a budget ``B`` each trial
sets ``trial.set_constraint("budget", cost - B)`` (Optuna 5's constraint API): feasible iff
``cost <= B``; infeasible trials stay in the study and in the Pareto front, the sampler ranks them
below every feasible one. Pruners are not used (they do not support multi-objective studies).

Counting: ``n_trials`` is the number of COMPLETE trials the study should hold. A worker starts a
trial only while ``complete + running < n_trials``; two workers that race past that check are
ordered by trial number (the storage assigns numbers atomically): the later one is marked FAIL
as ``surplus`` before anything is evaluated. Trials of dead workers are failed and retried with the
same parameters (:mod:`search.storage`). So a rerun of the same command tops the study up, and after
an interrupt no trial is lost or run twice to completion.

Seeds: trial ``k`` samples with a TPE seeded from ``(seed, k)`` and is evaluated with seed
``seed + k``: serial runs are reproducible, and parallel or resumed workers never draw the same
random start-up points.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from costmodels.errors import CodesignError

from .budget import Budget, Metric
from .space import SearchSpace
from .storage import WORKER_ATTR, open_storage, recover_dead_trials, worker_tag

if TYPE_CHECKING:
    import optuna

OBJECTIVES = ("pareto", "acc-per-cost")
CONTEXT_ATTR = "codesign:context"
POLL_S = 1.0


class EvaluationError(CodesignError):
    """One configuration could not be evaluated (the trial fails; the search goes on)."""


class _Surplus(Exception):
    """Raised inside a trial that lost the race for the last slots (see the module docstring)."""


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

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise CodesignError(f"--objective {self.objective!r}: use one of {', '.join(OBJECTIVES)}")
        if self.n_trials < 1:
            raise CodesignError(f"--trials {self.n_trials}: must be at least 1")
        if self.n_jobs < 1:
            raise CodesignError(f"--n-jobs {self.n_jobs}: must be at least 1")
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
        }


def _seed_for(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number * 7919 + 17) % (2**31 - 1)


def _make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    class PerTrialTPE(optuna.samplers.BaseSampler):
        """Optuna's default TPE, seeded per trial number (see the module docstring)."""

        def __init__(self) -> None:
            self._by_number: dict[int, optuna.samplers.TPESampler] = {}

        def _inner(self, trial: optuna.trial.FrozenTrial) -> optuna.samplers.TPESampler:
            if trial.number not in self._by_number:
                self._by_number[trial.number] = optuna.samplers.TPESampler(seed=_seed_for(seed, trial.number))
            return self._by_number[trial.number]

        def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
            return self._inner(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
            return self._inner(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
            return self._inner(trial).sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
            self._inner(trial).before_trial(study, trial)

        def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
            self._inner(trial).after_trial(study, trial, state, values)
            self._by_number.pop(trial.number, None)

    return PerTrialTPE()


def open_study(config: SearchConfig, space: SearchSpace, *, create: bool = True) -> optuna.Study:
    """Create the study or load it; a stored study with a different context is refused (not changed)."""
    import optuna

    storage = open_storage(config.storage)
    directions = [optuna.study.StudyDirection.MAXIMIZE]
    if config.objective == "pareto":
        directions.append(optuna.study.StudyDirection.MINIMIZE)
    wanted = config.stored_context(space)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=config.study_name,
            directions=directions,
            sampler=_make_sampler(config.seed),
            load_if_exists=create,
        )
    except optuna.exceptions.DuplicatedStudyError:  # pragma: no cover - load_if_exists=False only
        raise CodesignError(f"study {config.study_name!r} already exists") from None
    stored = study.user_attrs.get(CONTEXT_ATTR)
    if stored is None:
        study.set_user_attr(CONTEXT_ATTR, wanted)
        study.set_user_attr("n_trials_target", config.n_trials)
    else:
        diff = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        if diff:
            k = diff[0]
            raise CodesignError(
                f"study {config.study_name!r} in {config.storage.split('@')[-1]} was run with {k}="
                f"{stored.get(k)!r}, not {wanted.get(k)!r}; rerun with the same options or pick a new --study"
            )
        study.set_user_attr("n_trials_target", config.n_trials)
    return study


def count_states(study: optuna.Study) -> tuple[int, int]:
    """(complete, running) trial counts."""
    import optuna

    s = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False, states=(s.COMPLETE, s.RUNNING))
    complete = sum(t.state == s.COMPLETE for t in trials)
    return complete, len(trials) - complete


def _objective(study: optuna.Study, config: SearchConfig, space: SearchSpace, evaluator: Evaluator):  # type: ignore[no-untyped-def]
    import optuna

    s = optuna.trial.TrialState

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        trial.set_user_attr(WORKER_ATTR, worker_tag())
        ahead = sum(
            t.state == s.COMPLETE or t.number < trial.number
            for t in study.get_trials(deepcopy=False, states=(s.COMPLETE, s.RUNNING))
        )
        if ahead >= config.n_trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"study already holds or runs {config.n_trials} trials")
        params = space.suggest(trial)
        seed = config.seed + trial.number
        t0 = time.perf_counter()
        try:
            ev = evaluator(params, seed)
        except KeyboardInterrupt:  # Ctrl-C: Optuna fails this trial; queue its parameters again
            trial.set_user_attr("interrupted", True)
            study.enqueue_trial(params, user_attrs={"retry_of": trial.number})
            raise
        wall = time.perf_counter() - t0
        if not (math.isfinite(ev.val_accuracy) and math.isfinite(ev.cost) and ev.cost >= 0):
            raise EvaluationError(f"evaluator gave accuracy={ev.val_accuracy} cost={ev.cost} for {params}")
        feasible = config.budget is None or ev.cost <= config.budget.value
        record = {
            "params": params, "val_accuracy": ev.val_accuracy, "test_accuracy": ev.test_accuracy,
            "cost": ev.cost, "costs": dict(ev.costs), "feasible": feasible, "seed": seed, "wall_s": wall,
            **dict(ev.attrs),
        }
        for key, value in record.items():
            trial.set_user_attr(key, value)
        if config.budget is not None:
            trial.set_constraint("budget", config.budget.violation(ev.cost))
        if config.objective == "pareto":
            return ev.val_accuracy, ev.cost
        return ev.val_accuracy / max(ev.cost, 1e-300)

    return objective


@dataclass(frozen=True)
class SearchProgress:
    """What a progress callback sees after each finished trial."""

    complete: int
    target: int
    best_accuracy: float | None
    best_cost: float | None


def best_so_far(study: optuna.Study, budget: Budget | None) -> tuple[float | None, float | None]:
    """(val accuracy, cost) of the most accurate feasible complete trial so far."""
    import optuna

    best: tuple[float, float] | None = None
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        acc, cost = t.user_attrs.get("val_accuracy"), t.user_attrs.get("cost")
        if acc is None or cost is None or (budget is not None and cost > budget.value):
            continue
        if best is None or (acc, -cost) > (best[0], -best[1]):
            best = (acc, cost)
    return (None, None) if best is None else best


def run_search(
    config: SearchConfig,
    space: SearchSpace,
    evaluator: Evaluator,
    *,
    on_trial: Callable[[SearchProgress], None] | None = None,
) -> optuna.Study:
    """Top the study up to ``config.n_trials`` complete trials (``n_jobs`` threads here)."""
    import threading

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = open_study(config, space)
    recover_dead_trials(study)
    if on_trial is not None:  # the starting point (a resumed study already holds trials)
        on_trial(SearchProgress(count_states(study)[0], config.n_trials, *best_so_far(study, config.budget)))
    objective = _objective(study, config, space, evaluator)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def callback(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None and trial.state == optuna.trial.TrialState.COMPLETE:
            complete, _ = count_states(st)
            acc, cost = best_so_far(st, config.budget)
            with lock:
                on_trial(SearchProgress(complete, config.n_trials, acc, cost))

    def worker() -> None:
        try:
            while not errors:
                complete, running = count_states(study)
                if complete >= config.n_trials:
                    return
                if complete + running >= config.n_trials:
                    time.sleep(POLL_S)  # others are finishing the last trials; retry theirs if they die
                    recover_dead_trials(study)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        optuna.storages.fail_stale_trials(study)
                    continue
                study.optimize(objective, n_trials=1, catch=(EvaluationError, _Surplus), callbacks=[callback])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    if config.n_jobs == 1:
        worker()
    else:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(config.n_jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return study
