"""CPU meter: timing, peak RSS, RAPL (fake powercap tree), estimated energy, none; profile matching."""

from __future__ import annotations

import dataclasses

import pytest

from costmodels.errors import MeasurementError
from costmodels.measure import CPUMeter, CPUPowerModel, Measurement, RaplReader, make_meter
from costmodels.measure.detect import match_profile


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fake_rapl(root, domains: dict[str, tuple[int, int]]) -> None:
    """Write ``intel-rapl:N/energy_uj`` and ``max_energy_range_uj`` files under ``root``."""
    for name, (energy, max_range) in domains.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")


def test_estimated_energy_from_power_model_says_so(tmp_path):
    clock = Clock()
    pm = CPUPowerModel(static_power_w=2.0, max_power_w=7.0, cores=2, source="profile cloud-cpu-2core")
    m = CPUMeter(pm, rapl_root=str(tmp_path), clock=clock)
    assert m.energy_source == "estimated" and not m.can_measure_energy
    w = m.begin_window("epoch")
    clock.t += 2.0
    r = m.end_window(w)
    # E = 2 W * 2 s + (7 - 2) / 2 W per busy core * cpu_time
    assert r.energy_j == pytest.approx(4.0 + 2.5 * r.cpu_time_s)
    assert r.energy_above_idle_j == pytest.approx(2.5 * r.cpu_time_s)
    assert r.energy_source == "estimated" and "estimated-from:profile cloud-cpu-2core" in r.flags
    assert r.peak_rss_bytes > 10_000_000  # a Python process with numpy holds > 10 MB
    assert r.gpu_time_s is None and r.peak_memory_bytes is None


def test_no_energy_source_is_none_not_zero(tmp_path):
    m = CPUMeter(None, rapl_root=str(tmp_path))
    with m.window("w") as w:
        sum(range(1000))
    assert w.measurement.energy_source == "none" and w.measurement.energy_j is None
    assert w.measurement.wall_s > 0


def test_rapl_sums_packages_handles_wraparound_and_skips_subdomains(tmp_path):
    fake_rapl(tmp_path, {"intel-rapl:0": (999_000_000, 1_000_000_000), "intel-rapl:1": (5_000_000, 10**9),
                         "intel-rapl:0:0": (1, 10**9)})
    m = CPUMeter(None, rapl_root=str(tmp_path))
    assert m.energy_source == "rapl" and len(m.rapl.domains) == 2
    w = m.begin_window("w")
    # package 0 wraps: 999 J -> 1 J at a 1000 J range = 2 J; package 1: 5 J -> 8 J = 3 J
    fake_rapl(tmp_path, {"intel-rapl:0": (1_000_000, 10**9), "intel-rapl:1": (8_000_000, 10**9)})
    r = m.end_window(w)
    assert r.energy_source == "rapl" and r.energy_j == pytest.approx(5.0)
    assert make_meter("cpu", rapl_root=str(tmp_path), require_energy=True).can_measure_energy


def test_unreadable_rapl_is_skipped(tmp_path):
    (tmp_path / "intel-rapl:0").mkdir()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("not a number")
    assert not RaplReader(str(tmp_path)).available


def test_measure_energy_on_cpu_without_rapl_is_one_line(tmp_path):
    with pytest.raises(MeasurementError) as err:
        make_meter("cpu", rapl_root=str(tmp_path), require_energy=True)
    assert "\n" not in str(err.value) and "--measure-energy" in str(err.value)


def test_measurement_invariants_and_per_repeat():
    with pytest.raises(ValueError):
        Measurement("x", 1.0, 1.0, "nvml-counter", energy_j=None)
    with pytest.raises(ValueError):
        Measurement("x", 1.0, 1.0, "none", energy_j=0.0)
    with pytest.raises(ValueError):
        Measurement("x", 1.0, 1.0, "magic", energy_j=1.0)
    m = Measurement("x", 2.0, 1.0, "rapl", energy_j=10.0, energy_above_idle_j=4.0, avg_power_w=5.0,
                    peak_rss_bytes=100)
    r = m.per_repeat(4)
    assert (r.wall_s, r.cpu_time_s, r.energy_j, r.energy_above_idle_j) == (0.5, 0.25, 2.5, 1.0)
    assert (r.avg_power_w, r.peak_rss_bytes, r.repeats) == (5.0, 100, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.wall_s = 3.0  # type: ignore[misc]
    assert m.to_dict()["energy_source"] == "rapl"


def test_profile_matching():
    names = ["h100", "h200", "cloud-cpu-2core", "calibrated/cloud-cpu-2core"]
    assert match_profile("NVIDIA H100 80GB HBM3", kind="gpu", available=names) == "h100"
    assert match_profile("NVIDIA H200", kind="gpu", available=names) == "h200"
    assert match_profile("AMD EPYC", kind="cpu", cores=2, available=names) == "calibrated/cloud-cpu-2core"
    assert match_profile("AMD EPYC", kind="cpu", cores=2, available=names,
                         prefer_calibrated=False) == "cloud-cpu-2core"
    with pytest.raises(MeasurementError, match="--device-profile"):
        match_profile("Intel Xeon", kind="cpu", cores=64, available=names)


def test_rapl_leaves_out_the_platform_domain_that_contains_the_packages(tmp_path):
    """Client Intel CPUs list ``psys`` (the whole platform, package included) as a top-level domain
    ``intel-rapl:1`` beside ``package-0``: summing both counted the package twice."""
    fake_rapl(tmp_path, {"intel-rapl:0": (1_000_000, 10**9), "intel-rapl:1": (4_000_000, 10**9)})
    (tmp_path / "intel-rapl:0" / "name").write_text("package-0\n")
    (tmp_path / "intel-rapl:1" / "name").write_text("psys\n")
    m = CPUMeter(None, rapl_root=str(tmp_path))
    assert [p.split("/")[-2] for p, _ in m.rapl.domains] == ["intel-rapl:0"]
    w = m.begin_window("w")
    fake_rapl(tmp_path, {"intel-rapl:0": (3_000_000, 10**9), "intel-rapl:1": (9_000_000, 10**9)})
    assert m.end_window(w).energy_j == pytest.approx(2.0)  # the package's 2 J, not 2 J + psys's 5 J
