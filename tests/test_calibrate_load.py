"""Calibration that knows when it cannot be trusted: load readings judged against their limits, the
calibrate command stopping on a busy machine (injected readings, and a real busy process sharing our
CPU), and refusing to write a fit that does not lower the held-out error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from datasets_available import requires_cora

from codesign.cli import main
from codesign.cli.calibrate import refuse_worse_fit
from costmodels.errors import CodesignError
from costmodels.measure import load
from costmodels.measure.load import LoadReading, MeasurementLoad, judge, judge_measurements

QUIET = LoadReading(0.05, 2, 0, 0.0, 0.5)


def _argv(tmp_path, *extra):
    return ["calibrate", "--models", "gcn", "--datasets", "cora", "--sparsities", "0,0.5,0.9", "--rounds", "1",
            "--per-round", "2", "--warmup", "1", "--no-search-epochs", "--no-fit-memory", "--holdout-every", "3",
            "--allocator", "default", "--device-profile", "cloud-cpu-2core",
            "--output", str(tmp_path / "cal.toml"), "--report", str(tmp_path / "cal.json"), "--parallel-threads", "0",
            *extra]


def test_readings_are_judged_against_the_limits():
    assert judge(QUIET) == []
    busy = judge(LoadReading(14.0, 2, 0, None, 0.5))  # issue #20: load average 14-19 on 2 cores
    assert len(busy) == 1 and "load 7.00 per core" in busy[0]
    assert judge(LoadReading(1.2, 2, 1, 0.0, 0.5)) == []  # our own thread is discounted: 0.1 per core
    assert "steal time 10.0%" in judge(LoadReading(0.0, 2, 0, 0.10, 0.5))[0]
    rows = [MeasurementLoad("a", 0.010, 0.0098, 0.0003), MeasurementLoad("b", 0.020, 0.0199, 0.0005)]
    assert judge_measurements(rows, threads=1) == []
    waited = judge_measurements([*rows, MeasurementLoad("c", 0.020, 0.010, 0.0005)], threads=1)
    assert waited == ["CPU time / wall 0.50 < 0.9 (c: the one thread waited for a CPU)"]
    assert judge_measurements([*rows, MeasurementLoad("c", 0.020, 0.010, 0.0005)], threads=2) == []  # 2 threads
    # every window ~1.0 (short epochs inside the scheduler's slice), but the thread waited between them
    slices = judge_measurements(rows, threads=1, whole=(2.0, 1.1))
    assert slices and "CPU time / wall 0.55" in slices[0] and "the whole sweep, 2.0 s" in slices[0]
    assert judge_measurements(rows, threads=1, whole=(2.0, 1.95)) == []
    spread = judge_measurements([MeasurementLoad("d", 0.010, 0.0099, 0.004)], threads=1)
    assert spread == ["repeat spread (IQR / median) 40% > 15% (d)"]
    # one noisy workload among quiet ones is not a busy machine: the median workload is judged
    quiet = [MeasurementLoad(f"q{i}", 0.010, 0.0099, 0.0003) for i in range(4)]
    assert judge_measurements([*quiet, MeasurementLoad("noisy", 0.010, 0.0099, 0.003)], threads=1) == []
    busy = [MeasurementLoad(f"b{i}", 0.010, 0.0099, 0.004) for i in range(3)]
    assert judge_measurements([*busy, *quiet[:2]], threads=1) == [
        "repeat spread (IQR / median) 40% > 15% (median of 5 workloads, e.g. b0)"]


def test_the_cpu_busy_reading_judges_now_not_the_lagging_load_average():
    # right after a sweep of our own the 1-minute load average still reads high on a quiet machine
    assert judge(LoadReading(1.6, 2, 0, 0.0, 0.5, busy_fraction=0.03)) == []
    busy = judge(LoadReading(0.1, 2, 0, 0.0, 0.5, busy_fraction=0.6))
    assert busy == ["CPUs 60% busy besides us over 0.5 s (load average 0.10 on 2 cores) > 25%"]


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat (Linux)")
def test_read_load_sees_a_busy_process_at_once():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        reading = load.read_load(window_s=0.5)
    finally:
        spin.kill()
        spin.wait()
    cpus = os.cpu_count() or 1
    assert reading.busy_fraction is not None and reading.busy_fraction >= 0.7 / cpus  # one CPU of all, spinning
    assert "busy besides us" in reading.summary()


@requires_cora
def test_calibrate_stops_before_the_sweep_on_a_loaded_machine(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(load, "read_load", lambda own_threads=0, window_s=0.5: LoadReading(16.0, 2, own_threads,
                                                                                          0.0, 0.5))

    def never(*a, **k):
        raise AssertionError("the sweep ran on a busy machine")

    monkeypatch.setattr("codesign.machine.calibration.sweep_and_fit", never)
    assert main(_argv(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "machine too busy to calibrate (before the sweep): load 8.00 per core" in err and "--allow-busy" in err
    assert not (tmp_path / "cal.toml").exists() and not (tmp_path / "cal.json").exists()


def _pin_to_one_cpu():
    cpus = sorted(os.sched_getaffinity(0))
    return cpus, {cpus[0]}


def _pin_every_thread(cpus) -> None:
    """Pin every thread of this process (``sched_setaffinity(0)`` pins only the calling one): the sweep's CPU time
    is the process's, so a thread of an earlier test (an OpenMP worker) left free on another CPU would add to it."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # the thread ended meanwhile
            pass


@requires_cora
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self/task"),
                    reason="needs CPU affinity and /proc (Linux)")
def test_calibrate_stops_when_a_busy_process_shares_its_cpu(tmp_path, monkeypatch, capsys):
    """A real busy process pinned to the CPU the sweep is pinned to: the sweep's one-thread epochs get
    about half the CPU (CPU time / wall ~0.5 < 0.9), whatever else the machine runs."""
    monkeypatch.setattr(load, "read_load", lambda own_threads=0, window_s=0.5: QUIET)  # only the busy process
    cpus, one = _pin_to_one_cpu()
    spin = f"import os\nos.sched_setaffinity(0, {one!r})\nwhile True: pass"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.2)
        _pin_every_thread(one)
        rc = main(_argv(tmp_path))
    finally:
        _pin_every_thread(cpus)
        busy.kill()
        busy.wait()
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "(during the sweep): CPU time / wall" in err and "the one thread waited for a CPU" in err
    assert not (tmp_path / "cal.toml").exists()


@requires_cora
def test_allow_busy_fits_anyway_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(load, "read_load", lambda own_threads=0, window_s=0.5: LoadReading(16.0, 2, own_threads,
                                                                                          0.0, 0.5))
    assert main(_argv(tmp_path, "--allow-busy", "--force")) == 0
    from costmodels import load_profile

    prof = load_profile(str(tmp_path / "cal.toml"))
    assert prof.value("calibration", "busy") is True
    assert "FITTED ON A BUSY MACHINE" in prof.value("calibration", "source")
    assert "load average 16.00 on 2 usable cores" in prof.value("calibration", "load")


@requires_cora
def test_a_fit_that_does_not_lower_the_held_out_error_is_refused(tmp_path, monkeypatch, capsys):
    with pytest.raises(CodesignError, match=r"held-out epoch-time MAPE 71.2% is not lower than .* 23.2%: not written"):
        refuse_worse_fit(0.232, 0.712, force=False)  # the 2-workload sweep
    assert refuse_worse_fit(0.232, 0.100, force=False) is False
    assert refuse_worse_fit(0.232, 0.712, force=True) is True
    assert "written anyway (--force)" in capsys.readouterr().err

    import codesign.machine.calibration as calibration

    real = calibration.sweep_and_fit

    def worse(*args, **kwargs):  # the real sweep and fit, reported as worse than the base profile
        res = real(*args, **kwargs)
        return SimpleNamespace(**{**res.__dict__, "mape_before": 0.232, "mape_after": 0.712})

    monkeypatch.setattr(load, "read_load", lambda own_threads=0, window_s=0.5: QUIET)
    monkeypatch.setattr(load, "judge_measurements", lambda rows, threads, limits=None, whole=None: [])
    monkeypatch.setattr(calibration, "sweep_and_fit", worse)
    assert main(_argv(tmp_path)) == 2
    assert "not lower than the base profile's 23.2%: not written" in capsys.readouterr().err
    assert not (tmp_path / "cal.toml").exists() and not (tmp_path / "cal.json").exists()
    assert main(_argv(tmp_path, "--force")) == 0
    from costmodels import load_profile

    assert load_profile(str(tmp_path / "cal.toml")).value("calibration", "forced") is True
