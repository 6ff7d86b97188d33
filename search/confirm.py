"""Confirm before answering: retrain the leading candidates on further seeds and answer on the mean.

A search trains each configuration once, on one seed, and validation accuracy moves a few points
between seeds (Cora: 2-3.5), so the most accurate single run is often the luckiest. After the trials,
:func:`run_confirmation` retrains

* the ``k`` (``TOP_K``) most accurate *feasible* configurations (every budget met), and
* the longest dense run that fits (trained right after the reference) and the most accurate
  feasible dense configuration (when no dense fits, the dense reference, for comparison only),

on ``n`` further seeds, the same seeds for every candidate (``confirm_seeds``: ``seed + SEED_OFFSET +
j``, never a trial's seed). Each run is stored at once as a study user attribute
``confirm:<configuration hash>:<seed>``, so a killed search resumes without redoing finished runs, and
a study topped up later reuses them. A run that misses a budget on its seed (a detector fires later, a
run stopped as proven over the budget) is recorded as not fitting.

:func:`decide` (pure, from the stored runs): a candidate is eligible when it fits on every seed; the
answer is the eligible candidate with the highest mean validation accuracy, except that candidates
within one standard error of it (the standard error of the paired per-seed differences, the seeds
being shared) *tie* with it, and the cheapest of the tied (mean cost) is the answer. Means are
reported with their sample standard deviation (``sd``), test accuracy likewise; the dense
candidate's numbers over the same seeds stand beside them.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from costmodels.errors import CodesignError

from .config import EvaluationError, Evaluator, SearchConfig
from .screening import OverBudget, params_key

if TYPE_CHECKING:
    import optuna


PREFIX = "confirm:"
TOP_K = 3
SEED_OFFSET = 1_000_000  # confirmation seeds: seed + SEED_OFFSET + j (a trial's seed is seed + slot)
DEFAULT_SEEDS = 3
DENSE = "dense"


def confirm_seeds(seed: int, n: int) -> list[int]:
    return [seed + SEED_OFFSET + j for j in range(n)]


def seeds_text(n: int, further: bool = True) -> str:
    """``3 further seeds``, ``1 further seed`` (``further=False``: ``3 seeds``)."""
    return f"{n}{' further' * further} seed{'s' * (n != 1)}"


def check_confirm_seeds(n: int) -> None:
    if n < 0:
        raise CodesignError(f"--confirm-seeds {n}: must be 0 (no confirmation) or more seeds, e.g. 3")


def _key(params: Mapping[str, Any], seed: int) -> str:
    return f"{PREFIX}{hashlib.sha1(params_key(params).encode()).hexdigest()[:12]}:{seed}"


@dataclass(frozen=True)
class ConfirmRun:
    """One retraining of a candidate on one confirmation seed (``cost`` None: stopped part-way)."""

    params: dict[str, Any]
    seed: int
    val_accuracy: float | None
    test_accuracy: float | None
    cost: float | None
    fits: bool
    wall_s: float
    why: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _feasible_trials(trials: Sequence[Any]) -> list[Any]:
    return [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("feasible")
            and t.user_attrs.get("val_accuracy") is not None]


def candidates(trials: Sequence[Any], k: int = TOP_K) -> list[tuple[int, dict[str, Any], str]]:
    """``(trial number, params, role)`` of the configurations to confirm (see the module docstring);
    role: ``top`` or ``dense`` (the dense that fits, or the dense reference when none fits)."""
    ok = sorted(_feasible_trials(trials), key=lambda t: (-t.user_attrs["val_accuracy"], t.user_attrs["cost"],
                                                         t.number))
    out: list[tuple[int, dict[str, Any], str]] = []
    seen: set[str] = set()
    for t in ok:
        key = params_key(t.user_attrs["params"])
        if key not in seen and len(out) < k:
            seen.add(key)
            out.append((t.number, dict(t.user_attrs["params"]), "top"))
    dense = [t for t in ok if t.user_attrs["params"].get("method") == DENSE]
    longest = [t for t in ok if t.user_attrs.get("early")]  # the longest dense run that fits (trained early)
    if not dense:  # nothing dense fits: the dense reference, for comparison (never the answer)
        dense = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("reference")]
    for t in [*longest[:1], *dense[:1]]:  # the longest dense that fits first: the words compare with it
        key = params_key(t.user_attrs["params"])
        if key in seen:
            out = [(n, p, r if "dense" in r or params_key(p) != key else f"{r}+dense") for n, p, r in out]
        else:
            seen.add(key)
            out.append((t.number, dict(t.user_attrs["params"]), "dense"))
    return out


def stored_runs(study: optuna.Study) -> dict[str, ConfirmRun]:
    return {k: ConfirmRun(**v) for k, v in study.user_attrs.items() if k.startswith(PREFIX) and isinstance(v, dict)}


def confirm_progress(study: optuna.Study) -> tuple[int, int] | None:
    """``(runs stored, runs planned)`` of the confirmation plan the study holds; None before one is made."""
    plan = study.user_attrs.get("confirm_plan")
    runs = plan.get("runs") if isinstance(plan, dict) else None
    if not isinstance(runs, list):
        return None
    stored = {k for k in study.user_attrs if k.startswith(PREFIX)}
    return len(stored.intersection(runs)), len(runs)


def run_confirmation(study: optuna.Study, config: SearchConfig, evaluator: Evaluator, n_seeds: int, *,
                     k: int = TOP_K, on_run: Callable[[int, int], None] | None = None,
                     share: tuple[int, int] = (0, 1)) -> int:
    """Retrain the candidates on ``n_seeds`` confirmation seeds, skipping runs already stored; returns
    the number of runs made now. ``on_run(done, total)`` after each. ``share = (i, n)``: only the
    runs :func:`assign` gives worker ``i`` of ``n`` search worker processes (each runs its share once
    the trials are done; the plan and its assignment are the same in all, computed from the finished
    trials; the search process then makes any run still missing, e.g. a dead worker's)."""
    if n_seeds <= 0:
        return 0
    trials = study.get_trials(deepcopy=False)
    seeds = confirm_seeds(config.seed, n_seeds)
    walls = {t.number: float(t.user_attrs.get("wall_s") or 0.0) for t in trials}
    chosen = candidates(trials, k)
    plan = [(p, s) for _, p, _ in chosen for s in seeds]
    # the runs by key too: the search process shows the workers' progress from them (confirm_progress)
    study.set_user_attr("confirm_plan", {"seeds": seeds, "k": k, "runs": [_key(p, s) for p, s in plan]})
    have = set(stored_runs(study))
    made = 0
    part, parts = share
    # one process: the plan's order; a worker: its share, longest first
    order = range(len(plan)) if parts == 1 else assign([walls.get(n, 0.0) for n, _, _ in chosen for _ in seeds],
                                                       parts)[part]
    for i in order:
        params, seed = plan[i]
        key = _key(params, seed)
        if key in have:
            continue
        run = _evaluate(config, evaluator, params, seed)
        study.set_user_attr(key, run.to_dict())
        made += 1
        if on_run is not None:
            on_run(i + 1, len(plan))
    return made


def assign(walls: Sequence[float], parts: int) -> list[list[int]]:
    """Runs (their expected walls, here the candidate trial's measured ``wall_s``) split among ``parts``
    workers, longest first, each to the least loaded worker so far (ties: the lower index); per worker
    the indices in the order it runs them. Deterministic: every worker computes the same split."""
    shares: list[list[int]] = [[] for _ in range(max(1, parts))]
    load = [0.0] * len(shares)
    for i in sorted(range(len(walls)), key=lambda j: (-walls[j], j)):
        w = min(range(len(shares)), key=lambda p: (load[p], p))
        shares[w].append(i)
        load[w] += walls[i]
    return shares


def _evaluate(config: SearchConfig, evaluator: Evaluator, params: dict[str, Any], seed: int) -> ConfirmRun:
    t0 = time.perf_counter()
    try:
        ev = evaluator(dict(params), seed)
    except OverBudget as stop:
        return ConfirmRun(params, seed, None, None, None, False, time.perf_counter() - t0, f"stopped: {stop}")
    except (EvaluationError, CodesignError) as err:
        return ConfirmRun(params, seed, None, None, None, False, time.perf_counter() - t0, f"failed: {err}")
    wall = time.perf_counter() - t0
    missed = str(ev.attrs.get("budgets_missed") or "")
    fits = (config.budget is None or ev.cost <= config.budget.value) and not missed
    why = None if fits else ("over the cost budget" if not missed else f"over the {missed} budget")
    test = None if ev.test_accuracy is None else float(ev.test_accuracy)
    return ConfirmRun(params, seed, float(ev.val_accuracy), test, float(ev.cost), fits, wall, why)


def _mean_sd(xs: list[float]) -> tuple[float | None, float | None]:
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def decide(study: optuna.Study) -> dict[str, Any] | None:
    """The confirmed answer from the stored runs (None when the study holds no confirmation)."""
    plan = study.user_attrs.get("confirm_plan")
    if not plan:
        return None
    seeds, runs = list(plan["seeds"]), stored_runs(study)
    trials = study.get_trials(deepcopy=False)
    rows: list[dict[str, Any]] = []
    for number, params, role in candidates(trials, int(plan.get("k", TOP_K))):
        got = [runs[key] for s in seeds if (key := _key(params, s)) in runs]
        vals = [r.val_accuracy for r in got if r.val_accuracy is not None]
        tests = [r.test_accuracy for r in got if r.test_accuracy is not None]
        costs = [r.cost for r in got if r.cost is not None]
        val_mean, val_sd = _mean_sd(vals)
        test_mean, test_sd = _mean_sd(tests)
        rows.append({"number": number, "params": params, "role": role, "seeds": len(got),
                     "fits_every_seed": len(got) == len(seeds) and all(r.fits for r in got),
                     "val_mean": val_mean, "val_sd": val_sd, "test_mean": test_mean, "test_sd": test_sd,
                     "cost_mean": statistics.fmean(costs) if costs else None,
                     "train_wall_s": sum(r.wall_s for r in got),
                     "misses": sorted({r.why for r in got if r.why})})
    eligible = [r for r in rows if r["fits_every_seed"] and r["val_mean"] is not None
                and r["number"] in {t.number for t in _feasible_trials(trials)}]
    chosen, tied = None, []
    if eligible:
        top = max(eligible, key=lambda r: (r["val_mean"], -(r["cost_mean"] or 0.0)))
        tied = [r for r in eligible if r is top or _ties(top, r, runs, seeds)]
        chosen = min(tied, key=lambda r: (r["cost_mean"], -r["val_mean"]))
    early = {t.number for t in trials if t.user_attrs.get("early")}
    dense = next((r for r in rows if "dense" in r["role"] and r["number"] in early),
                 next((r for r in rows if "dense" in r["role"]), None))
    return {"seeds": seeds, "n_seeds": len(seeds), "candidates": rows,
            "chosen": None if chosen is None else chosen["number"],
            "tied_with": [r["number"] for r in tied if chosen is not None and r["number"] != chosen["number"]],
            "dense": None if dense is None else dense["number"],
            "train_wall_s": sum(r.wall_s for r in runs.values())}


def _ties(top: dict[str, Any], other: dict[str, Any], runs: Mapping[str, ConfirmRun], seeds: list[int]) -> bool:
    """Within one standard error of the paired per-seed differences of validation accuracy."""
    diffs = []
    for s in seeds:
        a, b = runs.get(_key(top["params"], s)), runs.get(_key(other["params"], s))
        if a and b and a.val_accuracy is not None and b.val_accuracy is not None:
            diffs.append(a.val_accuracy - b.val_accuracy)
    if len(diffs) < 2:
        return False
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    return statistics.fmean(diffs) <= se
