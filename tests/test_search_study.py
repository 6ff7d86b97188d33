"""Studies: constraints, top-up/resume, dead-worker recovery, surplus arbitration, exports.

A fast deterministic fake evaluator stands in for training (accuracy and cost are smooth functions
of the sparsities), so every number below is checkable by hand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from costmodels.errors import CodesignError
from search import Evaluation, Param, SearchConfig, SearchSpace, parse_budget, parse_metric, run_search
from search.export import summary, trials_frame
from search.outputs import write_outputs
from search.storage import embedded_url, open_storage, worker_tag
from search.study import _objective, count_states, open_study

HERE = Path(__file__).resolve().parent
METRIC = parse_metric("train-energy")
SPACE = SearchSpace((
    Param("method", choices=("dense", "gebt", "random")),
    Param("graph_sparsity", low=0.0, high=0.9, applies_to=frozenset({"gebt", "random"}), default=0.0),
    Param("weight_sparsity", low=0.0, high=0.9, applies_to=frozenset({"gebt", "random"}), default=0.0),
))


def fake_accuracy(p):
    return 0.82 - 0.25 * p["graph_sparsity"] ** 2 - 0.1 * p["weight_sparsity"] ** 2 - 0.03 * (p["method"] == "random")


def fake_cost(p):
    return 2.0 * (1.0 - 0.6 * p["graph_sparsity"] - 0.3 * p["weight_sparsity"])


def fake_evaluator(params, seed, delay=0.0):
    if delay:
        time.sleep(delay)
    cost = fake_cost(params)
    return Evaluation(val_accuracy=fake_accuracy(params), test_accuracy=fake_accuracy(params) - 0.01, cost=cost,
                      costs={"train_energy_j": cost, "train_flops": 1e9 * cost}, attrs={"eb_epoch": 7})


def config(tmp_path, n, budget="1.4 J", name="s", **kw):
    return SearchConfig(name, embedded_url(tmp_path), n, METRIC, parse_budget(budget, METRIC) if budget else None,
                        context={"device": "fake"}, **kw)


def load(cfg):
    return optuna.load_study(study_name=cfg.study_name, storage=open_storage(cfg.storage))


def states(study):
    out = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def test_constraints_feasibility_and_best(tmp_path):
    cfg = config(tmp_path, 14)
    study = run_search(cfg, SPACE, fake_evaluator)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 14
    for t in done:
        cost = fake_cost(t.user_attrs["params"])
        assert t.values == pytest.approx([fake_accuracy(t.user_attrs["params"]), cost])
        assert t.constraints == {"budget": pytest.approx(cost - 1.4)}  # Optuna 5 trial.set_constraint
        assert t.user_attrs["feasible"] == (cost <= 1.4)
        assert t.user_attrs["seed"] == t.user_attrs["slot"]  # seed 0 + the trial's slot
        if t.params.get("method") == "dense":
            assert t.user_attrs["params"]["graph_sparsity"] == 0.0 and "graph_sparsity" not in t.params
    feasible = [t for t in done if t.user_attrs["feasible"]]
    infeasible = [t for t in done if not t.user_attrs["feasible"]]
    assert feasible and infeasible  # the budget splits this study
    s = summary(study)
    best = max(feasible, key=lambda t: (t.user_attrs["val_accuracy"], -t.user_attrs["cost"]))
    assert s["best"]["number"] == best.number and s["best"]["feasible"] is True
    assert s["best"]["cost"] <= 1.4 and s["n_trials"] == 14 and s["n_feasible"] == len(feasible)
    # Optuna's own constrained front (feasible only) lies inside ours (all trials)
    ours = {p["number"] for p in s["pareto"]}
    assert {t.number for t in study.best_trials} <= {t.number for t in feasible}
    assert ours and all(p["cost"] > 0 for p in s["pareto"])


def test_top_up_equals_uninterrupted_run(tmp_path):
    a = config(tmp_path / "a", 6, name="a")
    b = config(tmp_path / "b", 12, name="b")
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    run_search(a, SPACE, fake_evaluator)
    assert count_states(load(a)) == (6, 0)
    topped = run_search(SearchConfig(**{**a.__dict__, "n_trials": 12}), SPACE, fake_evaluator)
    straight = run_search(b, SPACE, fake_evaluator)
    pa = [(t.params, t.state.name) for t in topped.trials]
    pb = [(t.params, t.state.name) for t in straight.trials]
    assert len(pa) >= 12 and pa == pb  # per-slot seeding: resuming changes nothing
    trained = [json.dumps(p, sort_keys=True) for p, state in pa if state == "COMPLETE"]
    assert len(trained) == 12 and len(set(trained)) == 12  # nothing trained twice (dense has nothing to vary)
    n = len(load(a).trials)
    run_search(SearchConfig(**{**a.__dict__, "n_trials": 12}), SPACE, fake_evaluator)  # already full: no-op
    assert len(load(a).trials) == n


def test_ctrl_c_fails_trial_and_rerun_retries_it(tmp_path):
    cfg = config(tmp_path, 6)
    calls = []

    def interrupted(params, seed):
        calls.append(seed)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return fake_evaluator(params, seed)

    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, SPACE, interrupted)
    study = load(cfg)
    assert states(study) == {"COMPLETE": 3, "FAIL": 1, "WAITING": 1}
    failed = study.trials[3]
    run_search(cfg, SPACE, fake_evaluator)
    study = load(cfg)
    assert states(study) == {"COMPLETE": 6, "FAIL": 1}
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == failed.number]
    assert len(retry) == 1 and retry[0].params == failed.params and retry[0].state.name == "COMPLETE"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_surplus_trial_is_failed_before_evaluation(tmp_path):
    cfg = config(tmp_path, 1)
    study = open_study(cfg, SPACE)
    other = study.ask()  # trial 0, RUNNING in a live worker (this process)
    other.set_user_attr("worker", worker_tag())
    seen = []
    objective = _objective(study, cfg, SPACE, lambda p, s: seen.append(p) or fake_evaluator(p, s))
    from search.study import _Surplus

    study.optimize(objective, n_trials=1, catch=(_Surplus,))
    t1 = study.trials[1]
    assert t1.state.name == "FAIL" and t1.user_attrs["surplus"] is True and seen == []


def test_changed_options_are_refused_and_nothing_is_lost(tmp_path):
    cfg = config(tmp_path, 3)
    run_search(cfg, SPACE, fake_evaluator)
    other = config(tmp_path, 5, budget="2 J")
    with pytest.raises(CodesignError, match=r"was run with budget=.*pick a new --study"):
        run_search(other, SPACE, fake_evaluator)
    assert count_states(load(cfg)) == (3, 0)


def test_unreachable_storage_is_one_line():
    with pytest.raises(CodesignError) as err:
        open_storage("postgresql+psycopg2://user:secret@127.0.0.1:1/db")
    msg = str(err.value)
    import importlib.util

    said = "unreachable" if importlib.util.find_spec("psycopg2") else "pip install 'codesign[postgres]'"
    assert said in msg and "secret" not in msg and "\n" not in msg
    with pytest.raises(CodesignError, match="not a URL"):
        open_storage("runs/x/study.db")
    with pytest.raises(CodesignError, match="does not exist"):
        open_storage("sqlite:////nonexistent-dir/x/study.db")


def test_exports(tmp_path):
    cfg = config(tmp_path, 10)
    study = run_search(cfg, SPACE, fake_evaluator)
    summ = write_outputs(study, tmp_path)
    df = trials_frame(study)
    assert len(df) == 10 and {"param.method", "cost.train_energy_j", "val_accuracy", "eb_epoch"} <= set(df.columns)
    for name in ("trials.csv", "pareto.csv", "summary.json", "pareto.png"):
        assert (tmp_path / name).stat().st_size > 100
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert set(on_disk) >= {"best", "pareto", "n_trials", "budget", "metric", "device"}
    assert on_disk["budget"] == {"value": 1.4, "unit": "J", "metric": "train-energy", "text": "1.4 J"}
    assert on_disk["n_trials"] == 10 and on_disk["device"] == "fake" and on_disk == json.loads(json.dumps(summ))
    assert set(on_disk["best"]) >= {"params", "accuracy", "cost", "feasible"}


def test_no_budget_is_pure_pareto_and_acc_per_cost_is_scalar(tmp_path):
    study = run_search(config(tmp_path, 4, budget=None, name="p"), SPACE, fake_evaluator)
    assert all(t.constraints == {} for t in study.trials) and summary(study)["best"]["feasible"]
    study = run_search(config(tmp_path, 4, name="r", objective="acc-per-cost"), SPACE, fake_evaluator)
    t = study.trials[0]
    assert t.value == pytest.approx(t.user_attrs["val_accuracy"] / t.user_attrs["cost"])
    with pytest.raises(CodesignError, match="--objective"):
        config(tmp_path, 4, objective="speed")


def test_journal_storage_tops_up(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    cfg = SearchConfig("j", url, 3, METRIC, None, context={"device": "fake"})
    run_search(cfg, SPACE, fake_evaluator)
    run_search(SearchConfig(**{**cfg.__dict__, "n_trials": 5}), SPACE, fake_evaluator)
    study = optuna.load_study(study_name="j", storage=open_storage(url))
    assert states(study) == {"COMPLETE": 5}


# --- seeds follow slots: kill + resume, processes vs serial -------------------------------------------------

SPARSE_SPACE = SearchSpace((
    Param("method", choices=("gebt", "random")),
    Param("graph_sparsity", low=0.0, high=0.9),
    Param("weight_sparsity", low=0.0, high=0.9),
))


def seeded_evaluator(params, seed):
    """Accuracy depends on the seed too, so a trial trained with another seed is told apart."""
    ev = fake_evaluator(params, seed)
    return Evaluation(val_accuracy=ev.val_accuracy + 0.001 * (seed % 13), cost=ev.cost, test_accuracy=None)


def _by_slot(study):
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    return {t.user_attrs["slot"]: (t.params, t.user_attrs["seed"], t.user_attrs["val_accuracy"]) for t in done}


def test_killed_and_resumed_search_equals_uninterrupted_one(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "u").mkdir()
    killed = config(tmp_path / "k", 8, name="s")
    script = (
        f"import sys, os, signal; sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]\n"
        "import test_search_study as t\n"
        "from search import SearchConfig, run_search\n"
        "def ev(p, s):\n"
        "    if s == 5:\n"  # the sixth slot: die in the middle of training it
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return t.seeded_evaluator(p, s)\n"
        f"cfg = SearchConfig('s', {killed.storage!r}, 8, t.METRIC, t.parse_budget('1.4 J', t.METRIC), "
        "context={'device': 'fake'})\n"
        "run_search(cfg, t.SPARSE_SPACE, ev)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert count_states(load(killed)) == (5, 1)
    resumed = run_search(killed, SPARSE_SPACE, seeded_evaluator)
    straight = run_search(config(tmp_path / "u", 8, name="s"), SPARSE_SPACE, seeded_evaluator)
    a, b = _by_slot(resumed), _by_slot(straight)
    assert sorted(a) == list(range(8)) and a == b  # same parameters, seeds and accuracies, slot by slot
    retry = [t for t in resumed.trials if t.user_attrs.get("retry_of") is not None]
    assert len(retry) == 1 and retry[0].user_attrs["slot"] == 5 and retry[0].user_attrs["seed"] == 5


def test_two_trials_stopped_together_keep_their_two_slots_when_retried(tmp_path):
    """Two workers killed mid-trial leave trials 5 and 6 running; the resumed search retries them as trials 7 and 8.
    The retry of 6 took slot 5 (its seed too): slot 5 was counted as vacated by trial 5, whose retry comes after
    6. Shown by Ctrl-C of an --n-jobs 2 search (two COMPLETE trials in slot 5, trial 6 retrained with seed 16)."""
    for d in ("k", "u"):
        (tmp_path / d).mkdir()
    straight = run_search(config(tmp_path / "u", 9, name="s"), SPARSE_SPACE, seeded_evaluator)
    killed = config(tmp_path / "k", 9, name="s")
    run_search(config(tmp_path / "k", 5, name="s"), SPARSE_SPACE, seeded_evaluator)
    study = open_study(killed, SPARSE_SPACE)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for _ in range(2):  # what the two killed workers had: a trial with its parameters, RUNNING
        trial = study.ask()
        SPARSE_SPACE.suggest(trial)
        trial.set_user_attr("worker", worker_tag().rsplit(":", 1)[0] + ":" + dead.stdout.strip())
    resumed = run_search(killed, SPARSE_SPACE, seeded_evaluator)
    retries = {t.user_attrs["retry_of"]: t.user_attrs["slot"] for t in resumed.trials
               if t.user_attrs.get("retry_of") is not None}
    assert retries == {5: 5, 6: 6}
    assert _by_slot(resumed) == _by_slot(straight) and sorted(_by_slot(resumed)) == list(range(9))


class _StopAt:
    """A search space whose ``at``-th sampling is stopped by Ctrl-C (before the trial has parameters)."""

    def __init__(self, space, at):
        self.space, self.at, self.calls = space, at, 0

    def __getattr__(self, name):
        return getattr(self.space, name)

    def suggest(self, trial):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.space.suggest(trial)


@pytest.mark.parametrize("where", ["Optuna's ask", "sampling", "duplicate check"])
def test_ctrl_c_anywhere_in_a_trial_resumes_to_the_uninterrupted_search(where, tmp_path, monkeypatch):
    """Ctrl-C while a trial samples or checks for a repeat (not only while it trains): the stopped trial is
    INTERRUPTED in trials.csv, its retry takes its slot, and the resumed search makes the same trials, repeats
    and screenings as one never stopped (it used to keep a FAIL and shift every later sample by one)."""
    import search.study as study_module
    from search.export import trials_frame

    def run(cfg, space):
        return run_search(cfg, space, seeded_evaluator, predict=fake_predict, reference={"method": "dense"})

    (tmp_path / "k").mkdir()
    (tmp_path / "u").mkdir()
    stopped = config(tmp_path / "k", 10, name="s")
    if where == "sampling":
        space = _StopAt(SPACE, 5)
    elif where == "Optuna's ask":  # before the objective runs: the trial stays RUNNING, tagged by the sampler
        space, calls, hook = SPACE, [], optuna.samplers.TPESampler.before_trial

        def stop_fifth_ask(self, study, trial):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return hook(self, study, trial)

        monkeypatch.setattr(optuna.samplers.TPESampler, "before_trial", stop_fifth_ask)
    else:
        space, calls, check = SPACE, [], study_module.duplicate_of

        def stop_fifth(*args, **kw):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return check(*args, **kw)

        monkeypatch.setattr(study_module, "duplicate_of", stop_fifth)
    with pytest.raises(KeyboardInterrupt):
        run(stopped, space)
    monkeypatch.undo()
    assert count_states(load(stopped))[1] == 0  # nothing left RUNNING: the stopped trial is queued again
    resumed = run(stopped, SPACE)
    straight = run(config(tmp_path / "u", 10, name="s"), SPACE)
    assert _by_slot(resumed) == _by_slot(straight) and len(_by_slot(straight)) == 10
    a, b = trials_frame(resumed), trials_frame(straight)
    stopped_rows = a["state"] == "INTERRUPTED"
    assert stopped_rows.sum() == 1
    kept = a[~stopped_rows]
    assert kept["state"].value_counts().to_dict() == b["state"].value_counts().to_dict()
    assert sorted(kept["slot"].dropna()) == sorted(b["slot"].dropna())


# --- screening, the reference run, duplicates ----------------------------------------------------------------

def fake_predict(params):
    """An interval around the fake cost (exact for dense and random, as the graph pipeline's is)."""
    from search import CostInterval

    c = fake_cost(params)
    return CostInterval(c, c, exact=True) if params["method"] != "gebt" else CostInterval(0.9 * c, 1.05 * c)


def test_screening_skips_only_configurations_that_cannot_fit(tmp_path):
    calls = []

    def ev(p, s):
        calls.append(p)
        return fake_evaluator(p, s)

    cfg = config(tmp_path, 10)
    study = run_search(cfg, SPACE, ev, predict=fake_predict, reference={"method": "dense"})
    trials = study.trials
    trained = [t for t in trials if t.state.name == "COMPLETE"]
    screened = [t for t in trials if t.user_attrs.get("screened")]
    assert len(trained) == 10 == len(calls) and screened  # --trials counts trained trials only
    assert trials[0].user_attrs["reference"] is True and trials[0].params == {"method": "dense"}
    assert trials[0].state.name == "COMPLETE" and fake_cost(trials[0].user_attrs["params"]) == 2.0  # over 1.4 J
    for t in screened:
        assert t.state.name == "PRUNED" and "val_accuracy" not in t.user_attrs
        assert t.user_attrs["predicted_cost_low"] > 1.4 and t.constraints["budget"] > 0
        assert fake_cost(t.user_attrs["params"]) > 1.4  # never a configuration that would have fitted
    for t in trained[1:]:
        low, high = t.user_attrs["predicted_cost_low"], t.user_attrs["predicted_cost_high"]
        assert low <= t.user_attrs["cost"] <= high and low <= 1.4
    s = summary(study)
    assert s["n_trials"] == 10 and s["n_screened"] == len(screened) and s["reference"]["number"] == 0
    assert "ruled out by the cost model" in s["answer"] and "dense reference" in s["answer"]
    unscreened = run_search(config(tmp_path, 10, name="off", screen=False), SPACE, fake_evaluator,
                            predict=fake_predict)
    assert not any(t.user_attrs.get("screened") for t in unscreened.trials)
    assert any(not t.user_attrs["feasible"] for t in unscreened.trials if t.state.name == "COMPLETE")


def test_no_configuration_is_trained_twice_unless_repeats_allow(tmp_path):
    space = SearchSpace((Param("method", choices=("dense", "random")),
                         Param("graph_sparsity", choices=(0.0, 0.5), applies_to=frozenset({"random"}), default=0.0),
                         Param("weight_sparsity", choices=(0.0,), default=0.0)))
    study = run_search(config(tmp_path, 3, budget=None, name="once"), space, fake_evaluator)
    keys = [json.dumps(t.user_attrs["params"], sort_keys=True) for t in study.trials if t.state.name == "COMPLETE"]
    assert len(keys) == 3 == len(set(keys))  # all three configurations, each once
    dups = [t for t in study.trials if t.user_attrs.get("duplicate_of") is not None]
    assert all(t.state.name == "FAIL" for t in dups)
    twice = run_search(config(tmp_path, 6, budget=None, name="twice", repeats=2), space, fake_evaluator)
    done = [t for t in twice.trials if t.state.name == "COMPLETE"]
    keys = [json.dumps(t.user_attrs["params"], sort_keys=True) for t in done]
    assert len(done) == 6 and all(keys.count(k) == 2 for k in keys)
    assert len({t.user_attrs["seed"] for t in done}) == 6  # each repeat with its own seed


def test_spent_space_stops_instead_of_looping(tmp_path):
    space = SearchSpace((Param("method", choices=("dense",)), Param("graph_sparsity", choices=(0.0,)),
                         Param("weight_sparsity", choices=(0.0,))))
    study = run_search(config(tmp_path, 3, budget=None), space, fake_evaluator)
    assert count_states(study)[0] == 1 and "spent" in study.user_attrs["stopped"]
    assert "Stopped early" in summary(study)["answer"]


def test_runs_stopped_over_budget_are_screened_not_trained(tmp_path):
    """An evaluator that stops a run part-way (``OverBudget``): recorded like a screened trial with its
    epochs and time, never counted in --trials, never trained again, and said apart in the summary."""
    from search import CostInterval, OverBudget

    def ev(p, s):
        if p["method"] == "gebt" and fake_cost(p) > 1.4:
            raise OverBudget(CostInterval(fake_cost(p), 2.0), 4, "no ticket after 4 search epochs")
        return fake_evaluator(p, s)

    study = run_search(config(tmp_path, 8), SPACE, ev, reference={"method": "dense"})
    stopped = [t for t in study.trials if t.user_attrs.get("stopped_after_epochs") is not None]
    assert stopped and count_states(study)[0] == 8
    for t in stopped:
        ua = t.user_attrs
        assert t.state.name == "PRUNED" and ua["screened"] and not ua["feasible"] and "val_accuracy" not in ua
        assert ua["stopped_after_epochs"] == 4 and ua["wall_s"] >= 0 and t.constraints["budget"] > 0
        assert ua["predicted_cost_low"] == fake_cost(ua["params"]) > 1.4
    keys = [json.dumps(t.user_attrs["params"], sort_keys=True) for t in stopped]
    assert len(keys) == len(set(keys))  # a stopped configuration is not run again
    s = summary(study)
    assert s["n_stopped"] == len(stopped) <= s["n_screened"] and s["n_trials"] == 8
    assert f"{len(stopped)} stopped in the ticket search" in s["answer"]
    df = trials_frame(study)
    assert df["stopped_after_epochs"].notna().sum() == len(stopped)


def test_the_reference_is_a_known_configuration_from_the_moment_it_is_queued():
    """Two workers starting together: the second may sample the reference's parameters before the first
    has begun the reference trial; the queued reference already carries them, so the sample is a repeat."""
    from search.screening import duplicate_of
    from search.study import enqueue_reference

    study = optuna.create_study()
    assert enqueue_reference(study, SPACE, {"method": "dense"})
    ref = study.ask()  # the first worker takes the queued reference: RUNNING, parameters not yet suggested
    other = study.ask()
    sampled = SPACE.suggest(optuna.trial.FixedTrial({"method": "dense"}))  # what the second worker samples
    assert ref.user_attrs["reference"] and duplicate_of(study.get_trials(deepcopy=False), other.number, sampled, 1) == 0




def test_a_read_only_open_of_a_finished_sqlite_study_leaves_no_file_beside_it(tmp_path):
    """``codesign pareto`` opens a finished run's WAL-mode study.db: SQLite would create study.db-shm and an
    empty study.db-wal beside it; with no writer (no -wal file) it is read as immutable and nothing appears.
    While a writer holds the file (its -wal exists) the read is an ordinary read-only one."""
    url = embedded_url(tmp_path)
    storage = open_storage(url)
    optuna.create_study(study_name="s", storage=storage).enqueue_trial({"x": 1})
    storage.engine.dispose()  # the search process ended: SQLite checkpoints and removes its -wal and -shm
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.db"]
    reader = open_storage(url, read_only=True)
    assert len(optuna.load_study(study_name="s", storage=reader).trials) == 1
    reader.engine.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.db"]
    writer = open_storage(url)
    optuna.load_study(study_name="s", storage=writer).enqueue_trial({"x": 2})  # a search running beside it
    reader = open_storage(url, read_only=True)
    assert len(optuna.load_study(study_name="s", storage=reader).trials) == 2
    reader.engine.dispose()
    writer.engine.dispose()


def test_a_finished_search_leaves_study_db_whole_with_no_log_beside_it(tmp_path):
    """A search process that ends closes its SQLite connections: the write-ahead log is checkpointed into
    study.db and removed, so study.db copied alone holds every trial (a finished main job left a 4 MB
    study.db-wal beside it, whose trials a copy of study.db lacked)."""
    import shutil

    run = tmp_path / "run"
    tiny = "sbm:n=300,avg_degree=6,features=8,classes=3,seed=1"
    cmd = [sys.executable, "-m", "codesign", "search", "--dataset", tiny, "--epochs", "3", "--trials", "3",
           "--metric", "train-flops", "--confirm-seeds", "0", "--study", "s", "--out", str(run)]
    subprocess.run(cmd, timeout=300, check=True, capture_output=True, cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("study.db")) == ["study.db"]
    (tmp_path / "copy").mkdir()
    shutil.copy(run / "study.db", tmp_path / "copy" / "study.db")
    copied = optuna.load_study(study_name="s", storage=open_storage(embedded_url(tmp_path / "copy")))
    assert sum(t.state.name == "COMPLETE" for t in copied.trials) == 3
