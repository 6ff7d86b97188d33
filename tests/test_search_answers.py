"""Answers a user can act on (issue 19): confirmation over seeds, budgets as constraints, dense that
fits trained early, repeats told apart from failures, the chosen device and chip in words.

Fake evaluators stand in for training, so every number is checkable by hand.
"""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
from test_hardware_search import _inputs
from test_search_study import SPACE, config, fake_evaluator, load

from codesign.cli import main
from codesign.cli.search import format_summary
from codesign.pipelines.graph_search import GraphEvaluator, dense_that_fits, graph_space
from search import CostInterval, Evaluation, EvaluationError, run_search
from search.confirm import SEED_OFFSET, assign, decide, run_confirmation, stored_runs
from search.export import summary, trials_frame

# --- confirmation -------------------------------------------------------------------------------------------

def _lucky(params, seed):
    """random@0.1 is lucky on its trial seed (0.90) and 0.70 on every other seed; dense is 0.80 everywhere."""
    if params["method"] == "random" and seed < SEED_OFFSET:
        return Evaluation(val_accuracy=0.90, test_accuracy=0.90, cost=1.0)
    acc = {"dense": 0.80, "random": 0.70, "gebt": 0.75}[params["method"]]
    cost = {"dense": 1.3, "random": 1.0, "gebt": 1.1}[params["method"]]
    jitter = 0.01 * ((seed % 3) - 1)  # -0.01, 0, +0.01 over the confirmation seeds
    return Evaluation(val_accuracy=acc + jitter, test_accuracy=acc + jitter - 0.01, cost=cost)


def _seeded(study, params_list):
    for p in params_list:
        study.enqueue_trial(p)


def test_confirmation_answers_on_the_mean_and_resumes_without_redoing(tmp_path):
    cfg = config(tmp_path, 3, budget="1.4 J")
    calls = []

    def ev(p, s):
        calls.append((p["method"], s))
        return _lucky(p, s)

    study = optuna.create_study(storage=cfg.storage, study_name=cfg.study_name, directions=["maximize", "minimize"])
    _seeded(study, [{"method": "random", "graph_sparsity": 0.1, "weight_sparsity": 0.1},
                    {"method": "dense"}, {"method": "gebt", "graph_sparsity": 0.2, "weight_sparsity": 0.2}])
    study = run_search(cfg, SPACE, ev)
    assert summary(study)["best"]["params"]["method"] == "random"  # one seed: the lucky one
    assert run_confirmation(study, cfg, ev, 3) == 9  # 3 candidates (one is the dense that fits) x 3 seeds
    conf = decide(study)
    s = summary(study)
    assert s["best"]["params"]["method"] == "dense" and conf["n_seeds"] == 3
    dense = next(c for c in conf["candidates"] if c["params"]["method"] == "dense")
    assert dense["val_mean"] == pytest.approx(0.80) and dense["val_sd"] == pytest.approx(0.01)
    assert dense["test_mean"] == pytest.approx(0.79)
    assert s["best"]["confirmed"]["seeds"] == 3 and s["best_single_run"]["params"]["method"] == "random"
    assert "Confirmed on 3 further seeds" in s["answer"] and "did not hold up" in s["answer"]
    n = len(calls)
    assert run_confirmation(load(cfg), cfg, ev, 3) == 0 and len(calls) == n  # resumed: nothing redone
    assert all(seed >= SEED_OFFSET for _, seed in calls[3:])


def test_confirmation_runs_split_longest_first_to_the_least_loaded_worker():
    # loads (A, B) after each run, ties to A: 0->A (3, 0), 1->B (3, 3), 2->A (6, 3), 3->B (6, 5), 4->B (6, 7),
    # 5->A (8, 7), 6->B (8, 8), 7->A (9, 8), 8->B (9, 9); every other run (A: 0, 2, 4, 6, 8) would load 10 vs 8
    walls = [3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    a, b = assign(walls, 2)
    assert (a, b) == ([0, 2, 5, 7], [1, 3, 4, 6, 8])
    assert sum(walls[i] for i in a) == sum(walls[i] for i in b) == 9.0
    assert assign(walls, 1) == [[0, 1, 2, 3, 4, 5, 6, 7, 8]] and assign([], 3) == [[], [], []]


def test_worker_processes_make_the_confirmation_runs_the_serial_search_makes(tmp_path):
    results = {}
    for n_jobs in (1, 2):
        (tmp_path / str(n_jobs)).mkdir()
        cfg = config(tmp_path / str(n_jobs), 3, name="s", n_jobs=n_jobs)
        study = optuna.create_study(storage=cfg.storage, study_name=cfg.study_name,
                                    directions=["maximize", "minimize"])
        _seeded(study, [{"method": "random", "graph_sparsity": 0.1, "weight_sparsity": 0.1},
                        {"method": "dense"}, {"method": "gebt", "graph_sparsity": 0.2, "weight_sparsity": 0.2}])
        shown: list[tuple[int, int]] = []
        study = run_search(cfg, SPACE, _lucky, confirm_seeds=3, on_confirm=lambda *runs, to=shown: to.append(runs))
        left = run_confirmation(load(cfg), cfg, _lucky, 3)  # what the search process makes afterwards
        results[n_jobs] = (left, {k: (r.val_accuracy, r.cost) for k, r in stored_runs(load(cfg)).items()}, shown)
    assert results[2][0] == 0 and results[1][0] == 9  # the two workers made all 9; one process makes them after
    assert results[2][1] == results[1][1] and len(results[1][1]) == 9
    # the search process tells the workers' progress as they store their runs (one process: the caller's)
    assert results[2][2][-1] == (9, 9) and results[2][2] == sorted(set(results[2][2])) and not results[1][2]


def test_confirmation_ties_within_one_standard_error_pick_the_cheaper(tmp_path):
    cfg = config(tmp_path, 2, budget="1.4 J")

    def ev(p, s):  # gebt 0.800 +- noise vs dense 0.801 +- noise: a tie; gebt is cheaper (1.1 J vs 1.3 J)
        base = 0.800 if p["method"] == "gebt" else 0.801
        noise = [0.0, 0.02, -0.02][s % 3] if p["method"] == "gebt" else 0.0
        return Evaluation(val_accuracy=base + noise, test_accuracy=base, cost=1.1 if p["method"] == "gebt" else 1.3)

    study = optuna.create_study(storage=cfg.storage, study_name=cfg.study_name, directions=["maximize", "minimize"])
    _seeded(study, [{"method": "dense"}, {"method": "gebt", "graph_sparsity": 0.2, "weight_sparsity": 0.2}])
    study = run_search(cfg, SPACE, ev)
    run_confirmation(study, cfg, ev, 3)
    conf = decide(study)
    chosen = next(c for c in conf["candidates"] if c["number"] == conf["chosen"])
    assert chosen["params"]["method"] == "gebt" and len(conf["tied_with"]) == 1
    assert "ties with" in summary(study)["answer"]


def test_a_candidate_over_budget_on_a_confirmation_seed_is_not_the_answer(tmp_path):
    cfg = config(tmp_path, 2, budget="1.4 J")

    def ev(p, s):  # gebt is the most accurate but its cost passes the budget on other seeds
        if p["method"] == "gebt":
            return Evaluation(val_accuracy=0.9, test_accuracy=0.9, cost=1.0 if s < SEED_OFFSET else 1.5)
        return Evaluation(val_accuracy=0.8, test_accuracy=0.8, cost=1.3)

    study = optuna.create_study(storage=cfg.storage, study_name=cfg.study_name, directions=["maximize", "minimize"])
    _seeded(study, [{"method": "dense"}, {"method": "gebt", "graph_sparsity": 0.2, "weight_sparsity": 0.2}])
    study = run_search(cfg, SPACE, ev)
    run_confirmation(study, cfg, ev, 2)
    s = summary(study)
    assert s["best"]["params"]["method"] == "dense"
    gebt = next(c for c in s["confirmation"]["candidates"] if c["params"]["method"] == "gebt")
    assert gebt["fits_every_seed"] is False and gebt["misses"] == ["over the cost budget"]


def test_confirm_seeds_zero_says_one_seed(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(GraphEvaluator, "__call__", lambda self, p, s: calls.append(s) or fake_evaluator(
        {"graph_sparsity": 0.0, "weight_sparsity": 0.0, **{k: v for k, v in p.items() if v is not None}}, s))
    out = tmp_path / "run"
    assert main(["search", "--budget", "30000 mJ", "--trials", "2", "--out", str(out), "--space",
                 "method=dense; train_epochs=20:200", "--epochs", "3", "--confirm-seeds", "0"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["confirmation"] is None and "Not confirmed: one seed" in s["answer"] and len(calls) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:  # argparse's range check (codesign.cli.common.BOUNDS)
        main(["search", "--trials", "1", "--out", str(tmp_path / "r2"), "--confirm-seeds", "-1"])
    assert refused.value.code == 2 and "--confirm-seeds -1: out of range, must be in [0, 50]" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


# --- budgets, early dense, states ---------------------------------------------------------------------------

def test_dense_that_fits_is_the_longest_dense_run_under_the_budget():
    def predict(p):  # 0.1 J per epoch, exact for dense
        e = p["train_epochs"]
        return CostInterval(0.1 * e, 0.1 * e, exact=True)

    assert dense_that_fits(graph_space(), predict, 8.0) == {"method": "dense", "train_epochs": 80}
    assert dense_that_fits(graph_space(), predict, 1.0) is None  # not even 20 epochs fit
    assert dense_that_fits(graph_space(), predict, None) is None
    assert dense_that_fits(graph_space().narrow("method=gebt"), predict, 8.0) is None


@pytest.fixture
def fake_graph(monkeypatch):
    calls = []

    def call(self, params, seed):
        calls.append(dict(params))
        gs, ws = float(params.get("graph_sparsity") or 0), float(params.get("weight_sparsity") or 0)
        acc = 0.8 - 0.2 * gs**2 - 0.1 * ws**2
        return Evaluation(val_accuracy=acc, cost=1.0, test_accuracy=acc - 0.01, attrs={"cost_inputs": _inputs(gs, ws)})

    monkeypatch.setattr(GraphEvaluator, "__call__", call)
    return calls


def test_dense_that_fits_is_trained_right_after_the_reference(tmp_path, fake_graph, capsys):
    out = tmp_path / "run"  # h100, Cora GCN: dense 100 epochs is 8.69 J (over 8 J); 90 epochs is 7.82 J
    assert main(["search", "--budget", "8J", "--trials", "3", "--out", str(out), "--confirm-seeds", "0"]) == 0
    assert fake_graph[0] == {"method": "dense", "graph_sparsity": 0.0, "weight_sparsity": 0.0, "threshold": None,
                             "train_epochs": 100}
    assert fake_graph[1]["method"] == "dense" and fake_graph[1]["train_epochs"] == 90
    trials = pd.read_csv(out / "trials.csv")
    assert bool(trials.loc[trials["number"] == 1, "early"].item())


def test_area_and_power_budgets_decide_feasibility(tmp_path, fake_graph, capsys):
    out = tmp_path / "run"
    assert main(["search", "--metric", "infer-latency", "--device", "gcn-accelerator", "--hardware-space",
                 "pes=256:8192; buffer_mb=0.5:32", "--area-budget", "0.01mm2", "--budget", "1s", "--trials", "2",
                 "--out", str(out), "--space", "method=gebt"]) == 0
    s = json.loads((out / "summary.json").read_text())
    trials = pd.read_csv(out / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]
    assert (done["area_mm2"] > 0.01).all() and not done["feasible"].astype(bool).any()  # cost fits, chip does not
    assert s["best"] is None and s["budgets_unmet"] == ["area"]
    assert "No trained configuration fits the 0.01 mm2 area budget" in s["answer"]
    assert "--area-budget" in s["answer"]
    out2 = tmp_path / "run2"
    assert main(["search", "--metric", "infer-latency", "--device", "gcn-accelerator", "--power-budget", "1mW",
                 "--trials", "2", "--out", str(out2), "--space", "method=gebt"]) == 0
    s2 = json.loads((out2 / "summary.json").read_text())
    assert s2["best"] is None and s2["budgets_unmet"] == ["power"] and "the 0.001 W power budget" in s2["answer"]


def test_the_winning_device_and_chip_are_named_in_words(tmp_path, fake_graph, capsys):
    out = tmp_path / "run"
    assert main(["search", "--metric", "infer-energy", "--device", "gcn-accelerator", "--device", "v100",
                 "--trials", "2", "--out", str(out), "--space", "method=gebt", "--confirm-seeds", "1"]) == 0
    text = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert "Run it on gcn-accelerator" in s["answer"]
    assert "profile: gcn-accelerator (datasheet" in text and "; v100 (datasheet" in text
    out = tmp_path / "hw"
    assert main(["search", "--metric", "infer-latency", "--device", "gcn-accelerator", "--hardware-space",
                 "pes=256:8192; buffer_mb=0.5:32", "--area-budget", "8mm2", "--trials", "2", "--out", str(out),
                 "--space", "method=gebt", "--confirm-seeds", "0"]) == 0
    s = json.loads((out / "summary.json").read_text())
    hw = s["best"]["hardware"]
    assert f"Run it on gcn-accelerator with pes {hw['pes']}" in s["answer"]
    assert f"{hw['area_mm2']:.3g} mm2" in s["answer"] and f"{hw['power_w']:.3g} W" in s["answer"]


def test_repeats_are_not_failures_and_failures_keep_their_reason(tmp_path):
    cfg = config(tmp_path, 3, budget=None)

    def ev(p, s):
        if p["method"] == "gebt":
            raise EvaluationError("gebt cannot reach that sparsity")
        return fake_evaluator(p, s)

    study = optuna.create_study(storage=cfg.storage, study_name=cfg.study_name, directions=["maximize", "minimize"])
    _seeded(study, [{"method": "dense"}, {"method": "dense"},
                    {"method": "gebt", "graph_sparsity": 0.2, "weight_sparsity": 0.2}])
    study = run_search(cfg, SPACE, ev)
    df = trials_frame(study)
    by_number = df.set_index("number")
    assert by_number.loc[1, "state"] == "REPEAT" and by_number.loc[1, "duplicate_of"] == 0
    assert by_number.loc[2, "state"] == "FAIL" and "gebt cannot reach" in by_number.loc[2, "fail_reason"]
    assert (df["state"] == "FAIL").sum() == 1
    s = summary(study, df)  # the failure is counted and said (the text named only trained/screened/repeated)
    assert s["n_failed"] == 1 and "; 1 failed (fail_reason in trials.csv)." in s["answer"]
    assert "1 failed (fail_reason in trials.csv)" in format_summary(s, tmp_path).splitlines()[0]


# --- codesign pareto ----------------------------------------------------------------------------------------

def _stored_run(tmp_path, folder, study_name, metric="train-energy", budget="1.4 J"):
    from search import SearchConfig, parse_budget, parse_metric
    from search.storage import embedded_url

    m = parse_metric(metric)
    run = tmp_path / folder
    run.mkdir()
    cfg = SearchConfig(study_name, embedded_url(run), 3, m, parse_budget(budget, m), context={"device": "fake"})
    run_search(cfg, SPACE, fake_evaluator)
    return run


def test_pareto_refuses_runs_with_different_metrics(tmp_path, capsys):
    a = _stored_run(tmp_path, "energy", "s")
    b = _stored_run(tmp_path, "flops", "s2", metric="infer-flops", budget="2 FLOP")
    out = tmp_path / "both"
    assert main(["pareto", str(a), str(b), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "energy: train-energy [J]" in err and "flops: infer-flops [FLOP]" in err and "\n" not in err
    assert not out.exists()


def test_pareto_labels_runs_with_one_study_name_by_folder_in_the_text(tmp_path, capsys):
    a, b = _stored_run(tmp_path, "first", "same"), _stored_run(tmp_path, "second", "same")
    assert main(["pareto", str(a), str(b), "--out", str(tmp_path / "both")]) == 0
    text = capsys.readouterr().out
    assert "run first (study same)" in text and "run second (study same)" in text


def test_seed_counts_read_as_words():
    from search.confirm import seeds_text

    assert seeds_text(1) == "1 further seed" and seeds_text(3) == "3 further seeds"
    assert seeds_text(1, further=False) == "1 seed" and seeds_text(5, further=False) == "5 seeds"


# --- dense that fits in hardware searches, --epochs caps train_epochs, the reference beside the mean --------

def test_hardware_and_multi_device_searches_train_the_dense_that_fits_early(tmp_path, fake_graph, capsys):
    from codesign.pipelines.hardware_pricing import HardwareEvaluator, HardwareOptions
    from search import parse_metric
    from search.hardware import parse_hardware_space

    m = parse_metric("train-energy")
    space_text = "pes=256:8192; buffer_mb=0.5:32"
    opts = HardwareOptions(("gcn-accelerator",), parse_hardware_space(space_text), 8.0)
    hw = HardwareEvaluator(GraphEvaluator("gcn", "cora", m, "gcn-accelerator"), opts, m)

    def dense(e):
        return {"method": "dense", "graph_sparsity": 0.0, "weight_sparsity": 0.0, "threshold": None, "train_epochs": e}

    one = hw.predict(dense(20)).high / 20  # a dense epoch at the best chip: every epoch costs the same
    assert hw.predict(dense(40)).exact and hw.predict(dense(40)).high == pytest.approx(40 * one, rel=1e-9)
    assert hw.predict({**dense(40), "method": "gebt", "threshold": 0.1}) is None  # a detector: not exact
    budget = 45.5 * one  # dense 40 fits, dense 50 does not
    out = tmp_path / "hw"
    assert main(["search", "--metric", "train-energy", "--device", "gcn-accelerator", "--hardware-space", space_text,
                 "--area-budget", "8mm2", "--budget", f"{budget:.9g} J", "--trials", "2", "--out", str(out),
                 "--confirm-seeds", "0"]) == 0
    assert fake_graph[1] == dense(40)
    trials = pd.read_csv(out / "trials.csv")
    assert bool(trials.loc[trials["number"] == 1, "early"].item())
    fake_graph.clear()
    out = tmp_path / "two"  # two devices: the dense at its best device
    assert main(["search", "--metric", "train-energy", "--device", "gcn-accelerator", "--device", "v100",
                 "--budget", "0.03 J", "--trials", "2", "--out", str(out), "--confirm-seeds", "0"]) == 0
    assert fake_graph[1]["method"] == "dense" and fake_graph[1]["train_epochs"] == 70  # 0.427 mJ per epoch
    fake_graph.clear()
    out = tmp_path / "tiny"  # no chip meets 0.01 mm2: no dense fits, none trained early
    assert main(["search", "--metric", "train-energy", "--device", "gcn-accelerator", "--hardware-space", space_text,
                 "--area-budget", "0.01mm2", "--budget", "1 J", "--trials", "2", "--out", str(out),
                 "--confirm-seeds", "0"]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert "early" not in trials or not trials["early"].fillna(False).astype(bool).any()


def test_epochs_given_caps_the_searched_train_epochs_unless_space_sets_them(tmp_path, fake_graph, capsys):
    from codesign.pipelines.graph_search import cap_train_epochs

    def rng(space):
        p = space.get("train_epochs")
        return p.low, p.high, p.step

    assert rng(graph_space()) == (20, 200, 10)
    assert rng(cap_train_epochs(graph_space(), 30)) == (20, 30, 10)
    assert rng(cap_train_epochs(graph_space(), 35)) == (20, 30, 10)  # on the range's step
    assert rng(cap_train_epochs(graph_space(), 10)) == (10, 10, None)  # below the range: exactly --epochs
    assert rng(cap_train_epochs(graph_space(), 500)) == (20, 200, 10)
    out = tmp_path / "capped"
    assert main(["search", "--trials", "6", "--epochs", "30", "--out", str(out), "--confirm-seeds", "0",
                 "--space", "method=dense,random"]) == 0
    assert max(int(p["train_epochs"]) for p in fake_graph) == 30 and len(fake_graph) >= 6
    fake_graph.clear()
    out = tmp_path / "asked"
    assert main(["search", "--trials", "3", "--epochs", "30", "--out", str(out), "--confirm-seeds", "0",
                 "--space", "method=dense; train_epochs=150"]) == 0
    assert {int(p["train_epochs"]) for p in fake_graph} == {150}  # as asked, the reference too (the space fixes it)


def _words(confirmation, ref_test=0.820):
    from search.export import answer

    best = {"number": 1, "params": {"method": "dense", "train_epochs": 90}, "accuracy": 0.79, "test_accuracy": 0.80,
            "cost": 7.0}
    ref = {"number": 0, "params": {"method": "dense", "train_epochs": 100}, "accuracy": 0.80,
           "test_accuracy": ref_test, "cost": 10.0}
    return answer({"cost_unit": "J", "budget": {"text": "8J", "value": 8.0}, "best": best, "reference": ref,
                   "confirmation": confirmation, "n_trials": 30, "n_feasible": 29, "n_screened": 149,
                   "screening_saved_train_s": 1697.0, "n_duplicates": 1, "cost_source": "estimated"})


def _row(number, test_mean, test_sd=0.01):
    return {"number": number, "params": {"method": "dense"}, "role": "dense", "seeds": 3, "fits_every_seed": True,
            "val_mean": 0.79, "val_sd": 0.01, "test_mean": test_mean, "test_sd": test_sd, "cost_mean": 7.0,
            "train_wall_s": 1.0, "misses": []}


def test_the_reference_sentence_uses_the_confirmed_means():
    one_seed = _words(None)
    assert "The dense reference (trial #0) reaches test 0.820 at 10 J: the choice is 2.0 points below it at 30% less" \
        in one_seed
    conf = {"seeds": [1, 2, 3], "n_seeds": 3, "candidates": [_row(1, 0.809)], "chosen": 1, "tied_with": [],
            "dense": 1, "train_wall_s": 3.0}
    words = _words(conf)  # the reference was not retrained: its one run beside the answer's mean, said so
    assert ("The dense reference (trial #0, one seed, not retrained) reaches test 0.820 at 10 J: the choice's "
            "confirmed mean is 1.1 points below that one run, at 30% less cost.") in words
    conf = {**conf, "candidates": [_row(1, 0.809), _row(0, 0.800, 0.02)]}
    words = _words(conf)  # the reference was a candidate: both means, on the same seeds
    assert ("The dense reference (trial #0) reaches test 0.800 +- 0.020 on the same seeds at 10 J: the choice's "
            "mean is 0.9 points above it at 30% less cost.") in words


def test_the_words_quote_no_screening_saving_and_count_repeats_in_the_singular():
    words = _words(None)
    assert "saving" not in words and "149 ruled out by the cost model as over budget before training" in words
    assert "; 1 repeated sample not trained again." in words


def test_the_plot_draws_the_other_candidates_bars_and_names_the_tie():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from search.plots import _draw_other_candidates

    done = pd.DataFrame({"number": [0, 1, 2], "cost": [10.0, 7.0, 8.0], "val_accuracy": [0.8, 0.79, 0.78],
                         "state": ["COMPLETE"] * 3})
    summ = {"confirmation": {"chosen": 1, "tied_with": [2], "candidates": [
        {**_row(1, 0.80), "val_mean": 0.79, "val_sd": 0.01}, {**_row(2, 0.81), "val_mean": 0.785, "val_sd": 0.02},
        {**_row(0, 0.80), "val_mean": 0.70, "val_sd": None}]}}
    fig, ax = plt.subplots()
    _draw_other_candidates(ax, summ, done, 1.0, legend=True)
    assert [t.get_text() for t in ax.texts] == ["#2 ties"]  # #0 is drawn, not tied; the chosen #1 is not redrawn
    assert len(ax.containers) == 2
    plt.close(fig)


def test_the_reference_label_is_placed_where_it_covers_no_marker_and_stays_in_the_axes():
    """The label goes where its drawn text box covers no trial, bar or line: here the trials fill the axes
    left of the point (the default side is above-left), a bar stands above it, the budget line far right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from search.plots import LABEL_OFFSETS, _marks, _text_box, place_labels

    fig, ax = plt.subplots(figsize=(6, 4))
    xs, ys = np.meshgrid(np.linspace(0.0, 6.0, 13), np.linspace(0.3, 0.8, 12))
    ax.scatter(xs.ravel(), ys.ravel(), s=36)
    ax.errorbar([6.4], [0.7], yerr=[0.03], fmt="_")
    ax.axvline(9.8)
    ax.set_xlim(0, 10)
    ax.set_ylim(0.25, 0.85)
    label = ax.annotate("dense reference\nacc 0.794", (6.3, 0.55), xytext=LABEL_OFFSETS[0][:2],
                        textcoords="offset points", ha=LABEL_OFFSETS[0][2], fontsize=8)
    ax._codesign_labels = [label]
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    marks, box = _marks(ax), _text_box(label, renderer)
    assert ((marks[:, 0] >= box.x0) & (marks[:, 0] <= box.x1) & (marks[:, 1] >= box.y0)
            & (marks[:, 1] <= box.y1)).any()  # the default place covers trials
    place_labels(fig)
    box, frame = _text_box(label, renderer), ax.get_window_extent(renderer)
    covered = (marks[:, 0] >= box.x0) & (marks[:, 0] <= box.x1) & (marks[:, 1] >= box.y0) & (marks[:, 1] <= box.y1)
    assert not covered.any() and label.xyann != LABEL_OFFSETS[0][:2]
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    plt.close(fig)


def test_one_trained_configuration_is_said_in_the_singular():
    from search.export import answer

    best = {"number": 0, "params": {"method": "dense"}, "accuracy": 0.79, "test_accuracy": 0.80, "cost": 7.0}
    words = answer({"cost_unit": "J", "budget": {"text": "8J", "value": 8.0}, "best": best, "reference": best,
                    "confirmation": None, "n_trials": 1, "n_feasible": 1, "n_screened": 0})
    assert "1 configuration trained (1 within budget)." in words
    assert "30 configurations trained" in _words(None)


def test_one_confirmation_seed_claims_no_spread():
    from search.export import _confirm_words

    c = {"number": 3, "val_mean": 0.8, "val_sd": None, "test_mean": 0.81, "test_sd": None, "params": {}}
    words = _confirm_words({"confirmation": {"n_seeds": 1, "candidates": [c], "chosen": 3, "train_wall_s": 2.0}})
    assert "reaches validation 0.800, test 0.810 (one seed: no spread)" in words and "+-" not in words


def test_an_empty_study_without_a_budget_names_no_budget(tmp_path):
    """It said "No trained configuration fits the budget; no trial completed." for a study with no budget."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'e.db'}", study_name="e",
                                directions=["maximize", "minimize"])
    s = summary(study)
    assert s["answer"].startswith("No trial completed. 0 configurations trained")
