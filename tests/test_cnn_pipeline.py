"""Tiny end-to-end runs of every CNN method and the `codesign train --task cnn` CLI."""

from __future__ import annotations

import json

import pytest
import torch

from codesign.cli import main
from codesign.cnn.cost import price
from codesign.cnn.pipeline import METHODS, CNNTrainConfig, format_result, train
from costmodels.errors import CodesignError

TINY = dict(model="vgg11", dataset="synthetic-images", width=0.125, epochs=6, train_subset=256, batch_size=64,
            probe_grid=4, channel_sparsity=0.5, progress=False)


@pytest.fixture(scope="module")
def runs():
    return {m: train(CNNTrainConfig(method=m, **TINY)) for m in METHODS}


def test_every_method_runs_and_reports(runs):
    for method, r in runs.items():
        assert r["method"] == method and r["task"] == "cnn"
        assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["val_accuracy"] <= 1.0
        # 10 % of the 256-image subset is held out: 26 val images, 230 train (steps of 64: 4 per epoch)
        assert (r["data"]["n_train"], r["data"]["n_val"]) == (230, 26)
        assert r["val_accuracy"] * 26 == pytest.approx(round(r["val_accuracy"] * 26))
        ci = r["cost_inputs"]
        assert ci["kept_channels"] == r["kept_channels"] and ci["dense_channels"] == r["dense_channels"]
        assert (ci["n_train"], ci["steps_per_epoch"], ci["optimizer"]) == (230, 4, "sgd")
        assert ci["dense_epochs"] + ci["pruned_epochs"] == sum(p["epochs"] for p in r["phases"])
        assert price(ci, None)["train_flops"] == r["cost"]["train_flops"]
        assert all(k >= 1 for k in r["kept_channels"])
        assert sum(p["epochs"] for p in r["phases"]) == len(r["history"])
        assert r["cost"]["train_flops"] > 0 and r["eb_convention"]["train_flops"] > 0
        assert "estimated" in r["eb_convention"]["convention"]
        assert len(r["dataset_checksum"]) == 64 and r["wall_s"] >= sum(p["wall_s"] for p in r["phases"]) > 0
        if r["dense_accuracy_at_ticket"] is not None:  # named for what it is: the dense network, before pruning
            assert "dense network at the ticket epoch, before pruning" in format_result(r)
        format_result(r)
    assert runs["eb"]["dense_accuracy_at_ticket"] is not None and "ticket_accuracy" not in runs["eb"]
    dense = runs["dense"]
    assert dense["channel_sparsity"] == 0.0 and dense["forward_flops"]["reduction"] == 0.0
    assert dense["test_accuracy"] > 0.5  # the synthetic task is learnable in 6 epochs (chance: 0.1)
    assert dense["val_accuracy"] > 0.5
    assert runs["random"]["cost_inputs"]["dense_epochs"] == 0  # random trains the pruned net from the start
    assert runs["eb"]["cost_inputs"]["dense_epochs"] == runs["eb"]["eb_epoch"]
    for m in ("eb", "spline-eb", "spline", "slimming", "random"):
        r = runs[m]
        assert 0.4 < r["channel_sparsity"] <= 0.5
        assert r["params"]["after"] < r["params"]["before"]
        assert 0.0 < r["forward_flops"]["reduction"] < 1.0
        assert r["kept_channels"] != r["dense_channels"]


def test_search_methods_phase_accounting(runs):
    for m in ("eb", "spline-eb", "spline"):
        r = runs[m]
        search, retrain = r["phases"]
        assert search["name"] == "search" and search["epochs"] == r["eb_epoch"]
        if r["eb_found"]:  # the rest of the run, at least finetune_epochs = ceil(6 / 2)
            assert retrain["epochs"] == max(6 - r["eb_epoch"], 3)
        assert retrain["channels"] != search["channels"]
    assert runs["spline-eb"]["cost"]["detector_flops"] > 0 and runs["eb"]["cost"]["detector_flops"] == 0
    # dense epochs until the ticket, pruned epochs after: 3 x F x N x epochs per phase
    for m in ("eb", "spline-eb", "spline"):
        r = runs[m]
        f_dense, f_pruned = r["forward_flops"]["before"], r["forward_flops"]["after"]
        t, rt = (p["epochs"] for p in r["phases"])
        expected = 3 * r["data"]["n_train"] * (t * f_dense + rt * f_pruned)
        assert r["eb_convention"]["train_flops"] == pytest.approx(expected)
    assert runs["slimming"]["eb_epoch"] == 6 and [p["epochs"] for p in runs["slimming"]["phases"]] == [6, 3]


def test_runs_are_deterministic(runs):
    again = train(CNNTrainConfig(method="eb", **TINY))
    assert again["test_accuracy"] == runs["eb"]["test_accuracy"]
    assert again["kept_channels"] == runs["eb"]["kept_channels"]


def test_reinit_and_spline_global(tmp_path):
    r = train(CNNTrainConfig(method="spline", spline_mode="global", retrain_init="reinit", detector="eb",
                             out=str(tmp_path / "run"), **TINY))
    assert (tmp_path / "run" / "model.pt").is_file()
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)  # plain types only: loads without pickle
    assert saved["versions"]["torch"] == str(torch.__version__) and len(saved["state_dict"]) > 0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["method"] == "spline"
    assert r["config"]["retrain_init"] == "reinit" and min(r["kept_channels"]) >= 1


def test_preresnet_end_to_end():
    r = train(CNNTrainConfig(method="eb", **{**TINY, "model": "preresnet20", "epochs": 2, "train_subset": 64}))
    assert r["data"]["input_shape"] == [3, 16, 16]
    assert len(r["kept_channels"]) == 9 * 2 + 1  # 9 basic blocks x (select, mid) + the final selection


def test_cli_json_and_errors(capsys):
    assert main(["train", "--task", "cnn", "--model", "vgg11", "--dataset", "synthetic-images", "--method",
                 "slimming", "--width", "0.125", "--epochs", "2", "--train-subset", "64", "--batch-size", "32",
                 "--channel-sparsity", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["channel_sparsity_target"] == 0.3 and out["epochs"] == 2
    assert main(["train", "--task", "cnn", "--model", "alexnet", "--dataset", "synthetic-images"]) == 2
    assert "unknown model 'alexnet'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "cnn", "--channel-sparsity", "1.0"])
    assert exc.value.code == 2
    assert "--channel-sparsity" in capsys.readouterr().err


def test_config_validation_messages():
    with pytest.raises(CodesignError, match="unknown method 'prune'"):
        CNNTrainConfig(method="prune")
    with pytest.raises(CodesignError, match="channel-sparsity"):
        CNNTrainConfig(channel_sparsity=1.0)
    with pytest.raises(CodesignError, match="--width"):
        CNNTrainConfig(width=0.0)


def test_cnn_config_maps_options():
    from codesign.cli import build_parser
    from codesign.cli.cnn_args import cnn_config
    argv = ["train", "--task", "cnn", "--model", "preresnet56", "--dataset", "cifar100", "--method", "spline",
            "--width", "0.5", "--channel-sparsity", "0.7", "--spline-mode", "global", "--detector", "eb",
            "--no-download", "--train-subset", "100"]
    cfg = cnn_config(build_parser().parse_args(argv))
    assert (cfg.model, cfg.dataset, cfg.method, cfg.width, cfg.channel_sparsity) == (
        "preresnet56", "cifar100", "spline", 0.5, 0.7)
    assert (cfg.spline_mode, cfg.detector, cfg.download, cfg.train_subset) == ("global", "eb", False, 100)
    assert cfg.retrain_init == "finetune"  # the graph task's default --retrain-init ticket maps to finetune
    cfg = cnn_config(build_parser().parse_args(argv + ["--cnn-retrain-init", "reinit"]))
    assert cfg.retrain_init == "reinit"
    with pytest.raises(CodesignError, match="cnn-retrain-init"):
        cnn_config(build_parser().parse_args(argv + ["--retrain-init", "rewind"]))


def test_run_on_auto_and_missing_cuda(capsys):
    import torch

    r = train(CNNTrainConfig(model="vgg11", dataset="synthetic-images", method="eb", epochs=2, width=0.125,
                             train_subset=64, batch_size=32, run_on="auto", progress=False))
    assert 0.0 <= r["test_accuracy"] <= 1.0
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --run-on cuda is exercised by tests/test_measure_gpu.py")
    assert main(["train", "--task", "cnn", "--dataset", "synthetic-images", "--run-on", "cuda", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA device is visible" in err[0] and "--run-on cpu" in err[0]


def test_spline_dead_units_come_from_the_final_weights(monkeypatch):
    # a spline search whose detector never fires (threshold 0) trains one more epoch after its last check:
    # the dead units must come from the codes of the network that is pruned, not from that stale check
    import codesign.cnn.methods as methods

    calls, seen = [], []
    real_codes, real_dead = methods.partition_codes, methods.dead_units

    def codes_spy(model, probe):
        calls.append((model, probe))
        return real_codes(model, probe)

    def dead_spy(codes, bns, units, probe_count):
        model, probe = calls[-1]
        fresh = real_codes(model, probe)
        seen.append(all((a == b).all() and na == nb for (a, na), (b, nb) in zip(codes, fresh)))
        return real_dead(codes, bns, units, probe_count)

    monkeypatch.setattr(methods, "partition_codes", codes_spy)
    monkeypatch.setattr(methods, "dead_units", dead_spy)
    r = train(CNNTrainConfig(method="spline", spline_threshold=0.0, **{**TINY, "epochs": 3, "train_subset": 64}))
    assert r["eb_found"] is False and r["eb_epoch"] == 3
    assert seen == [True]
    assert r["cost_inputs"]["probe_epochs"] == 3  # checks after epochs 1 and 2, and the final network's codes


def test_a_last_batch_of_one_image_trains(tmp_path, capsys):
    # 64 training images in batches of 63: the last batch held one image and BatchNorm raised ValueError
    r = train(CNNTrainConfig(method="dense", **{**TINY, "epochs": 1, "train_subset": 64, "val_size": 0,
                                                "batch_size": 63}))
    assert r["data"]["n_train"] == 64 and r["cost_inputs"]["steps_per_epoch"] == 1
    with pytest.raises(CodesignError, match="--batch-size must be at least 2"):
        CNNTrainConfig(batch_size=1)
    # a validation split that leaves one training image: one line, exit 2, nothing created
    out = tmp_path / "run"
    assert main(["train", "--task", "cnn", "--dataset", "synthetic-images", "--width", "0.125", "--epochs", "1",
                 "--train-subset", "20", "--val-size", "19", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--val-size 19" in err[0] and "1 training image" in err[0]
    assert not out.exists()


def test_probe_grid_help_names_the_images_the_probe_plane_uses(monkeypatch):
    # the help said "the plane of two test images"; run_search takes two validation images (no test image
    # enters a training decision)
    import codesign.cnn.methods as methods
    from codesign.cli import build_parser
    from codesign.cnn.data import normalise

    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    help_text = next(a.help for a in train_parser._actions if "--probe-grid" in a.option_strings)
    assert "plane of two validation images" in help_text
    ends = []
    real = methods.probe_inputs
    monkeypatch.setattr(methods, "probe_inputs", lambda x0, x1, grid: ends.append((x0, x1)) or real(x0, x1, grid))
    cfg = CNNTrainConfig(method="spline-eb", **{**TINY, "epochs": 1, "train_subset": 64})
    train(cfg)
    from codesign.cnn.data import load_dataset
    from codesign.runtime.data_root import resolve_data_root

    data = load_dataset("synthetic-images", resolve_data_root(None), train_subset=64, val_size=0.1)
    val = normalise(data.val_x[:2], data)
    assert torch.equal(ends[0][0], val[0]) and torch.equal(ends[0][1], val[1])


@pytest.mark.parametrize("extra, message", [
    (["--method", "dense", "--bn-l1", "0.001"], "--bn-l1 0.001 does not apply to --method dense"),
    (["--method", "eb", "--spline-threshold", "0.2"], "--spline-threshold 0.2 does not apply to --method eb"),
    (["--method", "eb", "--spline-mode", "global"], "--spline-mode global does not apply to --method eb"),
    (["--method", "slimming", "--probe-grid", "8"], "--probe-grid 8 does not apply to --method slimming"),
    (["--method", "random", "--cnn-retrain-init", "reinit"], "--cnn-retrain-init reinit does not apply"),
    (["--method", "dense", "--finetune-epochs", "2"], "--finetune-epochs 2 does not apply to --method dense"),
    (["--method", "spline", "--eb-eps", "0.2"], "--eb-eps 0.2 does not apply to --method spline with --detector"),
    (["--method", "spline", "--detector", "eb", "--spline-threshold", "0.2"], "only with --detector spline"),
])
def test_cli_refuses_cnn_options_the_method_never_reads(extra, message, capsys, tmp_path):
    # these ran and silently ignored the option (docs/cli.md: "one the method never reads is refused")
    out = tmp_path / "run"
    assert main(["train", "--task", "cnn", "--dataset", "synthetic-images", "--width", "0.125", "--epochs", "1",
                 "--train-subset", "40", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_cli_reads_the_shared_retrain_init_for_cnn(capsys):
    # cnn_args maps the graph task's --retrain-init (reinit -> reinit); the CLI refused it as a graph-only option
    assert main(["train", "--task", "cnn", "--dataset", "synthetic-images", "--width", "0.125", "--epochs", "1",
                 "--train-subset", "40", "--retrain-init", "reinit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["retrain_init"] == "reinit"
