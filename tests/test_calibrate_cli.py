"""`codesign calibrate` end to end on a tiny sweep (real epochs on Cora; numbers are not asserted
against targets here - benchmarks/calibration.py does that - only their consistency)."""

from __future__ import annotations

import json

import pytest
import torch
from datasets_available import requires_cora

from codesign.cli import main
from costmodels import load_profile
from costmodels.calibrate import mape


@requires_cora
def test_calibrate_writes_a_loadable_profile_and_report(tmp_path, capsys):
    out, report = tmp_path / "calibrated" / "cloud-cpu-2core.toml", tmp_path / "cal.json"
    rc = main(["calibrate", "--models", "gcn,sage", "--datasets", "cora", "--sparsities", "0,0.5,0.9",
               "--rounds", "1", "--per-round", "2", "--warmup", "1", "--allocator", "default", "--no-search-epochs",
               "--device-profile", "cloud-cpu-2core", "--output", str(out), "--report", str(report),
               "--allow-busy", "--force"])  # the load and fit checks are tested in test_calibrate_load.py
    text = capsys.readouterr().out
    assert rc == 0 and "held-out epoch-time MAPE (cpu time, 2 workloads)" in text
    rep = json.loads(report.read_text())
    held = [r for r in rep["rows"] if r["split"] == "held-out"]
    assert len(rep["rows"]) == 6 and len(held) == 2
    assert rep["mape_before"] == pytest.approx(mape([r["before_s"] for r in held], [r["measured_s"] for r in held]))
    assert rep["mape_after"] == pytest.approx(mape([r["after_s"] for r in held], [r["measured_s"] for r in held]))
    prof = load_profile(str(out))
    assert prof.name == "cloud-cpu-2core" and "(calibrated)" in prof.display_name
    assert prof.value("calibration", "mape_after") == pytest.approx(rep["mape_after"], abs=1e-6)
    assert "models=gcn,sage" in prof.value("calibration", "sweep")
    assert prof.efficiency("gemm") == pytest.approx(rep["efficiency"]["gemm"], rel=1e-5)
    assert prof.efficiency("conv") == load_profile("cloud-cpu-2core").efficiency("conv")  # not in the sweep
    assert prof.static_power_w == load_profile("cloud-cpu-2core").static_power_w  # energy not measured


def test_calibrate_bad_input_is_one_line(capsys):
    assert main(["calibrate", "--sparsities", "0,1.5"]) == 2
    assert "--sparsities" in capsys.readouterr().err
    assert main(["calibrate", "--models", ""]) == 2
    assert "--models is empty" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["calibrate", "--run-on", "cuda"]) == 2
        assert "torch sees no CUDA device" in capsys.readouterr().err


SHIPPED_SWEEP = "profiles/calibrated/cloud-cpu-2core.measurements.json"


@requires_cora
def test_refit_from_the_shipped_sweep_reproduces_the_shipped_profile(tmp_path, capsys):
    """The shipped calibrated profile is the fit of the sweep shipped beside it: a refit measures nothing
    and gives the same efficiencies and errors (the fit is deterministic)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    out, report = tmp_path / "refit.toml", tmp_path / "refit.json"
    rc = main(["calibrate", "--device-profile", "cloud-cpu-2core", "--refit-from", str(repo / SHIPPED_SWEEP),
               "--output", str(out), "--report", str(report)])
    assert rc == 0, capsys.readouterr().err
    refit, shipped = load_profile(str(out)), load_profile("calibrated/cloud-cpu-2core")
    for cls in ("gemm", "aggregation", "elementwise"):
        assert refit.efficiency(cls) == pytest.approx(shipped.efficiency(cls), rel=1e-6)
    assert refit.value("calibration", "mape_after") == pytest.approx(shipped.value("calibration", "mape_after"))
    assert refit.value("calibration", "mape_after") < 0.10 and refit.value("calibration", "busy") is False
    assert refit.value("calibration", "load").endswith("quiet by the limits of costmodels.measure.load")
    assert "quiet by the limits" in shipped.value("calibration", "load")
    assert refit.value("threads", "kernel_overhead_us") == pytest.approx(shipped.value("threads", "kernel_overhead_us"))
    rep = json.loads(report.read_text())
    assert rep["measure_s"] == 0.0 and rep["refit_from"].endswith("cloud-cpu-2core.measurements.json")


@requires_cora
def test_refit_from_a_busy_or_other_sweep_is_one_line(tmp_path, capsys):
    from pathlib import Path

    sweep = json.loads((Path(__file__).resolve().parents[1] / SHIPPED_SWEEP).read_text())
    busy = tmp_path / "busy.json"
    busy.write_text(json.dumps({**sweep, "busy": ["during the sweep: load 3.1 per core besides ours"]}))
    out = tmp_path / "p.toml"
    for argv, needle in [
        (["--refit-from", str(busy)], "were taken on a busy machine (during the sweep: load 3.1"),
        (["--refit-from", str(tmp_path / "none.json")], "not a calibrate report"),
        (["--refit-from", str(busy), "--allow-busy", "--sparsities", "0.5"], "has no measurement of gcn/cora/g0.5"),
    ]:
        rc = main(["calibrate", "--device-profile", "cloud-cpu-2core", "--output", str(out), *argv])
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_calibrate_sweeps_each_model_at_its_own_default_width():
    """One default per architecture: calibrate measured every model at hidden 16, GAT included, while train,
    profile and estimate run GAT at 8 per head; the shipped sweep says which widths it measured (each
    model's own: hidden None, GAT 8 per head)."""
    from pathlib import Path

    from codesign.machine.profiling import sweep_grid
    from costmodels.workloads import default_hidden

    grid = sweep_grid(["gcn", "gat"], ["cora"], [0.0], hidden=None)
    assert [c.hidden for c in grid] == [default_hidden("gcn"), default_hidden("gat")] == [16, 8]
    sweep = json.loads((Path(__file__).resolve().parents[1] / SHIPPED_SWEEP).read_text())
    assert (sweep["hidden"], sweep["heads"]) == (None, 8)  # per-model widths; reports without "hidden" mean 16


@requires_cora
def test_refit_reads_sparsities_as_the_sweep_does(tmp_path, capsys):
    """--refit-from builds its grid from the checked --sparsities list: a trailing comma or spaces, which a
    measuring run accepts, once ended the refit in a ValueError traceback (float(''))."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "refit.toml"
    rc = main(["calibrate", "--device-profile", "cloud-cpu-2core", "--refit-from", str(repo / SHIPPED_SWEEP),
               "--sparsities", "0, 0.3,0.6,0.9,", "--no-fit-memory", "--output", str(out),
               "--report", str(tmp_path / "refit.json")])
    assert rc == 0, capsys.readouterr().err
    assert load_profile(str(out)).value("calibration", "busy") is False


@requires_cora
def test_a_report_another_run_wrote_meanwhile_is_not_replaced(tmp_path, monkeypatch, capsys):
    """The report's name is checked when the run starts and again before anything is written: a run that
    finished meanwhile keeps its report (a default one moves on to calibration-2.json; a given one stops the
    run, nothing written). Before, the later run replaced the earlier one's report."""
    from pathlib import Path

    import codesign.machine.calibration as calibration

    repo = Path(__file__).resolve().parents[1]
    real = calibration.sweep_and_fit
    monkeypatch.chdir(tmp_path)

    def other_run_finishes(report):
        def sweep_and_fit(*a, **k):
            res = real(*a, **k)
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text('{"other": "run"}\n')
            return res
        return sweep_and_fit

    argv = ["calibrate", "--device-profile", "cloud-cpu-2core", "--refit-from", str(repo / SHIPPED_SWEEP),
            "--no-fit-memory"]
    default = tmp_path / "runs/calibrate/calibration.json"
    monkeypatch.setattr(calibration, "sweep_and_fit", other_run_finishes(default))
    assert main([*argv, "--output", str(tmp_path / "a.toml")]) == 0, capsys.readouterr().err
    assert json.loads(default.read_text()) == {"other": "run"}
    assert json.loads((tmp_path / "runs/calibrate/calibration-2.json").read_text())["output"].endswith("a.toml")
    given = tmp_path / "mine.json"
    monkeypatch.setattr(calibration, "sweep_and_fit", other_run_finishes(given))
    assert main([*argv, "--output", str(tmp_path / "b.toml"), "--report", str(given)]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run's results" in err and len(err.strip().splitlines()) == 1
    assert json.loads(given.read_text()) == {"other": "run"} and not (tmp_path / "b.toml").exists()
