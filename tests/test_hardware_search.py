"""Joint hardware/sparsity search and several devices (a fake trainer; pricing is the real grid model)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from codesign.cli import main
from codesign.pipelines.graph_search import GraphEvaluator
from costmodels import GRAPHS, CodesignError, PhaseSpec
from search import Evaluation
from search.hardware import best_index, hardware_of, parse_area_budget, parse_hardware_space, parse_power_budget


def _inputs(gs: float, ws: float) -> dict:
    g = GRAPHS["cora"]
    return {"spec": {"model": "gcn", "layers": 2, "hidden": 16, "heads": 8, "output_heads": 1},
            "stats": {"name": "cora", "num_nodes": g.num_nodes, "num_edges": g.num_edges,
                      "num_features": g.num_features, "num_classes": g.num_classes, "num_train": 140},
            "phases": [PhaseSpec("search", 10, 1.0, 1.0, True, True, graph_copies=2).to_dict(),
                       PhaseSpec("retrain", 20, 1 - gs, 1 - ws).to_dict()],
            "infer_graph_density": 1 - gs, "infer_weight_density": 1 - ws}


@pytest.fixture
def fake_training(monkeypatch):
    def call(self, params, seed):
        gs, ws = float(params.get("graph_sparsity") or 0), float(params.get("weight_sparsity") or 0)
        acc = 0.8 - 0.2 * gs**2 - 0.1 * ws**2
        return Evaluation(val_accuracy=acc, cost=1.0, test_accuracy=acc - 0.01, attrs={"cost_inputs": _inputs(gs, ws)})

    monkeypatch.setattr(GraphEvaluator, "__call__", call)


def test_parse_hardware_space_and_budgets():
    space = parse_hardware_space("pes=256:8192; buffer_mb=0.5:32; dram=hbm2,lpddr4")
    assert space.ranges == {"pes": (256.0, 8192.0), "buffer_mb": (0.5, 32.0)}
    assert space.values == {"dram": ("hbm2", "lpddr4")}
    axes = space.axes()
    assert len(axes["pes"]) == space.steps() == 45
    assert axes["pes"][0] == pytest.approx(256) and axes["pes"][-1] == pytest.approx(8192)
    assert np.allclose(np.diff(np.log(axes["pes"])), np.log(32) / 44)  # geometric over a wide range
    assert parse_area_budget("8mm2") == 8.0 and parse_area_budget("8 mm^2") == 8.0
    assert parse_power_budget("7W") == 7.0 and parse_power_budget("500 mW") == pytest.approx(0.5)
    for bad, fn in (("pes", parse_hardware_space), ("pes=9:1", parse_hardware_space), ("8 J", parse_area_budget),
                    ("7", parse_power_budget)):
        with pytest.raises(CodesignError):
            fn(bad)


def test_area_pareto_keeps_trials_no_other_beats_on_all_three():
    from search.hardware import area_pareto

    done = pd.DataFrame({"number": [0, 1, 2, 3], "val_accuracy": [0.8, 0.8, 0.7, 0.9],
                         "cost": [1.0, 1.0, 0.5, 2.0], "area_mm2": [2.0, 1.0, 3.0, 5.0]})
    assert area_pareto(done) == [1, 2, 3]  # 0 is beaten by 1 (same accuracy and cost, smaller area)


def test_best_index_under_budgets():
    cost, area, power = np.array([1.0, 2.0, 3.0]), np.array([10.0, 5.0, 1.0]), np.array([1.0, 1.0, 9.0])
    assert best_index(cost, area, power, None, None) == (0, True)
    assert best_index(cost, area, power, 8.0, None) == (1, True)
    assert best_index(cost, area, power, 8.0, 2.0) == (1, True)
    assert best_index(cost, area, power, 0.5, None) == (2, False)  # nothing fits: smallest area, flagged
    assert best_index(np.array([1.0, 1.0, 2.0]), np.array([3.0, 2.0, 1.0]), power, None, None) == (1, True)
    assert hardware_of({"hw.pes": 256, "area_mm2": 1.5, "power_w": 2.0, "cost": 3})["area_mm2"] == 1.5
    assert hardware_of({"cost": 3}) is None


def test_joint_search_records_hardware_under_the_area_budget(tmp_path, fake_training, capsys):
    out = tmp_path / "run"
    assert main(["search", "--model", "gcn", "--dataset", "cora", "--metric", "infer-latency", "--device",
                 "gcn-accelerator", "--hardware-space", "pes=256:8192; buffer_mb=0.5:32", "--area-budget", "8mm2",
                 "--trials", "4", "--out", str(out), "--space", "method=gebt"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    hw = summary["best"]["hardware"]
    assert hw["device"] == "gcn-accelerator" and hw["area_mm2"] <= 8.0 and hw["within_budget"] is True
    assert 256 <= hw["pes"] <= 8192 and 0.5 <= hw["buffer_mb"] <= 32
    trials = pd.read_csv(out / "trials.csv")
    assert {"hw.pes", "hw.buffer_mb", "area_mm2", "power_w"} <= set(trials.columns)
    assert (trials["area_mm2"] <= 8.0).all() and (trials["hw_points_priced"] == 64 * 64).all()
    assert summary["context"]["hardware_space"] == "pes=256:8192; buffer_mb=0.5:32"
    assert summary["best"]["number"] in summary["pareto_area"]  # the front over accuracy, cost and area
    assert (out / "pareto.png").stat().st_size > 0


def test_several_devices_price_every_ticket_on_each(tmp_path, fake_training, capsys):
    out = tmp_path / "run"
    assert main(["search", "--metric", "infer-energy", "--device", "gcn-accelerator", "--device", "v100",
                 "--trials", "3", "--out", str(out), "--space", "method=gebt"]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert {"device_cost.gcn-accelerator", "device_cost.v100"} <= set(trials.columns)
    assert (trials["device_cost.gcn-accelerator"] < trials["device_cost.v100"]).all()  # ~6 W vs 300 W
    best = json.loads((out / "summary.json").read_text())["best"]
    assert best["hardware"]["device"] == "gcn-accelerator"
    chosen = trials.loc[trials["number"] == best["number"], "device_cost.gcn-accelerator"].item()
    assert best["cost"] == pytest.approx(chosen)


@pytest.mark.parametrize("args,needle", [
    (["--device", "v100", "--hardware-space", "pes=256:8192"], "fixed profile with no hardware knobs"),
    (["--device", "gcn-accelerator", "--hardware-space", "pes=16:8192"], "pes=16.0 is outside its range 64..65536"),
    (["--device", "gcn-accelerator", "--hardware-space", "pez=1:2"], "unknown hardware knob 'pez'"),
    (["--device", "gcn-accelerator", "--area-budget", "8 J"], "--area-budget '8 J'"),
    # only fixed profiles: no area is modelled, every trial would miss the budget ("raise --area-budget" before)
    (["--device", "v100", "--area-budget", "8mm2"], "--area-budget 8mm2: no chip area is modelled for v100"),
    # a range over a choice knob: named as written with the fix (was "precision_bits=np.float64(9.129...)")
    (["--device", "gcn-accelerator", "--hardware-space", "precision_bits=8:32"],
     "precision_bits=8:32: precision_bits takes only 8,16,32; list the values instead, e.g. precision_bits=8,16,32"),
    # a grid end is named as a plain number (was "pes=np.float64(256.5) is a count")
    (["--device", "gcn-accelerator", "--hardware-space", "pes=256.5:8192"], "pes=256.5 is a count"),
])
def test_bad_hardware_search_options_are_one_line(args, needle, tmp_path, fake_training, capsys):
    assert main(["search", "--out", str(tmp_path / "r"), "--trials", "1", "--metric", "infer-energy", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not (tmp_path / "r").exists()  # refused before anything is created


def test_power_budget_binds_and_dram_bandwidth_is_searched(tmp_path, fake_training, capsys):
    out = tmp_path / "run"
    assert main(["search", "--metric", "infer-latency", "--device", "gcn-accelerator", "--hardware-space",
                 "pes=256:8192; agg_lanes=64:2048; dram_gbs=64:512", "--power-budget", "3W", "--trials", "2",
                 "--out", str(out), "--space", "method=gebt"]) == 0
    hw = json.loads((out / "summary.json").read_text())["best"]["hardware"]
    assert hw["power_w"] <= 3.0 and hw["within_budget"] is True
    assert hw["dram_gbs"] == pytest.approx(512)  # latency is memory bound: the most bandwidth (no chip cost)
