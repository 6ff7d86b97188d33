"""NVML meter against a fake NVML: counter, missing counter, short windows, idle, no NVML."""

from __future__ import annotations

import time

import pytest
from fake_nvml import FakeClock, FakeNVML

from costmodels.errors import MeasurementError
from costmodels.measure import CPUMeter, NVMLMeter, make_meter, trapezoid_j


def meter(nvml: FakeNVML, clock: FakeClock, **kw) -> NVMLMeter:
    kw.setdefault("idle_power_w", 70.0)
    return NVMLMeter(nvml=nvml, clock=clock, sleep=lambda s: clock.advance(s), **kw)


def test_counter_window_reports_counter_energy_and_above_idle():
    clock = FakeClock()
    m = meter(FakeNVML(clock, power_w=250.0), clock)
    with m.window("epoch") as w:
        clock.advance(2.0)
    r = w.measurement
    assert r.energy_source == "nvml-counter"
    assert r.energy_j == pytest.approx(500.0)  # 250 W x 2 s
    assert r.energy_above_idle_j == pytest.approx(500.0 - 70.0 * 2.0)
    assert r.avg_power_w == pytest.approx(250.0)
    assert r.wall_s == pytest.approx(2.0)
    assert r.device_name == "Fake H100 80GB HBM3"
    assert r.driver_version == "550.54.15"
    assert r.power_limit_w == pytest.approx(700.0)
    assert (r.sm_clock_mhz, r.memory_clock_mhz) == (1980, 2619)
    assert r.flags == () or r.flags == ("rss-lifetime-peak",)
    assert m.measurements == [r]


def test_idle_power_measured_once_at_open():
    clock = FakeClock()
    nvml = FakeNVML(clock, power_w=62.5)
    m = NVMLMeter(nvml=nvml, clock=clock, sleep=clock.advance, idle_s=0.5, sample_period_s=0.1)
    assert m.idle_power_w == pytest.approx(62.5)
    nvml.power = 300.0
    with m.window("w") as w:
        clock.advance(1.0)
    assert w.measurement.idle_power_w == pytest.approx(62.5)
    assert w.measurement.energy_above_idle_j == pytest.approx(300.0 - 62.5)


def test_short_window_never_reports_zero_joules():
    clock = FakeClock()
    m = meter(FakeNVML(clock, power_w=200.0, period_s=0.1), clock)
    with m.window("tiny") as w:
        clock.advance(0.03)  # shorter than the 100 ms counter period: the counter does not move
    r = w.measurement
    assert r.energy_source == "power-integration"
    assert "short-window" in r.flags and "counter-did-not-move" in r.flags
    assert r.energy_j == pytest.approx(200.0 * 0.03)
    assert r.energy_j > 0


def test_zero_length_window_is_flagged_not_crashing():
    clock = FakeClock()
    m = meter(FakeNVML(clock, power_w=200.0), clock)
    with m.window("empty") as w:
        pass
    r = w.measurement
    assert r.wall_s == 0.0
    assert r.energy_source == "power-integration" and "short-window" in r.flags
    assert r.energy_j == 0.0 and r.avg_power_w == pytest.approx(200.0)


def test_repeating_short_work_reaches_the_counter():
    clock = FakeClock()
    m = meter(FakeNVML(clock, power_w=200.0), clock)
    r = m.measure(lambda: clock.advance(0.01), "step", min_window_s=0.5)
    assert r.repeats == 50
    assert r.energy_source == "nvml-counter"
    assert r.wall_s == pytest.approx(0.01)
    assert r.energy_j == pytest.approx(2.0)  # 200 W x 10 ms
    assert m.measurements == [r]


def test_device_without_counter_integrates_power_in_a_thread():
    nvml = FakeNVML(time.perf_counter, power_w=lambda t: 150.0, has_counter=False)
    m = NVMLMeter(nvml=nvml, idle_power_w=50.0, sample_period_s=0.005)
    assert not m.has_counter
    with m.window("epoch") as w:
        time.sleep(0.05)
    r = w.measurement
    assert r.energy_source == "power-integration"
    assert "no-energy-counter" in r.flags and "short-window" in r.flags
    assert r.energy_j == pytest.approx(150.0 * r.wall_s, rel=1e-6)
    assert r.energy_above_idle_j == pytest.approx(100.0 * r.wall_s, rel=1e-6)


def test_trapezoid_integrates_a_ramp_exactly():
    # P(t) = 100 + 50 t over 2 s -> 200 + 100 = 300 J
    samples = [(t / 10, 100 + 50 * t / 10) for t in range(21)]
    assert trapezoid_j(samples) == pytest.approx(300.0)


def test_missing_nvml_is_a_measurement_error_with_a_fix():
    clock = FakeClock()
    with pytest.raises(MeasurementError, match="NVML unavailable.*without --measure-energy"):
        meter(FakeNVML(clock, present=False), clock)


def test_make_meter_falls_back_to_cpu_quietly_and_fails_loudly_when_energy_asked(tmp_path):
    clock = FakeClock()
    absent = FakeNVML(clock, present=False)
    m = make_meter("auto", nvml=absent, rapl_root=str(tmp_path))
    assert isinstance(m, CPUMeter) and m.energy_source == "none"
    with pytest.raises(MeasurementError) as err:
        make_meter("auto", nvml=absent, rapl_root=str(tmp_path), require_energy=True)
    msg = str(err.value)
    assert "\n" not in msg and "NVML unavailable" in msg and "RAPL" in msg and "drop --measure-energy" in msg
    with pytest.raises(MeasurementError, match="NVML unavailable"):
        make_meter("gpu", nvml=absent)


def test_make_meter_uses_nvml_when_present():
    clock = FakeClock()
    m = make_meter("auto", nvml=FakeNVML(clock), clock=clock, idle_power_w=60.0)
    assert isinstance(m, NVMLMeter) and m.can_measure_energy
    m.close()
