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
