"""`codesign train --task graph` on the command line: JSON keys, one-line errors, torch-free --help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from codesign.cli import main

TINY = "sbm:n=200,avg_degree=6,features=8,classes=3"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))


def test_json_output_has_the_contract_keys(capsys, tmp_path):
    rc = main(["train", "--dataset", TINY, "--method", "gebt", "--graph-sparsity", "0.2", "--weight-sparsity",
               "0.5", "--epochs", "3", "--json", "--out", str(tmp_path / "x")])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("test_accuracy", "val_accuracy", "eb_epoch", "graph_sparsity", "weight_sparsity", "phases",
                "cost", "cost_inputs", "wall_s", "peak_rss_bytes"):
        assert key in r
    assert [p["name"] for p in r["phases"]] == ["search", "retrain"]
    assert r["cost"]["device"] is None and r["cost"]["train_latency_s"] is None
    assert r["peak_rss_bytes"] > 10 * 2**20
    # the data's share of the run (loading, node order): measured, and part of wall_s
    assert 0 < r["data_wall_s"] < r["wall_s"] - sum(p["wall_s"] for p in r["phases"]) + 1e-6
    assert (tmp_path / "x" / "ticket.pt").exists() and (tmp_path / "x" / "result.json").exists()


@pytest.mark.parametrize(("argv", "pattern"), [
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--dataset", TINY, "--model", "mlp"], "unknown model 'mlp'"),
    (["--dataset", TINY, "--method", "magic"], "unknown method 'magic'"),
    (["--dataset", TINY, "--graph-sparsity", "1.5"], "--graph-sparsity must be in [0, 1)"),
    (["--dataset", TINY, "--weight-sparsity", "-0.2"], "--weight-sparsity must be in [0, 1)"),
    (["--dataset", TINY, "--ticket", "/nonexistent/run"], "no ticket.pt there"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, pattern):
    try:
        rc = main(["train", *argv, "--epochs", "1"])
    except SystemExit as exc:  # argparse-level errors (type=fraction) exit 2 themselves
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert pattern in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("option", [["--seed", "5"], ["--seed", "0"], ["--hidden", "64"], ["--model", "gat"],
                                    ["--method", "ugs"], ["--graph-sparsity", "0.9"], ["--retrain-init", "reinit"]])
def test_ticket_refuses_what_it_takes_from_the_ticket(capsys, tmp_path, option):
    # `train --ticket R --seed 5` (or --hidden 64, --model gat, ...) ran, silently with the ticket's seed, width
    # and model instead; the retraining reads --epochs (and the run options) only
    run = tmp_path / "run"
    assert main(["train", "--dataset", TINY, "--method", "dense", "--epochs", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    rc = main(["train", "--dataset", TINY, "--ticket", str(run), *option, "--out", str(tmp_path / "again")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"codesign: error: {option[0]} {option[1]} does not apply to --ticket") and "drop it" in err
    assert not (tmp_path / "again").exists()
    assert main(["train", "--dataset", TINY, "--ticket", str(run), "--epochs", "1", "--threads", "1"]) == 0


def test_help_does_not_import_torch():
    code = ("import sys; from codesign.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_one_default_width_per_architecture_across_estimate_train_profile(capsys):
    """GAT: 8 channels per head everywhere (estimate used 16, train 8: 2x FLOPs between the two)."""
    from codesign.graphs.config import GraphTrainConfig
    from codesign.machine.profiling import WorkloadConfig
    from costmodels import GNNSpec

    assert GNNSpec("gat").hidden == GraphTrainConfig(model="gat").hidden == WorkloadConfig("gat", "cora").hidden == 8
    assert GNNSpec("gcn").hidden == GraphTrainConfig(model="gcn").hidden == 16
    rows = {}
    for extra in ([], ["--hidden", "8"]):
        assert main(["estimate", "--model", "gat", "--dataset", "cora", "--device", "h100", "--json", *extra]) == 0
        rows[bool(extra)] = json.loads(capsys.readouterr().out)[0]["flops"]
    assert rows[False] == rows[True]


@pytest.mark.parametrize("model", ["gcn", "gat", "gin", "sage"])
def test_pyg_export_loads_and_scores_as_trained(capsys, tmp_path, model):
    """Every architecture's export loads into its ``torch_geometric.nn`` twin (strictly: GIN's ``eps`` buffer
    is in the state dict) and classifies the test nodes as the trained ticket did."""
    pytest.importorskip("torch_geometric")
    from codesign.graphs.export import load_pyg, test_accuracy

    run = tmp_path / "run"
    assert main(["train", "--dataset", TINY, "--model", model, "--method", "gebt", "--epochs", "6", "--hidden", "8",
                 "--heads", "2", "--json", "--out", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(["export", str(run), "--format", "pyg", "--out", str(tmp_path / "pyg")]) == 0
    net, data, edge_indices = load_pyg(tmp_path / "pyg")
    assert abs(test_accuracy(net, data, edge_indices) - result["test_accuracy"]) < 1e-3


def test_result_json_records_what_the_printed_json_does(tmp_path, capsys):
    """``result.json`` holds the allocator settings ``--json`` prints (the CLI added them after writing it)."""
    out = tmp_path / "run"
    assert main(["train", "--dataset", TINY, "--method", "dense", "--epochs", "1", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "result.json").read_text())
    for key in ("huge_pages", "freed_memory", "thread_policy"):
        assert saved[key] == printed[key] and saved[key]
