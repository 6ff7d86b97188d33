"""Search worker processes on one study: exact trial counts, killed and stopped workers, a fresh SQLite
study created by several at once, the same trials as one worker, no configuration trained twice, and a
worker with nothing left to start. (The study itself: ``test_search_study.py``, whose helpers these use.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
import pytest
from test_search_study import (
    HERE,
    SPACE,
    SPARSE_SPACE,
    _by_slot,
    config,
    fake_evaluator,
    load,
    seeded_evaluator,
    states,
)

from search import run_search
from search.storage import worker_tag
from search.study import count_states, open_study


def _worker_script(url: str, n: int, delay: float, study: str = "s", barrier: str = "") -> str:
    """A worker process: imports, optionally waits for ``barrier/go`` (after touching a ready file), runs."""
    wait = (f"import os, time; open(os.path.join({barrier!r}, str(os.getpid())), 'w').close()\n"
            f"while not os.path.exists(os.path.join({barrier!r}, 'go')): time.sleep(0.05)\n") if barrier else ""
    return (
        f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]\n"
        "import functools, test_search_study as t\n"
        "from search import SearchConfig, run_search\n"
        + wait +
        f"cfg = SearchConfig({study!r}, {url!r}, {n}, t.METRIC, t.parse_budget('1.4 J', t.METRIC), "
        "context={'device': 'fake'})\n"
        f"run_search(cfg, t.SPACE, functools.partial(t.fake_evaluator, delay={delay}))\n"
    )


def _open_storage_in_child(url: str) -> str:
    from search.storage import open_storage

    open_storage(url)
    return "ok"


def _peek(db) -> tuple[int, int]:
    """(complete trials, running trials with all their parameters drawn: the ``params`` user attribute is
    set after the last one) read without touching the schema."""
    import sqlite3

    if not db.exists():
        return 0, 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            complete = con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
            running = con.execute(
                "SELECT COUNT(*) FROM trials t WHERE t.state = 'RUNNING' AND EXISTS "
                "(SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'params')"
            ).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # tables not created yet
        return 0, 0
    return complete, running


def test_killed_worker_trial_is_retried_once(tmp_path):
    cfg = config(tmp_path, 8)
    proc = subprocess.Popen([sys.executable, "-c", _worker_script(cfg.storage, 8, 0.4)])
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        # Peek read-only with sqlite3: opening an Optuna storage here would write its schema
        # version while the worker creates the tables (a race on a slow machine).
        complete, running = _peek(tmp_path / "study.db")
        if complete >= 3 and running:
            break  # killed mid-evaluation, its parameters already drawn
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    study = load(cfg)
    zombie = [t for t in study.trials if t.state.name == "RUNNING"]
    assert len(zombie) == 1 and zombie[0].user_attrs["worker"].endswith(f":{proc.pid}")
    run_search(cfg, SPACE, fake_evaluator)  # the rerun: same command
    study = load(cfg)
    assert states(study) == {"COMPLETE": 8, "FAIL": 1}
    dead = study.trials[zombie[0].number]
    assert dead.state.name == "FAIL" and dead.system_attrs["fail_reason"] == "worker died"
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].params == dead.params
    from search.export import summary, trials_frame

    df = trials_frame(study).set_index("number")  # trials.csv says why it failed; retried, it is no failure
    assert df.loc[dead.number, "fail_reason"] == "worker died" and summary(study)["n_failed"] == 0


def test_two_worker_processes_hold_exact_count(tmp_path):
    import functools

    cfg = config(tmp_path, 7, n_jobs=2)
    run_search(cfg, SPACE, functools.partial(fake_evaluator, delay=0.05))
    assert states(load(cfg)).get("COMPLETE") == 7
    assert states(load(cfg)).get("RUNNING") is None


def test_a_ctrl_c_while_the_workers_start_stops_the_search(tmp_path, monkeypatch):
    """Ctrl-C while the workers start (the fork server may still be importing) was ignored there, and the search
    ran on; now it is held and answered once they run: the search stops and no worker is left."""
    import functools
    import multiprocessing.context
    import os

    real_start = multiprocessing.context.ForkServerProcess.start
    started = []

    def start_then_ctrl_c(self):
        real_start(self)
        started.append(self)
        if len(started) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # lands between the first worker's start and the second's

    monkeypatch.setattr(multiprocessing.context.ForkServerProcess, "start", start_then_ctrl_c)
    cfg = config(tmp_path, 50, n_jobs=2)
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, SPACE, functools.partial(fake_evaluator, delay=0.2))
    assert len(started) == 2 and not any(p.is_alive() for p in started)
    assert time.perf_counter() - t0 < 30 and (states(load(cfg)).get("COMPLETE") or 0) < 50


def test_workers_creating_a_fresh_sqlite_study_at_once_all_succeed(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        for i in range(5):  # each round: three workers race to create the same fresh database
            url = f"sqlite:///{tmp_path}/race{i}.db"
            assert pool.map(_open_storage_in_child, [url] * 3) == ["ok"] * 3


def test_worker_processes_train_the_same_trials_as_one_worker(tmp_path):
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
    serial = run_search(config(tmp_path / "one", 6, name="s"), SPARSE_SPACE, seeded_evaluator)
    parallel = run_search(config(tmp_path / "two", 6, name="s", n_jobs=2), SPARSE_SPACE, seeded_evaluator)
    assert _by_slot(parallel) == _by_slot(serial) and len(_by_slot(serial)) == 6


def test_a_configuration_running_in_another_worker_is_not_trained_again():
    """Parallel workers: a trial records its parameters as soon as they are sampled, and a later trial
    with the same parameters is a repeat of the earlier running one (never the other way round, so
    one of the two always trains)."""
    from search.screening import duplicate_of

    study = optuna.create_study()
    first, second = study.ask(), study.ask()  # both RUNNING, as in two workers
    params = {"method": "dense", "graph_sparsity": 0.0, "weight_sparsity": 0.0}
    for t in (first, second):
        t.set_user_attr("params", params)
    trials = study.get_trials(deepcopy=False)
    assert duplicate_of(trials, second.number, params, repeats=1) == first.number
    assert duplicate_of(trials, first.number, params, repeats=1) is None
    assert duplicate_of(trials, second.number, params, repeats=2) is None  # --repeats 2 allows both


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_worker_with_no_trial_left_to_start_says_it_waits(tmp_path):
    """The last trial runs in another process: this worker reports waiting (so that trial may take
    its cores) and returns once that trial completes."""
    import os
    import threading

    from search.storage import WORKER_ATTR

    cfg = config(tmp_path, 1, budget=None)
    study = open_study(cfg, SPACE)
    other = study.ask({"method": optuna.distributions.CategoricalDistribution(["dense"])})
    other.set_user_attr(WORKER_ATTR, f"{worker_tag().rsplit(':', 1)[0]}:{os.getppid()}")  # alive elsewhere
    calls = []
    finish = threading.Timer(0.6, lambda: study.tell(other, [0.8, 1.0]))

    def waiting(idle: bool) -> None:  # the other process finishes only once this worker waits for it,
        calls.append(idle)             # however long this one took to get there (a slow CI machine)
        if idle and not finish.is_alive():
            finish.start()

    run_search(cfg, SPACE, fake_evaluator, waiting=waiting)
    finish.join()
    assert calls == [True] and count_states(study) == (1, 0)


def test_a_worker_stopped_mid_trial_exits_quietly(monkeypatch):
    """SIGTERM can land inside Optuna's bookkeeping, which then raises an error of its own ("Cannot tell a
    COMPLETE trial"): a stopped worker exits 143 without that traceback; an unstopped one still raises."""
    import search.workers as workers
    from search.study import _process_worker

    monkeypatch.setattr(workers, "die_with_parent", lambda: None)

    def echo_of_the_stop() -> None:
        workers._STOPPED[0] = True
        raise ValueError("Cannot tell a COMPLETE trial.")

    monkeypatch.setattr(workers, "_STOPPED", [False])
    with pytest.raises(SystemExit) as stop:
        _process_worker(None, None, None, None, echo_of_the_stop)  # type: ignore[arg-type]
    assert stop.value.code == 143 and stop.value.__suppress_context__  # the echo is not printed as its cause

    def real_failure() -> None:
        raise ValueError("a real error")

    monkeypatch.setattr(workers, "_STOPPED", [False])
    with pytest.raises(ValueError, match="a real error"):
        _process_worker(None, None, None, None, real_failure)  # type: ignore[arg-type]


@pytest.mark.parametrize("refusal", [ValueError("Cannot tell a COMPLETE trial."),
                                     optuna.exceptions.UpdateFinishedTrialError("Trial#0 has already finished "
                                                                                 "and can not be updated.")])
def test_a_trial_another_worker_already_told_is_not_an_error(tmp_path, monkeypatch, refusal):
    """Two processes can pop one queued trial from a SQLite study (optuna/optuna#4002): the second tell is
    refused, with "Cannot tell a COMPLETE trial" or, when the first tell lands between Optuna's check and its
    write, UpdateFinishedTrialError (a worker of the two-worker confirmation test crashed on that). The worker
    goes on; any other ValueError still stops it."""
    real = optuna.Study.optimize
    calls = {"n": 0}

    def told_twice(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        real(self, *args, **kwargs)
        if calls["n"] == 2:
            raise refusal

    monkeypatch.setattr(optuna.Study, "optimize", told_twice)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    study = run_search(config(tmp_path / "a", 3), SPACE, fake_evaluator)
    assert states(study) == {"COMPLETE": 3} and calls["n"] == 3

    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("something else")

    monkeypatch.setattr(optuna.Study, "optimize", broken)
    with pytest.raises(ValueError, match="something else"):
        run_search(config(tmp_path / "b", 3), SPACE, fake_evaluator)


def test_the_fork_server_ends_with_the_search_process_at_once():
    """At exit the search process ends its workers' fork server itself (SIGTERM): left to exit on its own, the
    server first ran a whole interpreter shutdown with torch loaded (~0.7 s) while holding the process's stdout,
    so a caller reading that pipe waited on. Here the stop must return with the server gone; without the
    SIGTERM, waiting for a server whose parent is alive never returns (the subprocess times out)."""
    script = (
        f"import sys, os; sys.path[:0] = [{str(HERE.parent)!r}]\n"
        "from multiprocessing import forkserver\n"
        "from search.workers import _stop_worker_server, start_worker_server\n"
        "start_worker_server()\n"
        "pid = forkserver._forkserver._forkserver_pid\n"
        "_stop_worker_server()\n"
        "try:\n"
        "    os.kill(pid, 0)\n"
        "    print('alive')\n"
        "except ProcessLookupError:\n"
        "    print('gone')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "gone"
