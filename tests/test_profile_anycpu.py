"""`codesign profile` / `calibrate` on a CPU with no shipped profile, and profiling = training code."""

from __future__ import annotations

import json

import pytest
import torch
from datasets_available import requires_cora

import costmodels.measure.host as host
from codesign.cli import main
from codesign.machine.profiling import DataCache, EpochRunner, WorkloadConfig, predicted_passes
from costmodels import GRAPHS, GNNSpec, GraphStats, PhaseSpec, gnn_phase_workload, load_profile, price_workload
from costmodels.analytical import context_for, memory_breakdown
from costmodels.measure.detect import detect_profile, user_calibrated_path
from costmodels.profiles import DeviceProfile, user_profile_dir

XEON = "Intel(R) Xeon(R) CPU @ 2.20GHz"
MEASURED = {"gemm_flops": 60e9, "copy_bps": 15e9, "op_s": 8e-6, "serial_step_s": 7e-9}
DATA = DataCache()
CORA = GraphStats("cora", 2708, 10556, 1433, 7)


@pytest.fixture
def xeon(monkeypatch, tmp_path):
    """This machine seen as a 2-core Xeon (no shipped profile), with fixed host measurements and a
    user profile folder in tmp_path."""
    import costmodels.measure.cpu as cpu

    monkeypatch.setenv("CODESIGN_PROFILE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cpu, "cpu_model_name", lambda: XEON)
    monkeypatch.setattr(host, "measure_host", lambda: dict(MEASURED))
    return tmp_path


def test_user_profile_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("CODESIGN_PROFILE_HOME", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert user_profile_dir() == tmp_path / "a"
    monkeypatch.delenv("CODESIGN_PROFILE_HOME")
    assert user_profile_dir() == tmp_path / "x" / "codesign" / "profiles"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert user_profile_dir() == tmp_path / "h" / ".local" / "share" / "codesign" / "profiles"
    assert not (tmp_path / "h").exists()  # not created by asking


def test_host_profile_is_measured_uncalibrated_and_valid():
    data = host.host_cpu_profile(MEASURED, cpu_model=XEON, cores=2)
    prof = DeviceProfile.from_dict(data)
    assert prof.name == "host-cpu-intel-xeon-2core" and prof.kind == "cpu"
    assert "uncalibrated" in prof.source and "measured on this host" in prof.source
    assert prof.peak_flops() == pytest.approx(2 * 60e9, rel=1e-5)  # the one-core rate on both cores
    assert prof.dram_bandwidth_bps == pytest.approx(15e9, rel=1e-3)
    assert prof.kernel_overhead_s == pytest.approx(8e-6)
    assert "calibration" not in prof.sections


def test_host_measurement_is_short_and_positive():
    m = host.measure_host()
    assert m["gemm_flops"] > 1e8 and m["copy_bps"] > 1e8
    assert 0 < m["op_s"] < 1e-3 and 0 < m["serial_step_s"] < 1e-6


def test_detect_profile_builds_one_for_an_unknown_cpu_and_prefers_the_users_calibration(xeon):
    found = detect_profile(XEON, kind="cpu", cores=2)
    assert found.name == "host-cpu-intel-xeon-2core" and "uncalibrated" in found.profile.source
    assert found.kind == "measured-host"
    data = host.host_cpu_profile(MEASURED, cpu_model=XEON, cores=2)
    data["display_name"] += " (calibrated)"
    path = user_calibrated_path(data["name"])
    assert path == xeon / "home" / "calibrated" / "host-cpu-intel-xeon-2core.toml"
    path.parent.mkdir(parents=True)
    from costmodels.calibrate import to_toml

    path.write_text(to_toml(data))
    found = detect_profile(XEON, kind="cpu", cores=2)
    assert found.name == "calibrated/host-cpu-intel-xeon-2core" and found.profile.path == str(path)
    assert found.kind == "calibrated" and found.path == str(path)
    assert detect_profile(XEON, kind="cpu", cores=2, prefer_calibrated=False).name == "host-cpu-intel-xeon-2core"
    assert detect_profile("AMD EPYC", kind="cpu", cores=2, prefer_calibrated=False).name == "cloud-cpu-2core"


@pytest.mark.parametrize("argv, needle", [
    (["--method", "magic"], "unknown method 'magic'"),
    (["--threads", "0"], "--threads must be a whole number from 1 to 1024"),
    (["--model", "mlp"], "mlp"),
])
def test_profile_checks_arguments_before_detecting_the_device(xeon, monkeypatch, capsys, argv, needle):
    import costmodels.measure.detect as detect

    def boom(*a, **k):
        raise AssertionError("device detection ran before the argument checks")

    monkeypatch.setattr(detect, "detect_profile", boom)
    try:
        rc = main(["profile", "--dataset", "cora", "--out", str(xeon / "out"), *argv])
    except SystemExit as exc:  # checked by argparse, at parse time
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and needle in err
    assert not (xeon / "out").exists()


@requires_cora
def test_profile_and_calibrate_run_on_a_cpu_with_no_shipped_profile(xeon):
    out = xeon / "p"
    rc = main(["profile", "--model", "gcn", "--dataset", "cora", "--method", "dense", "--threads", "1",
               "--repeats", "1", "--warmup", "0", "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads((out / "profile.json").read_text())
    assert res["device_profile"] == "host-cpu-intel-xeon-2core" and res["measured_on"] == XEON
    assert res["device_profile_path"].startswith("<measured on this host")
    [row] = res["rows"]
    assert row["predicted_s"] > 0 and row["measured_s"] > 0

    report = xeon / "cal.json"
    rc = main(["calibrate", "--models", "gcn", "--datasets", "cora", "--sparsities", "0,0.5,0.9",
               "--rounds", "1", "--per-round", "1", "--warmup", "0", "--holdout-every", "2", "--no-fit-memory",
               "--report", str(report), "--json", "--allow-busy", "--force"])  # load/fit checks: test_calibrate_load
    assert rc == 0
    written = xeon / "home" / "calibrated" / "host-cpu-intel-xeon-2core.toml"
    assert json.loads(report.read_text())["output"] == str(written) and written.is_file()
    cal = DeviceProfile.from_toml(written)
    assert "calibration" in cal.sections and cal.sections["calibration"]["machine"].startswith(XEON)

    rc = main(["profile", "--model", "gcn", "--dataset", "cora", "--method", "dense", "--threads", "1",
               "--repeats", "1", "--warmup", "0", "--out", str(out), "--json", "--overwrite"])  # the first run's
    assert rc == 0
    res = json.loads((out / "profile.json").read_text())
    assert res["device_profile"] == "calibrated/host-cpu-intel-xeon-2core"
    assert res["device_profile_path"] == str(written)


@requires_cora
def test_profile_epoch_is_the_training_step(monkeypatch):
    """Three profiled epochs of the random method's phase give the losses `codesign train` computes."""
    from codesign.graphs.config import GraphTrainConfig
    from codesign.graphs.methods import common, get_method

    seen: list[float] = []
    real = common.train_step
    monkeypatch.setattr(common, "train_step", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    cfg = GraphTrainConfig(model="gcn", dataset="cora", method="random", seed=3, epochs=3, graph_sparsity=0.3,
                           weight_sparsity=0.4)
    get_method("random")(common.RunContext(cfg, DATA("cora"), torch.device("cpu"), progress=False))
    runner = EpochRunner(WorkloadConfig("gcn", "cora", 0.3, 0.4, seed=3), DATA("cora"))
    losses = []
    for _ in range(3):
        runner.forward()
        assert runner._loss is not None
        losses.append(float(runner._loss.detach()))
        runner.backward()
        runner.optimizer_step()
    assert losses == seen  # same masks, same seed, same weight decay (first layer only), same dropout draws


@requires_cora
def test_search_epoch_is_gebts_and_prices_per_layer_graphs():
    r = EpochRunner(WorkloadConfig("gcn", "cora", 0.2, 0.5, trainable_graph=True, mask_update=True,
                                   phase="search"), DATA("cora"))
    assert [n for n, _ in r.phases()] == ["weight_step", "graph_step", "mask_update"]
    assert r.search is not None and tuple(r.search.theta.shape) == (2, 10556 // 2)  # one row per layer
    theta0 = r.search.theta.detach().clone()
    r.epoch()
    assert not torch.equal(theta0, r.search.theta.detach())
    wl = r.workload()
    assert float(wl.extra_trainable) == 2 * 10556 / 2 and wl.graph_step
    pred = predicted_passes(wl, load_profile("cloud-cpu-2core"), training=True)
    assert set(pred) == {"weight_step", "graph_step", "mask_update"}
    total = float(price_workload(wl, load_profile("cloud-cpu-2core"), training=True).latency_s)
    assert sum(p["latency_s"] for p in pred.values()) == pytest.approx(total)


def test_search_epoch_prices_the_weight_step_and_the_edge_value_step():
    spec, dev = GNNSpec("gcn"), load_profile("cloud-cpu-2core")
    joint = gnn_phase_workload(spec, CORA, PhaseSpec("s", 1, trainable_graph=True, mask_update=True))
    alt = gnn_phase_workload(spec, CORA, PhaseSpec("s", 1, trainable_graph=True, mask_update=True,
                                                   graph_training="alternate"))
    frozen = gnn_phase_workload(spec, CORA, PhaseSpec("s", 1, trainable_graph=True, mask_update=True,
                                                      graph_training="frozen-weights"))
    c = {k: price_workload(w, dev, training=True) for k, w in (("joint", joint), ("alt", alt), ("frozen", frozen))}
    # alternate = a weight step + an edge-value step (a second forward and backward): more than one joint pass
    assert float(c["alt"].flops) > float(c["joint"].flops) > float(c["frozen"].flops)
    assert not [op for op in frozen.ops if not op.name.startswith("search.")]  # no weight step
    # the edge-value step trains no weights: its GEMMs compute no weight gradient
    assert all(not getattr(op, "trainable", False) for op in alt.graph_step)
    copies = gnn_phase_workload(spec, CORA, PhaseSpec("s", 1, trainable_graph=True, graph_training="alternate",
                                                      graph_copies=2))
    assert float(copies.extra_trainable) == 2 * float(alt.extra_trainable)


def test_input_features_are_counted_once_in_memory():
    wl = gnn_phase_workload(GNNSpec("gcn"), CORA, PhaseSpec("t", 1))
    mem = memory_breakdown(wl, context_for(None), training=True)
    assert float(mem["inputs"]) == 2708 * 1433 * 4
    assert float(mem["activations"]) < 2708 * 1433 * 4 / 10  # X is not saved a second time for layer 1
    gin = memory_breakdown(gnn_phase_workload(GNNSpec("gin"), CORA, PhaseSpec("t", 1)), context_for(None),
                           training=True)
    assert float(gin["workspace"]) == 2708 * 1433 * 4  # the product A h (the base is added in place), N x F_in
    sage = memory_breakdown(gnn_phase_workload(GNNSpec("sage"), CORA, PhaseSpec("t", 1)), context_for(None),
                            training=True)
    assert float(sage["workspace"]) == 2 * 2708 * 1433 * 4  # the sum and its quotient by the degree


def test_estimate_prices_per_layer_graphs(capsys):
    rc = main(["estimate", "--model", "gcn", "--dataset", "cora", "--device", "cloud-cpu-2core", "--layers", "3",
               "--json"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    [search] = [r for r in rows if r["phase"] == "search_epoch"]
    spec = GNNSpec("gcn", layers=3)
    cpu = load_profile("cloud-cpu-2core")  # prices Cora's 1.3%-dense features as CSR products: its measured density
    wl = gnn_phase_workload(spec, GRAPHS["cora"], PhaseSpec("search_epoch", 1, trainable_graph=True, mask_update=True,
                                                            graph_copies=3, graph_training="alternate"))
    assert search["flops"] == pytest.approx(float(price_workload(wl, cpu, training=True).flops))
    one = gnn_phase_workload(spec, GRAPHS["cora"], PhaseSpec("search_epoch", 1, trainable_graph=True, mask_update=True))
    assert search["flops"] != pytest.approx(float(price_workload(one, cpu, training=True).flops))


def test_profile_says_when_a_calibrated_profile_was_fitted_on_another_cpu():
    """The shipped calibrated profile, fitted on a 2-core AMD EPYC, read on an Intel Xeon 11 of 16 rows within 25%
    (mean |error| 22%): `profile` says so rather than present the numbers as this machine's calibration."""
    from codesign.cli.profile import calibrated_elsewhere

    fitted = "AMD EPYC (2 CPU cores)"
    assert calibrated_elsewhere(fitted, "Intel(R) Xeon(R) Processor") == fitted
    assert calibrated_elsewhere(fitted, "AMD EPYC 7B13") is None
    assert calibrated_elsewhere(None, "Intel(R) Xeon(R) Processor") is None  # a datasheet profile
