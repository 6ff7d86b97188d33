"""Screening against real runs: the cost interval predicted before training holds the priced cost
of the run that was made, for every graph method, metric and device; and the real graph evaluator
runs inside a search (tiny Cora runs: a few epochs per phase)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from datasets_available import requires_cora

from codesign.graphs.costing import price
from codesign.graphs.pipeline import train
from codesign.pipelines.graph_bounds import search_epochs
from codesign.pipelines.graph_search import GraphEvaluator, graph_space, reference_params
from codesign.pipelines.pricing import trial_cost
from search import SearchConfig, parse_budget, parse_metric, run_search
from search.export import summary, trials_frame
from search.storage import embedded_url

EPOCHS = 6  # per phase (search cap, pretrain, UGS mask training)
CASES = [
    {"method": "dense", "train_epochs": 6},
    {"method": "random", "graph_sparsity": 0.3, "weight_sparsity": 0.6, "train_epochs": 5},
    {"method": "gebt", "graph_sparsity": 0.2, "weight_sparsity": 0.5, "threshold": 0.1, "train_epochs": 4},
    {"method": "gebt", "graph_sparsity": 0.6, "weight_sparsity": 0.2, "threshold": 0.3, "train_epochs": 7},
    {"method": "geb", "graph_sparsity": 0.4, "threshold": 0.2, "train_epochs": 5},
    {"method": "sgcn", "graph_sparsity": 0.3, "train_epochs": 3},
    {"method": "ugs", "graph_sparsity": 0.2, "weight_sparsity": 0.3, "train_epochs": 4},
]
PRICINGS = [("train-energy", "h100"), ("train-latency", "jetson-agx-orin"), ("infer-energy", "h100")]


@requires_cora
@pytest.mark.parametrize("params", CASES, ids=lambda p: p["method"])
def test_predicted_interval_holds_the_priced_cost_of_the_run(params):
    metric0 = parse_metric("train-energy")
    result = train(GraphEvaluator("gcn", "cora", metric0, "h100", epochs=EPOCHS).config(params, seed=1),
                   progress=False)
    for metric_name, device in PRICINGS:
        metric = parse_metric(metric_name)
        ev = GraphEvaluator("gcn", "cora", metric, device, epochs=EPOCHS)
        interval = ev.predict(dict(params))
        cost, _ = trial_cost(result, metric, device, False, price)
        assert interval.low <= cost * (1 + 1e-9) and cost <= interval.high * (1 + 1e-9), (metric_name, device)
        assert interval.epochs_low <= sum(p["epochs"] for p in result["phases"]) <= interval.epochs_high
        if interval.exact:
            assert interval.high - interval.low <= 1e-3 * interval.high
        # screening at a budget equal to the true cost never drops this configuration
        assert not interval.low > parse_budget(f"{cost}{metric.unit}", metric).value


@requires_cora
def test_real_graph_evaluator_in_a_search(tmp_path):
    metric = parse_metric("train-energy")
    space = graph_space().narrow("method=dense,gebt,random; train_epochs=20:30")
    ev = GraphEvaluator("gcn", "cora", metric, "h100", epochs=6)
    ev.check()
    # a budget just above the dense reference's predicted cost: cheaper configurations train, dearer are screened
    budget = 1.3 * ev.predict({"method": "dense", "train_epochs": 20}).high
    cfg = SearchConfig("real", embedded_url(tmp_path), 3, metric, parse_budget(f"{budget:.4f}J", metric),
                       context={"device": "h100"})
    reference = reference_params(space, 6)
    assert reference == {"method": "dense", "train_epochs": 20}  # --epochs 6 is below the range: nearest value
    study = run_search(cfg, space, ev, predict=ev.predict, reference=reference)
    df = trials_frame(study)
    done = df[df["state"] == "COMPLETE"]
    assert len(done) == 3 and done["number"].iloc[0] == 0 and bool(done["reference"].iloc[0])
    assert done["test_accuracy"].between(0.1, 1.0).all() and done["val_accuracy"].between(0.1, 1.0).all()
    assert (done["predicted_cost_low"] <= done["cost"] * (1 + 1e-9)).all()
    assert (done["cost"] <= done["predicted_cost_high"] * (1 + 1e-9)).all()
    assert {"achieved_graph_sparsity", "achieved_weight_sparsity", "epochs_run"} <= set(done.columns)
    sparse = done[done["param.method"] != "dense"]
    assert ((sparse["achieved_graph_sparsity"] - sparse["param.graph_sparsity"]).abs() < 0.01).all()
    s = summary(study)
    assert s["reference"]["number"] == 0 and s["answer"].startswith(("Best within", "No trained"))


@requires_cora
@pytest.mark.parametrize("params", [
    {"method": "gebt", "graph_sparsity": 0.2, "weight_sparsity": 0.5, "threshold": 0.05, "train_epochs": 5},
    {"method": "geb", "graph_sparsity": 0.4, "threshold": 0.05, "train_epochs": 5},
], ids=lambda p: p["method"])
def test_a_run_is_stopped_only_once_it_is_proven_over_budget(params):
    """The budgeted evaluator stops an early-bird run whose ticket search goes on past the epoch at which
    the cost model's lower bound passes the budget; the full run it stopped really was over that budget,
    and a budget the full run fits in never stops it."""
    from search import OverBudget

    metric = parse_metric("train-energy")
    ev = GraphEvaluator("gcn", "cora", metric, "h100", epochs=20)
    config = ev.config(params, seed=3)
    full = train(config, progress=False)
    searched = next(p["epochs"] for p in full["phases"] if p["name"] == "search")
    cost, _ = trial_cost(full, metric, "h100", False, price)
    first = ev.predict(params)
    assert search_epochs(config)[0] < searched  # the detector fired (or gave up) later than it could have
    at_least_searched = ev._interval(config, searched)
    assert first.low < at_least_searched.low <= cost <= at_least_searched.high

    fits = replace(ev, stop_over=cost * (1 + 1e-6))
    limit = fits.search_limit(config)
    assert limit is None or limit >= searched  # a run within the budget is never stopped

    budget = (first.low + at_least_searched.low) / 2  # under the full run's cost: the run is over it
    over = replace(ev, stop_over=budget)
    limit = over.search_limit(config)
    assert limit is not None and limit < searched
    with pytest.raises(OverBudget) as stop:
        over(params, seed=3)
    assert stop.value.epochs_run == limit
    assert budget < stop.value.interval.low <= cost <= stop.value.interval.high  # proven, and true
    assert ev._interval(config, limit).low <= budget  # one epoch earlier it was not yet proven
