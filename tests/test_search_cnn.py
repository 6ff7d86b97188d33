"""`codesign search --task cnn`: a tiny real search, the evaluator's parameter mapping, re-pricing."""

from __future__ import annotations

import json
import math

import optuna
import pandas as pd
import pytest

from codesign.cli import main
from codesign.cnn.cost import NetShape, PhaseRecord, cost_inputs, price
from codesign.cnn.data import load_dataset, val_count
from codesign.pipelines.cnn_search import CNNEvaluator, cnn_space
from codesign.runtime.data_root import resolve_data_root
from costmodels import load_profile, price_run, price_workload
from costmodels.cnn_resnets import cnn_workload
from costmodels.errors import CodesignError
from costmodels.runs import Phase
from search import parse_metric
from search.storage import embedded_url, open_storage

TINY = ["--dataset", "synthetic-images", "--width", "0.125", "--epochs", "6", "--train-subset", "320",
        "--val-size", "64", "--batch-size", "64", "--probe-grid", "4"]


def test_tiny_cnn_search_completes_with_val_and_test_accuracy(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["search", "--task", "cnn", *TINY, "--trials", "3", "--metric", "train-energy", "--device",
            "jetson-agx-orin", "--budget", "1 kJ", "--space", "method=dense,eb,random", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "best feasible: trial #" in text and "test acc" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trials"] == 3 and summary["n_feasible"] == 3 and summary["device"] == "jetson-agx-orin"
    assert summary["study"].startswith("cnn-vgg11-synthetic-images-train-energy-jetson-agx-orin")
    assert "estimated" in summary["cost_source"]
    best = summary["best"]
    assert best is not None and 0 < best["cost"] <= 1000.0
    assert best["accuracy"] > 0.4  # chance is 0.1 on 10 classes; the best of 3 runs learns something
    study = optuna.load_study(study_name=summary["study"], storage=open_storage(embedded_url(out)))
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    trials = pd.read_csv(out / "trials.csv")
    assert len(done) == 3 and (trials["state"] == "COMPLETE").sum() == 3
    assert done[0].number == 0 and done[0].user_attrs["reference"] is True  # the dense reference, first
    assert done[0].user_attrs["params"]["method"] == "dense"
    assert [t.user_attrs["params"]["method"] for t in done].count("dense") == 1  # dense has nothing to vary
    for t in done:
        ua = t.user_attrs
        assert 0.0 <= ua["val_accuracy"] <= 1.0 and 0.0 <= ua["test_accuracy"] <= 1.0
        # 64 val images -> accuracies are multiples of 1/64; 512 test images -> of 1/512
        assert math.isclose(ua["val_accuracy"] * 64, round(ua["val_accuracy"] * 64))
        assert ua["params"]["method"] in {"dense", "eb", "random"}
        assert ua["costs"]["train_energy_j"] == ua["cost"] > 0 and ua["costs"]["device"] == "jetson-agx-orin"
        if ua["params"]["method"] == "dense":
            assert ua["params"]["channel_sparsity"] == 0.0 and ua["channel_sparsity_achieved"] == 0.0
        else:
            assert ua["channel_sparsity_achieved"] > 0.0 and ua["forward_flops_reduction"] > 0.0


def test_evaluator_maps_threshold_to_the_methods_detector():
    ev = CNNEvaluator("vgg11", "synthetic-images", parse_metric("train-energy"), "h100", epochs=4, width=0.125)
    eb = ev.config({"method": "eb", "channel_sparsity": 0.4, "threshold": 0.2}, seed=3)
    assert (eb.eb_eps, eb.spline_threshold, eb.channel_sparsity, eb.seed, eb.val_size) == (0.2, 0.16, 0.4, 3, 0.1)
    seb = ev.config({"method": "spline-eb", "channel_sparsity": 0.4, "threshold": 0.07}, seed=0)
    assert (seb.eb_eps, seb.spline_threshold) == (0.1, 0.07)
    sp = CNNEvaluator("vgg11", "synthetic-images", parse_metric("train-energy"), "h100",
                      overrides={"detector": "eb"}).config({"method": "spline", "channel_sparsity": 0.3,
                                                            "threshold": 0.25}, seed=0)
    assert (sp.eb_eps, sp.spline_threshold) == (0.25, 0.16)
    dense = ev.config(cnn_space().complete({"method": "dense"}), seed=0)
    assert dense.channel_sparsity is None and dense.method == "dense"  # not applicable to dense
    space = cnn_space().narrow("method=slimming; channel_sparsity=0.5")
    assert space.get("channel_sparsity").fixed and space.get("method").choices == ("slimming",)
    with pytest.raises(CodesignError, match="--val-size 0"):
        CNNEvaluator("vgg11", "synthetic-images", parse_metric("train-energy"), "h100", val_size=0)


def test_a_sparsity_the_network_cannot_reach_fails_that_trial_not_the_search():
    """preresnet20 at width 0.125 has 86 prunable channels: 0.6857 removes floor(58.97) = 58 (0.6744), off by
    more than the 0.01 tolerance. That configuration's trial fails (EvaluationError, FAIL in trials.csv); it was
    a CodesignError, which ended the whole search with exit 2 after the trials already trained."""
    from search import EvaluationError

    ev = CNNEvaluator("preresnet20", "synthetic-images", parse_metric("infer-flops"), "h100", epochs=2, width=0.125,
                      train_subset=64, batch_size=32)
    with pytest.raises(EvaluationError, match="channel sparsity 0.6744, not the requested 0.6857"):
        ev({"method": "eb", "channel_sparsity": 0.6857, "threshold": 0.1}, 0)


def test_val_split_is_seeded_disjoint_and_sized():
    root = resolve_data_root(None)
    a = load_dataset("synthetic-images", root, train_subset=200, seed=1, val_size=0.1)
    b = load_dataset("synthetic-images", root, train_subset=200, seed=1, val_size=0.1)
    assert (len(a.train_y), len(a.val_y), len(a.test_y)) == (180, 20, 512)
    assert a.checksum() == b.checksum()
    rows = {bytes(x.numpy().tobytes()) for x in a.train_x}
    assert not any(bytes(x.numpy().tobytes()) in rows for x in a.val_x)  # no image in both
    assert len(load_dataset("synthetic-images", root, train_subset=200, val_size=50).val_y) == 50
    assert val_count(0.25, 10) == 2 and val_count(0, 10) == 0 and val_count(3, 10) == 3
    with pytest.raises(CodesignError, match="--val-size 200"):
        val_count(200, 200)


def _inputs(probe_images=0, probe_epochs=0):
    shape = NetShape("vgg11", 10, 1, 28, 0.25)
    dense = (16, 32, 64, 64, 128, 128, 128, 128)
    kept = (8, 20, 30, 33, 60, 64, 70, 9)
    phases = [PhaseRecord("search", 3, dense), PhaseRecord("retrain", 5, kept)]
    return cost_inputs(shape, phases, kept, dense_channels=dense, n_train=1000, batch_size=128,
                       probe_images=probe_images, probe_epochs=probe_epochs), dense, kept


@pytest.mark.parametrize("device", ["jetson-agx-orin", "h100"])
def test_price_equals_a_direct_price_run(device):
    ci, dense, kept = _inputs()
    assert (ci["dense_epochs"], ci["pruned_epochs"], ci["steps_per_epoch"], ci["optimizer"]) == (3, 5, 8, "sgd")
    profile = load_profile(device)

    def wl(ch, batch, training):
        return cnn_workload("vgg11", 10, 1, 28, width=0.25, channels=list(ch), batch=batch, training=training)

    direct = price_run([Phase("search", 3, wl(dense, 128, True), "sgd", 8),
                        Phase("retrain", 5, wl(kept, 128, True), "sgd", 8)], wl(kept, 1, False), profile).to_dict()
    got = price(ci, device)
    for key in ("train_energy_j", "train_latency_s", "train_flops", "train_memory_bytes", "infer_energy_j",
                "infer_latency_s", "infer_flops", "infer_memory_bytes"):
        assert got[key] == pytest.approx(direct[key], rel=1e-12), key
    assert got["device"] == device and got["train_energy_j"] > 0 and got["detector_flops"] == 0.0
    # a cheaper pruned phase: the same 8 epochs all dense cost more
    assert got["train_energy_j"] < price({**ci, "phases": [{"name": "d", "epochs": 8, "channels": list(dense)}]},
                                         device)["train_energy_j"]


def test_price_adds_the_spline_probe_as_a_forward_only_phase():
    ci, dense, _ = _inputs(probe_images=300, probe_epochs=4)
    base, got = price(_inputs()[0], "h100"), price(ci, "h100")
    one = price_workload(cnn_workload("vgg11", 10, 1, 28, width=0.25, channels=list(dense), batch=256,
                                      training=False), load_profile("h100"), training=False)
    passes = 4 * 2  # 4 checks x ceil(300 / 256) batches
    assert got["train_energy_j"] == pytest.approx(base["train_energy_j"] + passes * one.energy_j, rel=1e-12)
    assert got["train_flops"] == pytest.approx(base["train_flops"] + passes * one.flops, rel=1e-12)
    assert [p["name"] for p in got["phases"]] == ["search", "retrain", "detector-probe"]
    assert got["infer_energy_j"] == base["infer_energy_j"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--width", "0.5"], "--width only apply to --task cnn"),
        (["--task", "cnn", "--val-size", "0"], "--val-size 0"),
        (["--task", "cnn", "--width", "0"], "--width 0: out of range, must be in (0, 4]"),
        (["--task", "cnn", "--model", "alexnet"], "unknown model 'alexnet'"),
    ],
)
def test_cnn_search_bad_input_is_one_line(args, needle, tmp_path, capsys):
    try:
        rc = main(["search", "--out", str(tmp_path / "r"), "--trials", "1", *args])
    except SystemExit as exc:  # checked by argparse (codesign.cli.common.BOUNDS)
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


# --- CNN screening (issue 19: never drops a configuration whose true cost fits) -------------------------

@pytest.mark.slow
def test_cnn_screening_interval_holds_the_true_cost_of_every_method():
    """The interval the CNN search screens with holds the priced cost of the run actually made (so a
    configuration whose true cost fits is never screened): one tiny real run per method, two metrics."""
    kw = {"model": "vgg11", "dataset": "synthetic-images", "device": "jetson-agx-orin", "epochs": 3, "width": 0.125,
          "train_subset": 128, "val_size": 32, "batch_size": 64, "probe_grid": 4}
    evs = {m: CNNEvaluator(metric=parse_metric(m), **kw) for m in ("train-energy", "infer-flops")}
    dense = {"method": "dense", "channel_sparsity": 0.0, "threshold": None}
    assert evs["train-energy"].predict(dense).exact  # dense: E epochs of the dense widths (not retrained here)
    for method, p, thr in (("random", 0.5, None), ("slimming", 0.6, None), ("eb", 0.5, 0.3), ("spline", 0.5, 0.3)):
        params = {"method": method, "channel_sparsity": p, "threshold": thr}
        costs = evs["train-energy"](params, 0).costs
        for m, ev in evs.items():
            interval, cost = ev.predict(params), costs[ev.metric.cost_key]
            assert interval.low <= cost * (1 + 1e-9) and cost <= interval.high * (1 + 1e-9), (method, m, interval)
            assert interval.exact == (method == "random")
            if interval.exact:
                assert cost == pytest.approx(interval.low, rel=1e-9)


@pytest.mark.slow
def test_cnn_search_screens_and_stops_over_budget_and_keeps_what_fits(tmp_path, capsys):
    tiny = ["--dataset", "synthetic-images", "--width", "0.125", "--epochs", "3", "--train-subset", "128",
            "--val-size", "32", "--batch-size", "64", "--probe-grid", "4"]
    ev = CNNEvaluator(model="vgg11", dataset="synthetic-images", metric=parse_metric("train-energy"),
                      device="jetson-agx-orin", epochs=3, width=0.125, train_subset=128, val_size=32, batch_size=64,
                      probe_grid=4)
    dense = ev.predict({"method": "dense", "channel_sparsity": 0.0, "threshold": None}).low
    budget = 0.8 * dense  # dense and slimming (3 dense epochs + fine-tuning) cannot fit; random at 0.5 can
    out = tmp_path / "run"
    assert main(["search", "--task", "cnn", *tiny, "--trials", "3", "--metric", "train-energy", "--device",
                 "jetson-agx-orin", "--budget", f"{budget:.6g} J", "--space", "method=dense,slimming,random,eb",
                 "--out", str(out), "--confirm-seeds", "0"]) == 0
    trials = pd.read_csv(out / "trials.csv")
    screened = trials[trials["screened"].fillna(False).astype(bool)]
    assert not screened.empty
    assert (screened["predicted_cost_low"] > budget).all()  # only what is proven over the budget
    assert "slimming" not in set(trials.loc[trials["state"] == "COMPLETE", "param.method"])
    done = trials[(trials["state"] == "COMPLETE") & ~trials["reference"].fillna(False).astype(bool)]
    assert (done["cost"] <= done["predicted_cost_high"] * (1 + 1e-9)).all()
    assert (done["cost"] >= done["predicted_cost_low"] * (1 - 1e-9)).all()
