"""Calibration sweeps: measure a grid of training epochs (``codesign.machine.profiling``) and fit a device
profile to them (``costmodels.calibrate``), at one thread and again at more (the ``[threads]`` section);
or fit the measurements an earlier sweep recorded in its report (:func:`recorded_stats`, ``codesign
calibrate --refit-from``). Scores the base and the fitted profile on held-out workloads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from costmodels.errors import CodesignError
from costmodels.measure import Meter

from .profiling import DataCache, EpochRunner, EpochStats, WorkloadConfig, epoch_time, measure_grid


def recorded_stats(rows: Sequence[dict[str, Any]], time_measure: str) -> dict[str, EpochStats]:
    """A calibration report's measurements (its ``rows``, or its ``threads`` rows) as :class:`EpochStats`
    by workload label, for a refit without measuring again (``codesign calibrate --refit-from``)."""
    out = {}
    for r in rows:
        wall = float(r.get("wall_s", r["measured_s"]))
        cpu = float(r["measured_s"]) if time_measure == "cpu" else 0.0
        out[r["workload"]] = EpochStats(r["workload"], wall, float(r["wall_iqr_s"]), cpu, None, None, "none",
                                        None, None, 0, ("recorded",))
    return out


def _measure(grid: Sequence[WorkloadConfig], meter: Meter | None, data: DataCache, device: str, *, rounds: int,
             per_round: int, warmup: int, progress: bool, min_window_s: float = 0.0,
             check_measurements: Callable[[list[EpochStats]], None] | None = None,
             recorded: dict[str, EpochStats] | None = None,
             ) -> tuple[list[EpochRunner], list[EpochStats], float]:
    """The training code's epochs of ``grid`` under ``meter``: (runners, stats, seconds of measuring);
    ``check_measurements(stats)`` runs right after (raises to stop: a busy machine). ``recorded``:
    take the stats from an earlier sweep (:func:`recorded_stats`) instead of measuring."""
    import time

    t0 = time.perf_counter()
    if recorded is not None:
        missing = [c.label for c in grid if c.label not in recorded]
        if missing:
            raise CodesignError(f"the recorded sweep has no measurement of {missing[0]} ({len(missing)} missing): "
                                "refit with the --models, --datasets, --sparsities and --search-epochs it was "
                                "measured with")
    runners = [EpochRunner(c, data(c.dataset), device) for c in grid]
    if recorded is not None:
        return runners, [recorded[c.label] for c in grid], 0.0
    assert meter is not None
    stats = measure_grid(runners, meter, rounds=rounds, per_round=per_round, warmup=warmup, progress=progress,
                         min_window_s=min_window_s)
    measure_s = time.perf_counter() - t0
    if check_measurements is not None:
        check_measurements(stats)
    return runners, stats, measure_s


def _predict(profile: Any, sample: Any) -> float:
    """The profile's training-epoch time of a measured sample's workload."""
    from costmodels import price_workload

    return float(price_workload(sample.workload, profile, training=True).latency_s)


def _rows(samples: Sequence[Any], held_names: set[str], before: Any, after: Any,
          extra: Callable[[Any], dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """One row per measured sample: its split, what it measured (``extra``), and the time and error of
    the profile ``before`` and ``after`` the fit."""
    rows = []
    for s in samples:
        pb, pa = _predict(before, s), _predict(after, s)
        rows.append({"workload": s.name, "split": "held-out" if s.name in held_names else "fit", **extra(s),
                     "before_s": pb, "after_s": pa, "error_before": pb / s.measured_latency_s - 1,
                     "error_after": pa / s.measured_latency_s - 1})
    return tuple(rows)


@dataclass(frozen=True)
class CalibrationRun:
    """A measured sweep, the fit on its non-held-out part, and the errors before and after."""

    samples: tuple[Any, ...]
    held_out: tuple[str, ...]
    calibration: Any
    profile_data: dict[str, Any]
    mape_before: float
    mape_after: float
    rows: tuple[dict[str, Any], ...]
    measure_s: float


def sweep_and_fit(grid: Sequence[WorkloadConfig], base: Any, meter: Meter | None, *, data: DataCache,
                  device: str = "cpu", rounds: int = 5, per_round: int = 3, warmup: int = 3,
                  time_measure: str = "wall", holdout_every: int = 3, sweep_note: str = "",
                  progress: bool = True, min_window_s: float = 0.0, fit_memory: bool = True,
                  check_measurements: Callable[[list[EpochStats]], None] | None = None,
                  recorded: dict[str, EpochStats] | None = None, machine: str | None = None) -> CalibrationRun:
    """Measure ``grid``, fit ``base`` on all but every ``holdout_every``-th workload, and score the
    shipped and the calibrated profile on the held-out ones (MAPE of the epoch time).
    ``fit_memory``: also choose the effective bandwidth / on-chip buffer (``default_memory_grid``).
    ``check_measurements(stats)``: called after the sweep, before the fit (raises to stop: a busy machine).
    ``recorded`` (with ``machine``, where they were measured): fit an earlier sweep's measurements."""
    import tempfile
    from pathlib import Path

    from costmodels import load_profile
    from costmodels.calibrate import (
        Sample,
        calibrated_profile_dict,
        default_memory_grid,
        fit,
        holdout_split,
        mape,
        write_profile,
    )
    from costmodels.measure import host_summary

    runners, stats, measure_s = _measure(grid, meter, data, device, rounds=rounds, per_round=per_round,
                                         warmup=warmup, progress=progress, min_window_s=min_window_s,
                                         check_measurements=check_measurements, recorded=recorded)
    samples = [Sample(s.label, r.workload(), epoch_time(s, time_measure), True, "adam", s.energy_j,
                      s.energy_source, {"wall_s": s.wall_s, "wall_iqr_s": s.wall_iqr_s, "cpu_time_s": s.cpu_time_s})
               for r, s in zip(runners, stats)]
    train, held = holdout_split(samples, every=holdout_every) if holdout_every > 1 else (samples, [])
    if not held:
        raise CodesignError("calibration needs held-out workloads: use --holdout-every >= 2 and a larger sweep")
    cal = fit(train, base, memory_grid=default_memory_grid(base) if fit_memory else None)
    measured = [s.measured_latency_s for s in held]
    before = mape([_predict(base, s) for s in held], measured)
    if machine is None:
        assert meter is not None
        machine = f"{meter.device_name} ({host_summary()['cores']} CPU cores)"
    protocol = ("epochs as the recorded sweep measured them" if recorded is not None else
                f"median of {rounds}x{per_round}, each round's {per_round} back to back after one unmeasured epoch")
    sweep = f"{len(samples)} training-epoch workloads ({time_measure} time, {protocol}); {sweep_note}"
    pdata = calibrated_profile_dict(base, cal, machine=machine, sweep=sweep, mape_before=before, mape_after=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        calibrated = load_profile(str(write_profile(pdata, Path(tmp) / "calibrated.toml")))
    after = mape([_predict(calibrated, s) for s in held], measured)
    pdata["calibration"]["mape_after"] = round(after, 6)
    held_names = {s.name for s in held}
    rows = _rows(samples, held_names, base, calibrated, lambda s: {
        "measured_s": s.measured_latency_s, "wall_s": s.info["wall_s"], "wall_iqr_s": s.info["wall_iqr_s"]})
    return CalibrationRun(tuple(samples), tuple(sorted(held_names)), cal, pdata, before, after, rows, measure_s)


@dataclass(frozen=True)
class ParallelRun:
    """The same sweep measured at ``threads`` threads (wall time) and the profile's ``[threads]`` fit to it
    (``costmodels.parallel``); errors on its held-out workloads: ``mape_before`` prices them with the
    one-thread fit as it is, ``mape_after`` with ``[threads]`` applied."""

    threads: int
    section: dict[str, Any]
    mape_before: float
    mape_after: float
    rows: tuple[dict[str, Any], ...]
    measure_s: float
    stats: tuple[EpochStats, ...] = field(repr=False, compare=False)


def sweep_and_fit_threads(grid: Sequence[WorkloadConfig], fitted: dict[str, Any], meter: Meter | None, *,
                          threads: int, fitted_threads: int, data: DataCache, device: str = "cpu", rounds: int = 5,
                          per_round: int = 3, warmup: int = 3, holdout_every: int = 3, progress: bool = True,
                          check_measurements: Callable[[list[EpochStats]], None] | None = None,
                          recorded: dict[str, EpochStats] | None = None) -> ParallelRun:
    """Measure ``grid`` again with the ``threads`` torch threads now set (the caller sets them), fit the
    efficiencies, kernel overhead and serial step time at that count with the one-thread fit
    ``fitted`` (profile data, effective memory kept) as the prior, and return its ``[threads]`` section."""
    from costmodels.calibrate import Sample, fit, holdout_split, mape
    from costmodels.parallel import threads_section
    from costmodels.profiles import DeviceProfile

    runners, stats, measure_s = _measure(grid, meter, data, device, rounds=rounds, per_round=per_round,
                                         warmup=warmup, progress=progress, check_measurements=check_measurements,
                                         recorded=recorded)
    samples = [Sample(s.label, r.workload(), s.wall_s) for r, s in zip(runners, stats)]
    train, held = holdout_split(samples, every=holdout_every)
    base = DeviceProfile.from_dict({k: v for k, v in fitted.items() if k != "threads"}, "one-thread fit")
    cal = fit(train, base)
    held_names = {s.name for s in held}
    section = threads_section(cal.efficiency, cal.kernel_overhead_us,
                              cal.serial_step_ns if cal.serial_fitted else None, fitted_threads=fitted_threads,
                              parallel_threads=threads, note="")
    after_profile = DeviceProfile.from_dict({**fitted, "threads": {**section, "source": "-"}}).at_threads(threads)
    before = mape([_predict(base, s) for s in held], [s.measured_latency_s for s in held])
    after = mape([_predict(after_profile, s) for s in held], [s.measured_latency_s for s in held])
    section["source"] = (
        f"NNLS fit of {len(samples)} training-epoch workloads measured at {threads} threads (wall time, median of "
        f"{rounds}x{per_round}), the {fitted_threads}-thread fit as prior (classes {', '.join(cal.fitted_classes)}, "
        f"kernel overhead{', serial step time' if cal.serial_fitted else ''}); held-out MAPE at {threads} threads "
        f"{before:.1%} with the {fitted_threads}-thread fit -> {after:.1%} with this section")
    iqr = {st.label: st.wall_iqr_s for st in stats}
    rows = _rows(samples, held_names, base, after_profile, lambda s: {
        "threads": threads, "measured_s": s.measured_latency_s, "wall_iqr_s": iqr[s.name]})
    return ParallelRun(threads, section, before, after, rows, measure_s, tuple(stats))
