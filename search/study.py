"""Run a cost-aware Optuna study to a target number of COMPLETE trials, resumably.

Objectives (``objective="pareto"``): maximise validation accuracy and minimise the metric's cost,
``values = (acc_val, cost)`` with Optuna's TPE sampler (default settings) re-seeded per trial (see Seeds).
``objective="acc-per-cost"``: maximise the scalar ``acc_val / cost``. With a budget ``B`` each trial
sets ``trial.set_constraint("budget", cost - B)`` (Optuna 5's constraint API): feasible iff
``cost <= B`` and the evaluator's ``budgets_missed`` attribute (area / power of a hardware search,
constraint ``hardware``) is empty; infeasible trials stay in the study and in the Pareto front, the sampler ranks them
below every feasible one. Pruners are not used (they do not support multi-objective studies).

Counting: ``n_trials`` is the number of COMPLETE trials the study should hold. A worker starts a
trial only while ``complete + running < n_trials``; two workers that race past that check are
ordered by trial number (the storage assigns numbers atomically): the later one is marked FAIL
as ``surplus`` before anything is evaluated. Trials of dead workers are failed and retried with the
same parameters (:mod:`search.storage`). So a rerun of the same command tops the study up, and after
an interrupt no trial is lost or run twice to completion.

Seeds follow the trial's slot (:mod:`search.screening`): the configuration in slot ``k`` is sampled
by a TPE seeded from ``(seed, k)`` and trained with seed ``seed + k``, and a retry keeps the slot of
the trial it retries, so a killed and resumed search equals an uninterrupted one, and parallel
workers never draw the same random start-up points.

Before training (:mod:`search.screening`): the reference configuration (e.g. the dense network) is
trained first, once, whatever its cost, then the ``early`` configurations (the longest dense run
that fits the budget: a sparse answer must beat it); a configuration already trained is not trained again
(``repeats``); with ``screen`` and a budget, a configuration whose predicted cost interval lies
wholly over the budget is recorded as screened (PRUNED, no accuracy) instead of trained, and a run
the evaluator stops part-way once it is proven over the budget (:class:`OverBudget`) likewise, with
the epochs and time it ran. Only trained (COMPLETE) trials count towards ``n_trials``.

Workers: ``n_jobs`` > 1 runs that many worker *processes* (each with its own torch RNG and caches) on
the same storage, so a parallel search trains every slot exactly as a serial one does. They are forked
from a fork server (:func:`search.workers.start_worker_server`) that a caller may start first thing, with the heavy
modules the workers need imported there once (``preload``) while the main process does its own set-up:
a worker then starts in milliseconds instead of paying its own imports (torch: 1-2 s of a core). With
``confirm_seeds``, each worker then makes its share of the confirmation runs (:mod:`search.confirm`).
"""

from __future__ import annotations

import datetime as dt
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from costmodels.errors import CodesignError

from .budget import Budget
from .config import CONTEXT_ATTR, LATER_CONTEXT, EvaluationError, Evaluator, SearchConfig
from .sampler import make_sampler
from .screening import OverBudget, Predictor, duplicate_of, slot_of
from .space import SearchSpace
from .storage import (
    WORKER_ATTR,
    fail_untagged,
    open_storage,
    recover_dead_trials,
    retry_own_running,
    retry_trial,
    worker_tag,
)

if TYPE_CHECKING:
    import optuna

STOP_GRACE_S = 10.0  # seconds a stopped worker gets to exit before it is killed (its trial is retried on resume)
POLL_S = 0.2  # s between checks while waiting for other workers (a check costs a few ms of SQLite)
PROGRESS_S = 0.5  # s between the search process's looks at its workers' progress (same cost)
MAX_UNTRAINED_STREAK = 100  # sampled configurations in a row screened or repeated: the space left is spent


class _Surplus(Exception):
    """Raised inside a trial that lost the race for the last slots (see the module docstring)."""


class _Duplicate(Exception):
    """Raised inside a trial whose configuration was already trained (see :mod:`search.screening`)."""


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
            sampler=make_sampler(config.seed),
            load_if_exists=create,
        )
    except optuna.exceptions.DuplicatedStudyError:  # pragma: no cover - load_if_exists=False only
        raise CodesignError(f"study {config.study_name!r} already exists") from None
    stored = study.user_attrs.get(CONTEXT_ATTR)
    if stored is None:
        study.set_user_attr(CONTEXT_ATTR, wanted)
        study.set_user_attr("n_trials_target", config.n_trials)
    else:
        diff = sorted(k for k in set(stored) | set(wanted) if not _same(k, stored.get(k), wanted.get(k))
                      and not (k in LATER_CONTEXT and k not in stored))
        if diff:
            k = diff[0]
            raise CodesignError(
                f"study {config.study_name!r} in {config.storage.split('@')[-1]} was run with {k}="
                f"{stored.get(k)!r}, not {wanted.get(k)!r}; rerun with the same options or pick a new --study"
            )
        study.set_user_attr("n_trials_target", config.n_trials)
    return study


def _same(key: str, stored: Any, wanted: Any) -> bool:
    """Stored and wanted context values agree; a budget by its value and metric (``8 J`` = ``8J`` = ``8000mJ``),
    not by how it was written."""
    if key == "budget" and isinstance(stored, dict) and isinstance(wanted, dict):
        try:
            close = math.isclose(float(stored["value"]), float(wanted["value"]), rel_tol=1e-9)
        except (KeyError, TypeError, ValueError):
            return stored == wanted
        return close and stored.get("metric") == wanted.get("metric") and stored.get("unit") == wanted.get("unit")
    return bool(stored == wanted)


def count_states(study: optuna.Study) -> tuple[int, int]:
    """(complete, running) trial counts."""
    import optuna

    s = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False, states=(s.COMPLETE, s.RUNNING))
    complete = sum(t.state == s.COMPLETE for t in trials)
    return complete, len(trials) - complete


def _queue_interrupted(study: optuna.Study, trial: optuna.Trial, sampled: dict[str, Any]) -> None:
    """Queue the retry of a trial Ctrl-C stopped (wherever it was: sampling, its checks, training), so a
    resumed search makes the same trials slot by slot as one never stopped (:func:`storage.retry_trial`
    with what the trial had decided: its parameters, whether it made its duplicate check). A trial that
    was no trial (surplus, a repeat) is not queued."""
    if trial.user_attrs.get("surplus") or trial.user_attrs.get("duplicate_of") is not None:
        return
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    trial.set_user_attr("interrupted", True)
    retry_trial(study, frozen, sampled.get("params"), bool(sampled.get("checked")))


def _objective(study: optuna.Study, config: SearchConfig, space: SearchSpace, evaluator: Evaluator,  # type: ignore[no-untyped-def]
               predict: Predictor | None = None):
    import optuna

    s = optuna.trial.TrialState

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        sampled: dict[str, Any] = {}  # what the trial has decided so far: its parameters, its duplicate check
        try:
            return decide_and_train(trial, sampled)
        except KeyboardInterrupt:  # Ctrl-C anywhere in a trial: Optuna fails it; queue it again for its slot
            _queue_interrupted(study, trial, sampled)
            raise

    def decide_and_train(trial: optuna.Trial, sampled: dict[str, Any]) -> float | tuple[float, float]:
        trial.set_user_attr(WORKER_ATTR, worker_tag())
        ahead = sum(
            t.state == s.COMPLETE or t.number < trial.number
            for t in study.get_trials(deepcopy=False, states=(s.COMPLETE, s.RUNNING))
        )
        if ahead >= config.n_trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"study already holds or runs {config.n_trials} trials")
        slot = slot_of(study.get_trials(deepcopy=False), trial.number)
        seed = config.seed + slot
        params = space.suggest(trial)
        reference = bool(trial.user_attrs.get("reference"))
        trial.set_user_attr("slot", slot)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("params", params)  # at once: a parallel worker sampling the same sees it running
        sampled["params"] = params
        # a retry keeps its original's decision, unless the original was stopped before it made it
        if trial.user_attrs.get("retry_of") is None or trial.user_attrs.get("unchecked"):
            dup = duplicate_of(study.get_trials(deepcopy=False), trial.number, params, config.repeats)
            if dup is not None:
                trial.set_user_attr("duplicate_of", dup)
                raise _Duplicate(f"configuration of trial {dup} already trained")
        sampled["checked"] = True
        interval = predict(params) if predict is not None else None
        predicted = {} if interval is None else {
            "predicted_cost_low": interval.low, "predicted_cost_high": interval.high,
            "predicted_exact": interval.exact, "predicted_epochs_low": interval.epochs_low,
            "predicted_epochs_high": interval.epochs_high}
        if (config.screen and not reference and interval is not None and config.budget is not None
                and interval.low > config.budget.value):
            for key, value in {"params": params, "screened": True, "feasible": False, **predicted}.items():
                trial.set_user_attr(key, value)
            trial.set_constraint("budget", config.budget.violation(interval.low))
            raise optuna.TrialPruned(f"predicted cost >= {interval.low:g} is over the budget")
        t0 = time.perf_counter()
        try:
            ev = evaluator(params, seed)
        except EvaluationError as err:  # a real failure: FAIL, its reason in trials.csv
            trial.set_user_attr("fail_reason", str(err))
            raise
        except OverBudget as stop:  # stopped part-way, proven over the budget: a screened trial that trained a while
            i = stop.interval
            stopped: dict[str, Any] = {
                "params": params, "screened": True, "feasible": False, **predicted,
                "predicted_cost_low": i.low, "predicted_cost_high": i.high, "predicted_exact": i.exact,
                "predicted_epochs_low": i.epochs_low, "predicted_epochs_high": i.epochs_high,
                "stopped_after_epochs": stop.epochs_run, "stopped_because": stop.why,
                "wall_s": time.perf_counter() - t0}
            for key, value in stopped.items():
                trial.set_user_attr(key, value)
            if config.budget is not None:
                trial.set_constraint("budget", config.budget.violation(i.low))
            raise optuna.TrialPruned(str(stop)) from None
        wall = time.perf_counter() - t0
        if not (math.isfinite(ev.val_accuracy) and math.isfinite(ev.cost) and ev.cost >= 0):
            raise EvaluationError(f"evaluator gave accuracy={ev.val_accuracy} cost={ev.cost} for {params}")
        missed = str(ev.attrs.get("budgets_missed") or "")  # area / power budgets of a hardware search
        feasible = (config.budget is None or ev.cost <= config.budget.value) and not missed
        record = {
            "params": params, "val_accuracy": ev.val_accuracy, "test_accuracy": ev.test_accuracy,
            "cost": ev.cost, "costs": dict(ev.costs), "feasible": feasible, "wall_s": wall, "screened": False,
            **predicted, **dict(ev.attrs),
        }
        for key, value in record.items():
            trial.set_user_attr(key, value)
        if config.budget is not None:
            trial.set_constraint("budget", config.budget.violation(ev.cost))
        if "budgets_missed" in ev.attrs:  # every trial of a hardware search sets it: an infeasible chip is never best
            trial.set_constraint("hardware", 1.0 if missed else 0.0)
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
    screened: int = 0


def best_so_far(study: optuna.Study, budget: Budget | None) -> tuple[float | None, float | None]:
    """(val accuracy, cost) of the most accurate feasible complete trial so far."""
    import optuna

    best: tuple[float, float] | None = None
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        acc, cost = t.user_attrs.get("val_accuracy"), t.user_attrs.get("cost")
        if acc is None or cost is None or (budget is not None and cost > budget.value) or t.user_attrs.get(
                "budgets_missed"):
            continue
        if best is None or (acc, -cost) > (best[0], -best[1]):
            best = (acc, cost)
    return (None, None) if best is None else best


def _progress(study: optuna.Study, config: SearchConfig) -> SearchProgress:
    complete, _ = count_states(study)
    screened = sum(bool(t.user_attrs.get("screened")) for t in study.get_trials(deepcopy=False))
    return SearchProgress(complete, config.n_trials, *best_so_far(study, config.budget), screened=screened)


def enqueue_reference(study: optuna.Study, space: SearchSpace, reference: Mapping[str, Any] | None,
                      early: Sequence[Mapping[str, Any]] = ()) -> bool:
    """Queue the reference configuration as the study's first trial and the ``early`` ones right after it
    (only into an empty study), their parameters recorded from the start (a parallel worker sampling
    them meanwhile sees a repeat)."""
    if (reference is None and not early) or study.get_trials(deepcopy=False):
        return False
    if reference is not None:
        study.enqueue_trial(dict(reference), user_attrs={"reference": True, "params": space.complete(reference)})
    for params in early:
        if reference is None or space.complete(params) != space.complete(reference):
            study.enqueue_trial(dict(params), user_attrs={"early": True, "params": space.complete(params)})
    return True


def _work(study: optuna.Study, config: SearchConfig, space: SearchSpace, evaluator: Evaluator,
          predict: Predictor | None, callback: Callable[..., None] | None,
          waiting: Callable[[bool], None] | None = None) -> None:
    """One worker's loop: trials until the study holds ``n_trials`` complete ones (or the space is spent).
    ``waiting(True)`` when it has no trial left to start and only waits for other workers' last ones
    (their runs may then take its cores), ``waiting(False)`` when it starts one again."""
    import optuna

    objective = _objective(study, config, space, evaluator, predict)
    streak, idle = 0, False
    while True:
        complete, running = count_states(study)
        if complete >= config.n_trials:
            return
        if complete + running >= config.n_trials:
            if waiting is not None and not idle:
                waiting(True)
            idle = True
            time.sleep(POLL_S)  # others are finishing the last trials; retry theirs if they die
            recover_dead_trials(study)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            continue
        if idle and waiting is not None:
            waiting(False)
        idle = False
        try:
            study.optimize(objective, n_trials=1, catch=(EvaluationError, _Surplus, _Duplicate),
                           callbacks=[callback] if callback else [])
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as err:
            # Two worker processes can pop the same queued (WAITING) trial from a SQLite study: both run it,
            # the first to finish tells its result, and Optuna refuses the second's: "Cannot tell a COMPLETE
            # trial" (ValueError) when it reads the state first, UpdateFinishedTrialError when the first's tell
            # lands between Optuna's check and its write. The trial has its result; this worker goes on to
            # the next one (SQLite has no SELECT ... FOR UPDATE; optuna/optuna#4002).
            if isinstance(err, ValueError) and not str(err).startswith("Cannot tell a"):
                raise
        last = study.get_trials(deepcopy=False)[-1]
        trained = last.state == optuna.trial.TrialState.COMPLETE or last.user_attrs.get("surplus")
        streak = 0 if trained else streak + 1
        if streak >= MAX_UNTRAINED_STREAK:
            study.set_user_attr("stopped", f"{streak} sampled configurations in a row were screened or already "
                                           "trained: the space under the budget looks spent")
            return


def _process_worker(config: SearchConfig, space: SearchSpace, evaluator: Evaluator, predict: Predictor | None,
                    worker_init: Callable[[], None] | None, waiting: Callable[[bool], None] | None = None,
                    index: int = 0, confirm_seeds: int = 0) -> None:
    """Body of worker process ``index`` of ``n_jobs`` (> 1): trials, then its share of the
    confirmation runs (``search.confirm``; ``confirm_seeds`` 0: none)."""
    import optuna

    from .workers import die_with_parent, stopped

    die_with_parent()
    try:
        if worker_init is not None:
            worker_init()
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = open_study(config, space)
        _work(study, config, space, evaluator, predict, None, waiting)
        if confirm_seeds > 0 and count_states(study)[0] >= config.n_trials:
            from .confirm import run_confirmation

            if waiting is not None:  # training again
                waiting(False)
            run_confirmation(study, config, evaluator, confirm_seeds, share=(index, config.n_jobs))
            if waiting is not None:  # its share done: the others' last runs may take its cores
                waiting(True)
    except BaseException:
        if stopped():  # stopped mid-trial: whatever that interrupted says is the stop's echo, not a failure
            raise SystemExit(143) from None  # the parent says it in one line; the study resumes
        raise


def run_search(
    config: SearchConfig,
    space: SearchSpace,
    evaluator: Evaluator,
    *,
    on_trial: Callable[[SearchProgress], None] | None = None,
    predict: Predictor | None = None,
    reference: Mapping[str, Any] | None = None,
    early: Sequence[Mapping[str, Any]] = (),
    worker_init: Callable[[], None] | None = None,
    waiting: Callable[[bool], None] | None = None,
    confirm_seeds: int = 0,
    on_confirm: Callable[[int, int], None] | None = None,
) -> optuna.Study:
    """Top the study up to ``config.n_trials`` complete (trained) trials.

    ``predict``: the cost interval of a configuration before training (screening, see the module
    docstring); ``reference``: parameters trained first, once (e.g. the dense network); ``early``:
    parameters trained right after it (e.g. the longest dense run whose exact cost fits the budget);
    ``n_jobs`` > 1: that many worker processes, forked from :func:`search.workers.start_worker_server`'s server
    (``evaluator``, ``predict`` and ``worker_init`` must be picklable; ``worker_init`` runs first in
    each, e.g. to set its threads);
    ``waiting``: told when this process (``n_jobs`` 1), or a worker process (``n_jobs`` > 1; it must
    then be picklable), has no trial left to start (see :func:`_work`);
    ``confirm_seeds`` (``n_jobs`` > 1): once the study holds its trials, each worker process makes its
    share of the confirmation runs on that many seeds (``search.confirm.run_confirmation``; the caller
    then runs it once more, which makes only what is still missing; ``on_confirm(done, total)`` as the
    workers store their runs). ``n_jobs`` 1: the caller runs it.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = open_study(config, space)
    recover_dead_trials(study)
    enqueue_reference(study, space, reference, early)
    if on_trial is not None:  # the starting point (a resumed study already holds trials)
        on_trial(_progress(study, config))

    def callback(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None and trial.state == optuna.trial.TrialState.COMPLETE:
            on_trial(_progress(st, config))

    if config.n_jobs == 1:
        try:
            _work(study, config, space, evaluator, predict, callback, waiting)
        except KeyboardInterrupt:
            retry_own_running(study)
            raise
        return study
    if config.storage.startswith("sqlite:///:memory:") or "://" not in config.storage:
        raise CodesignError(f"--n-jobs {config.n_jobs} needs a storage the worker processes share, not "
                            f"{config.storage!r}; drop --storage or give a file or server URL")
    import multiprocessing
    import multiprocessing.connection

    from .workers import start_worker_server

    start_worker_server()
    ctx = multiprocessing.get_context("forkserver")
    procs = [ctx.Process(target=_process_worker, args=(config, space, evaluator, predict, worker_init, waiting, i,
                                                       confirm_seeds), daemon=True) for i in range(config.n_jobs)]
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    # a Ctrl-C while the workers start (seconds, while the fork server finishes its imports) is held, not
    # dropped, and answered once they run: the stop below then ends them (it was ignored, and the search ran on)
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda *_: held.append(1)) if main_thread else None
    shown, started, interrupted = -1, dt.datetime.now() - dt.timedelta(seconds=1), False
    confirmed: tuple[int, int] | None = None
    try:
        try:
            for p in procs:
                p.start()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if held:
            raise KeyboardInterrupt
        from .plots import prefetch_plotting  # this process only waits now: the plots' imports meanwhile

        prefetch = threading.Thread(target=prefetch_plotting, name="prefetch-plotting", daemon=True)
        prefetch.start()
        alive = True
        while alive:  # one look after the last worker ended too: what it stored last is shown
            # wakes when a worker ends, else every PROGRESS_S (each look reads the study: CPU the workers want)
            running = [p.sentinel for p in procs if p.is_alive()]
            if running:
                multiprocessing.connection.wait(running, timeout=PROGRESS_S)
            alive = any(p.is_alive() for p in procs)
            progress = _progress(study, config)
            if on_trial is not None and progress.complete != shown:
                shown = progress.complete
                on_trial(progress)
            if on_confirm is not None and confirm_seeds > 0 and progress.complete >= config.n_trials:
                from .confirm import confirm_progress

                runs = confirm_progress(study)
                if runs is not None and runs != confirmed:
                    confirmed = runs
                    on_confirm(*runs)
        prefetch.join()  # done by now on all but the shortest searches; the plots then draw on one thread
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:  # a SIGTERM answered inside a blocking call (a database lock, torch) must not hang us
            if p.pid is None:  # never started (Ctrl-C during the start)
                continue
            p.join(STOP_GRACE_S)
            if p.is_alive():
                p.kill()
                p.join()
        if interrupted:  # the workers' stopped trials: INTERRUPTED and queued again (a resume would say "worker died")
            fail_untagged(study, started)  # one stopped between Optuna creating its trial and tagging it
            retry_own_running(study, [p.pid for p in procs if p.pid is not None])
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise CodesignError(f"{len(bad)} of {config.n_jobs} worker processes failed (exit {bad[0]}); "
                            "rerun the same command to resume, or with --n-jobs 1 to see the error")
    return study
