"""Calibration: NNLS, recovery of known efficiencies, and the calibrated profile round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from costmodels.analytical import price_workload
from costmodels.calibrate import (
    Sample,
    calibrated_profile_dict,
    features,
    fit,
    holdout_split,
    mape,
    nnls,
    predict_latency_s,
    write_profile,
)
from costmodels.errors import CodesignError
from costmodels.profiles import DeviceProfile
from costmodels.stats import graph_stats
from costmodels.workloads import GNNSpec, gnn_workload

PROFILE = {
    "name": "test-cpu", "display_name": "Test CPU", "kind": "cpu", "source": "test",
    "compute": {"peak_fp32_tflops": 0.2, "source": "test"},
    "memory": {"dram_bandwidth_gbs": 20.0, "dram_capacity_gb": 16.0, "onchip_buffer_mb": 1.0, "source": "t"},
    "power": {"board_power_w": 60.0, "idle_power_w": 10.0, "static_power_w": 20.0, "source": "t"},
    "energy": {"pj_per_flop_fp32": 10.0, "pj_per_dram_byte": 50.0, "source": "t"},
    "efficiency": {"gemm": 0.5, "conv": 0.5, "aggregation": 0.5, "elementwise": 0.5,
                   "kernel_overhead_us": 5.0, "source": "t"},
    "sparsity": {"weight_sparsity_support": "none", "stores_sparse_weights": False,
                 "sparse_index_bytes": 4.0, "source": "t"},
}


def profile(**eff) -> DeviceProfile:
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in PROFILE.items()}
    data["efficiency"].update(eff)
    return DeviceProfile.from_dict(data, "test")


def grid() -> list[Sample]:
    out = []
    for model in ("gcn", "gat", "sage", "gin"):
        for ds in ("cora", "citeseer"):
            for s in (0.0, 0.3, 0.6, 0.9):
                wl = gnn_workload(GNNSpec(model), graph_stats(ds), graph_density=1 - s, weight_density=1 - s)
                out.append(Sample(f"{model}/{ds}/{s}", wl, measured_latency_s=1.0))
    return out


def test_nnls_matches_hand_solution_with_an_active_bound():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Unconstrained solution of b = (2, -1, 1) is (2, -1): the bound makes x2 = 0, x1 = mean(2, 1) = 1.5.
    x = nnls(a, np.array([2.0, -1.0, 1.0]))
    assert x == pytest.approx([1.5, 0.0])
    # An interior solution is the ordinary least squares one.
    x = nnls(a, np.array([1.0, 2.0, 3.0]))
    assert x == pytest.approx([1.0, 2.0])


def test_nnls_random_problems_satisfy_kkt():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=(12, 5)), rng.normal(size=12)
        x = nnls(a, b)
        g = a.T @ (a @ x - b)  # gradient of 0.5 ||Ax - b||^2
        assert (x >= 0).all()
        assert np.allclose(g[x > 1e-9], 0.0, atol=1e-8)
        assert (g[x <= 1e-9] >= -1e-8).all()


def test_fit_recovers_known_efficiencies_and_overhead():
    truth = profile(gemm=0.31, aggregation=0.07, elementwise=0.12, kernel_overhead_us=40.0)
    samples = [dataclasses.replace(s, measured_latency_s=predict_latency_s(s, truth)) for s in grid()]
    cal = fit(samples, profile())
    assert set(cal.fitted_classes) == {"gemm", "aggregation", "elementwise"}  # no conv in GNNs
    assert cal.efficiency["gemm"] == pytest.approx(0.31, rel=1e-6)
    assert cal.efficiency["aggregation"] == pytest.approx(0.07, rel=1e-6)
    assert cal.efficiency["elementwise"] == pytest.approx(0.12, rel=1e-6)
    assert cal.efficiency["conv"] == 0.5  # prior kept
    assert cal.kernel_overhead_us == pytest.approx(40.0, rel=1e-6)
    assert cal.train_mape < 1e-9
    assert not cal.static_power_fitted and "not measured" in cal.note


def test_fit_caps_efficiency_at_one():
    truth = profile(gemm=1.0, aggregation=1.0, elementwise=1.0, kernel_overhead_us=0.0)
    samples = [dataclasses.replace(s, measured_latency_s=0.5 * predict_latency_s(s, truth)) for s in grid()]
    cal = fit(samples, profile())
    assert all(cal.efficiency[k] == 1.0 for k in cal.fitted_classes)


def test_static_power_fit_from_measured_energy():
    p = profile()
    samples = []
    for s in grid():
        t = predict_latency_s(s, p)
        e = features(s, p).dynamic_energy_j + 35.0 * t
        samples.append(dataclasses.replace(s, measured_latency_s=t, measured_energy_j=e, energy_source="rapl"))
    cal = fit(samples, p)
    assert cal.static_power_fitted and cal.static_power_w == pytest.approx(35.0, rel=1e-6)
    # a workload whose windows mixed the NVML counter with a short power-integrated window is still measured
    samples[0] = dataclasses.replace(samples[0], energy_source="mixed:nvml-counter+power-integration")
    cal = fit(samples, p)
    assert cal.static_power_fitted and cal.static_power_w == pytest.approx(35.0, rel=1e-6)
    assert cal.note == "static power fit to nvml-counter/power-integration/rapl energy"
    samples[1] = dataclasses.replace(samples[1], energy_source="mixed:estimated+rapl")  # an estimate is not
    assert not fit(samples, p).static_power_fitted


def test_static_power_is_fit_over_wall_time_when_the_latency_is_cpu_time():
    """`calibrate --time cpu` fits latency to process CPU time; the static power still draws over the wall
    time of the window (Sample.info['wall_s']). It was fit against the CPU time: 2x the power here."""
    p = profile()
    samples = []
    for s in grid():
        t = predict_latency_s(s, p)
        e = features(s, p).dynamic_energy_j + 35.0 * (2 * t)  # the thread had the CPU half of the window
        samples.append(dataclasses.replace(s, measured_latency_s=t, measured_energy_j=e, energy_source="rapl",
                                           info={"wall_s": 2 * t, "cpu_time_s": t}))
    cal = fit(samples, p)
    assert cal.static_power_fitted and cal.static_power_w == pytest.approx(35.0, rel=1e-6)


def test_calibrated_profile_loads_and_reproduces_the_fit(tmp_path):
    truth = profile(gemm=0.25, aggregation=0.05, elementwise=0.2, kernel_overhead_us=12.0)
    samples = [dataclasses.replace(s, measured_latency_s=predict_latency_s(s, truth)) for s in grid()]
    train, held = holdout_split(samples)
    assert len(held) == len(samples) // 3 + (1 if len(samples) % 3 > 1 else 0) and not set(held) & set(train)
    cal = fit(train, profile())
    data = calibrated_profile_dict(profile(), cal, machine="test box", sweep="4 models x 2 x 4",
                                   mape_before=0.5, mape_after=0.0, date="2026-11-25")
    path = write_profile(data, tmp_path / "calibrated" / "test-cpu.toml")
    loaded = DeviceProfile.from_toml(path)
    assert loaded.value("calibration", "machine") == "test box"
    assert loaded.value("calibration", "date") == "2026-11-25"
    for s in held:
        cost = price_workload(s.workload, loaded, training=True)
        assert float(cost.latency_s) == pytest.approx(s.measured_latency_s, rel=1e-4)


def test_calibrating_a_gpu_profile_keeps_its_2to4_dtype_list(tmp_path):
    # The H200 profile lists the dtypes its sparse tensor cores accelerate; the writer once
    # turned that list into a string, and `calibrate --run-on cuda` failed its own validation.
    base = DeviceProfile.from_toml(Path(__file__).resolve().parents[1] / "profiles" / "h200.toml")
    samples = [dataclasses.replace(s, measured_latency_s=2.0 * predict_latency_s(s, base)) for s in grid()]
    data = calibrated_profile_dict(base, fit(samples, base), machine="gpu box", sweep="grid",
                                   mape_before=0.5, mape_after=0.1, date="2026-12-04")
    loaded = DeviceProfile.from_toml(write_profile(data, tmp_path / "h200.toml"))
    assert loaded.value("sparsity", "weight_sparsity_dtypes") == ["tf32", "fp16", "bf16", "int8", "fp8"]
    assert loaded.weight_sparsity_for("fp16") == base.weight_sparsity_for("fp16") == "2:4"
    assert loaded.weight_sparsity_for("fp32") == "none"


def test_mape_and_bad_input():
    assert mape([1.1, 0.9], [1.0, 1.0]) == pytest.approx(0.1)
    with pytest.raises(CodesignError, match="at least 2"):
        fit(grid()[:1], profile())
    bad = [dataclasses.replace(s, measured_latency_s=0.0) for s in grid()[:3]]
    with pytest.raises(CodesignError, match="positive"):
        fit(bad, profile())


def test_memory_grid_picks_the_effective_bandwidth_and_buffer(tmp_path):
    from costmodels.calibrate import default_memory_grid, with_memory

    truth = with_memory(profile(gemm=0.4, aggregation=0.1, elementwise=0.3, kernel_overhead_us=20.0), 40.0, 0.0)
    samples = [dataclasses.replace(s, measured_latency_s=predict_latency_s(s, truth)) for s in grid()]
    base = profile()
    assert default_memory_grid(base) == [(20.0, 1.0), (20.0, 0.0), (40.0, 1.0), (40.0, 0.0), (80.0, 1.0), (80.0, 0.0)]
    cal = fit(samples, base, memory_grid=default_memory_grid(base))
    assert (cal.dram_bandwidth_gbs, cal.onchip_buffer_mb, cal.memory_fitted) == (40.0, 0.0, True)
    assert cal.efficiency["aggregation"] == pytest.approx(0.1, rel=1e-6) and cal.train_mape < 1e-9
    data = calibrated_profile_dict(base, cal, machine="m", sweep="s", mape_before=0.1, mape_after=0.0)
    loaded = DeviceProfile.from_toml(write_profile(data, tmp_path / "p.toml"))
    assert loaded.dram_bandwidth_bps == 40e9 and loaded.onchip_bytes == 0.0
    assert "effective" in loaded.value("memory", "source")
    # Without the grid, the same data cannot be fit exactly at the profile's memory numbers.
    assert fit(samples, base).train_mape > 0.01
