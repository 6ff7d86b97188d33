"""Calibrate a device profile to measurements: efficiency per op class, kernel overhead, static power.

The analytical latency (``analytical.py``) of one operator cost ``c`` of class ``k(c)`` is
``max(F_c / P_k, B_c / BW) / η_k + n_c · t_k + s_c · t_s``. It is *linear* in the unknowns
``x_k = 1/η_k``, ``t_k`` and ``t_s``, so a workload's latency is

    T = Σ_k A_k · x_k + K · t_k + S · t_s,   A_k = Σ_{c of class k} max(F_c / P_k, B_c / BW),
    K = Σ_c n_c (host ops),  S = Σ_c s_c (serial steps: sort comparisons, random draws)

with ``F`` FLOPs, ``B`` DRAM bytes, ``P_k`` the profile's peak for the class and dtype, ``BW`` its
bandwidth and ``n`` kernel launches. Given measured times ``T_i`` we solve

    min_{x ≥ 1, t_k ≥ 0}  Σ_i ((T̂_i - T_i) / T_i)²

(relative errors, so fast and slow workloads count alike; ``x ≥ 1`` keeps ``η ≤ 1``) as a
non-negative least-squares problem in ``x' = x - 1`` and ``t_k``, solved by Lawson-Hanson.
Classes absent from the sweep keep the profile's prior value.

Memory (optional, ``memory_grid``): the roofline's bandwidth ``BW`` and on-chip buffer ``S`` set
which ops are memory-bound and how many bytes a gather moves; on a CPU the *effective* values
differ from DRAM's (caches, and the irregular neighbour-row gathers of the CSR aggregation).
``fit`` then repeats the NNLS for each candidate ``(BW, S)`` and keeps the one with the lowest
fit-set MAPE (the held-out workloads are never looked at); the choice is written to ``[memory]``.

Energy: ``E = Σ_c (F_c e_flop + B_c e_byte) + P_static · T``. With *measured* energies
(``nvml-counter``, ``power-integration``, ``rapl``) ``P_static ≥ 0`` is fit by 1-D NNLS on
``E_i - dynamic_i = P_static · T_i`` (``T``: the measured wall time, also when the latency fit uses CPU
time). Estimated energies are not used (that would fit the estimate to itself); ``static_power_w``
then keeps its prior and the record says why.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .analytical import context_for, op_costs
from .errors import CodesignError
from .ops import OP_CLASSES
from .profiles import DeviceProfile
from .workloads import Workload

MEASURED_ENERGY = ("nvml-counter", "power-integration", "rapl")


def nnls(a: np.ndarray, b: np.ndarray, *, tol: float | None = None, max_iter: int | None = None) -> np.ndarray:
    """Non-negative least squares ``argmin_{x ≥ 0} ‖A x - b‖₂`` (Lawson & Hanson 1974, ch. 23).

    Active-set method: start with every variable at its bound 0 (set Z); repeatedly free the
    variable with the largest gradient ``w = Aᵀ(b - A x)`` (set P), solve the unconstrained least
    squares on P, and step back along the segment to the first variable that would turn negative.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    m, n = a.shape
    tol = 10 * max(m, n) * np.finfo(float).eps * np.linalg.norm(a, 1) if tol is None else tol
    max_iter = 3 * n if max_iter is None else max_iter
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    it = 0
    while (~passive).any() and (w[~passive] > tol).any():
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            it += 1
            if it > max_iter:
                return x
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


@dataclass(frozen=True)
class Sample:
    """One measured workload: what ran (``workload``, one step) and what the meter saw per step."""

    name: str
    workload: Workload
    measured_latency_s: float
    training: bool = True
    optimizer: str = "adam"
    measured_energy_j: float | None = None
    energy_source: str = "none"
    info: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Features:
    """The linear latency model's inputs for one sample (see module docstring)."""

    class_time_s: dict[str, float]  # A_k at η = 1
    kernels: float  # K
    dynamic_energy_j: float  # Σ F e_flop + B e_byte
    serial_steps: float = 0.0  # S: serial steps (sort comparisons, random draws), time t_s each


def features(sample: Sample, profile: DeviceProfile, dtype: str = "fp32") -> Features:
    """``A_k``, ``K`` and the dynamic energy of ``sample`` on ``profile``."""
    ctx = context_for(profile, dtype, sample.training)
    bw = profile.dram_bandwidth_bps
    a = dict.fromkeys(OP_CLASSES, 0.0)
    kernels = 0.0
    serial = 0.0
    dyn = 0.0
    for c in op_costs(sample.workload, ctx, training=sample.training, optimizer=sample.optimizer):
        a[c.op_class] += float(max(c.flops / profile.peak_flops(dtype, c.op_class), c.dram_bytes / bw))
        kernels += float(c.kernels)
        serial += float(c.serial_steps)
        dyn += float(c.flops * profile.joules_per_flop(dtype) + c.dram_bytes * profile.joules_per_byte)
    return Features(a, kernels, dyn, serial)


@dataclass(frozen=True)
class Calibration:
    """The fitted profile fields and how they were obtained."""

    efficiency: dict[str, float]
    kernel_overhead_us: float
    static_power_w: float
    fitted_classes: tuple[str, ...]
    static_power_fitted: bool
    note: str
    train_mape: float
    dram_bandwidth_gbs: float
    onchip_buffer_mb: float
    memory_fitted: bool = False
    serial_step_ns: float = 0.0
    serial_fitted: bool = False

    def predict_latency_s(self, f: Features) -> float:
        """``Σ_k A_k / η_k + K t_k + S t_s`` with the fitted values."""
        return sum(f.class_time_s[k] / self.efficiency[k] for k in OP_CLASSES) + f.kernels * (
            self.kernel_overhead_us * 1e-6
        ) + f.serial_steps * self.serial_step_ns * 1e-9


def predict_latency_s(sample: Sample, profile: DeviceProfile, dtype: str = "fp32") -> float:
    """The profile's analytical latency of one step of ``sample`` (same formula as analytical.py)."""
    f = features(sample, profile, dtype)
    eff = {k: profile.efficiency(k) for k in OP_CLASSES}
    return (sum(f.class_time_s[k] / eff[k] for k in OP_CLASSES) + f.kernels * profile.kernel_overhead_s
            + f.serial_steps * profile.serial_step_s)


def with_memory(profile: DeviceProfile, dram_bandwidth_gbs: float, onchip_buffer_mb: float) -> DeviceProfile:
    """A copy of ``profile`` with other ``[memory]`` bandwidth and on-chip buffer (and the DRAM energy per
    modelled byte that goes with that bandwidth: :func:`effective_dram_energy`)."""
    data: dict[str, Any] = {"name": profile.name, "display_name": profile.display_name, "kind": profile.kind,
                            "source": profile.source, **{k: dict(v) for k, v in profile.sections.items()}}
    effective_dram_energy(data, float(profile.sections["memory"]["dram_bandwidth_gbs"]), float(dram_bandwidth_gbs))
    data["memory"].update(dram_bandwidth_gbs=float(dram_bandwidth_gbs), onchip_buffer_mb=float(onchip_buffer_mb))
    return DeviceProfile.from_dict(data, profile.path or profile.name)


def effective_dram_energy(data: dict[str, Any], datasheet_gbs: float, effective_gbs: float) -> None:
    """Scale ``[energy] pj_per_dram_byte`` of profile data by ``datasheet / effective`` bandwidth when the fit
    chose an effective bandwidth above the datasheet's: the model's DRAM bytes then move faster than DRAM
    can, because caches serve part of them, and only that share costs DRAM energy (a cache hit's energy is
    left out). Unscaled, the calibrated 2-core CPU at 40 GB/s effective and 560 pJ/byte priced 11.4 W of
    average power on a 7 W board (gin on a 200k-node graph; found by an audit)."""
    energy = data.get("energy")
    if not energy or "pj_per_dram_byte" not in energy or effective_gbs <= datasheet_gbs:
        return
    scale = datasheet_gbs / effective_gbs
    energy["pj_per_dram_byte"] = round(float(energy["pj_per_dram_byte"]) * scale, 4)
    energy["source"] = (f"{energy.get('source', '')}; calibrated: per modelled byte, x {scale:.3g} "
                        f"(datasheet {datasheet_gbs:g} / effective {effective_gbs:g} GB/s: caches serve the rest)")


def default_memory_grid(profile: DeviceProfile) -> list[tuple[float, float]]:
    """Candidate effective ``(bandwidth GB/s, on-chip MB)``: the profile's bandwidth x 1, 2, 4
    (caches serve part of the traffic) with its buffer, or with no on-chip reuse (0 MB)."""
    bw = float(profile.sections["memory"]["dram_bandwidth_gbs"])
    onchip = float(profile.sections["memory"]["onchip_buffer_mb"])
    return [(bw * m, s) for m in (1.0, 2.0, 4.0) for s in dict.fromkeys((onchip, 0.0))]


def fit(samples: Sequence[Sample], profile: DeviceProfile, dtype: str = "fp32",
        min_class_share: float = 0.01, memory_grid: Sequence[tuple[float, float]] | None = None) -> Calibration:
    """Fit efficiencies, kernel overhead and (with measured energy) static power to ``samples``;
    with ``memory_grid``, also choose the effective bandwidth and on-chip buffer (see module doc).

    A class whose share of the ideal time ``Σ_i A_ik / T_i`` is below ``min_class_share`` of the
    largest is not identifiable from this sweep and keeps the profile's prior.
    """
    if not memory_grid:
        return _fit_one(samples, profile, dtype, min_class_share, False)
    best: Calibration | None = None
    for bw, onchip in memory_grid:
        cal = _fit_one(samples, with_memory(profile, bw, onchip), dtype, min_class_share, True)
        if best is None or cal.train_mape < best.train_mape - 1e-12:
            best = cal
    assert best is not None
    return best


def _fit_one(samples: Sequence[Sample], profile: DeviceProfile, dtype: str, min_class_share: float,
             memory_fitted: bool) -> Calibration:
    if len(samples) < 2:
        raise CodesignError(f"calibration needs at least 2 measured workloads, got {len(samples)}; widen the sweep")
    feats = [features(s, profile, dtype) for s in samples]
    y = np.array([s.measured_latency_s for s in samples])
    if (y <= 0).any() or not np.isfinite(y).all():
        raise CodesignError("calibration: measured latencies must be positive and finite; re-run the sweep")
    a_all = np.array([[f.class_time_s[k] for k in OP_CLASSES] for f in feats])
    kernels = np.array([f.kernels for f in feats])
    serial = np.array([f.serial_steps for f in feats])
    fit_serial = bool((serial > 0).any())
    share = (a_all / y[:, None]).sum(axis=0)
    fitted = [k for i, k in enumerate(OP_CLASSES) if share[i] > min_class_share * share.max()]
    cols = [OP_CLASSES.index(k) for k in fitted]
    prior = np.array([1.0 / profile.efficiency(k) for k in OP_CLASSES])
    # Fixed part: classes not fitted at their prior, fitted classes at x = 1 (x' = x - 1 >= 0).
    fixed = np.array([
        sum(a_all[i, j] * (1.0 if j in cols else prior[j]) for j in range(len(OP_CLASSES)))
        for i in range(len(samples))
    ])
    extra = [kernels * 1e-6] + ([serial * 1e-9] if fit_serial else [])
    design = np.column_stack([a_all[:, cols], *extra]) / y[:, None]
    if not fit_serial:  # no serial work in the sweep: the profile's per-step time stays as it is
        fixed = fixed + serial * profile.serial_step_s
    rhs = (y - fixed) / y
    sol = nnls(design, rhs)
    x = prior.copy()
    x[cols] = 1.0 + sol[: len(cols)]
    eff = {k: float(min(1.0, 1.0 / x[i])) for i, k in enumerate(OP_CLASSES)}
    overhead_us = float(sol[len(cols)])
    serial_ns = float(sol[len(cols) + 1]) if fit_serial else profile.serial_step_s * 1e9
    pred = (a_all * x).sum(axis=1) + kernels * overhead_us * 1e-6 + serial * serial_ns * 1e-9
    train_mape = float(np.mean(np.abs(pred - y) / y))

    # a workload whose windows mixed measured sources (EpochStats: "mixed:nvml-counter+power-integration",
    # a short window among counter windows) still has measured energy
    sources = {src for s in samples for src in s.energy_source.removeprefix("mixed:").split("+")}
    energies = [s.measured_energy_j for s in samples]
    if sources <= set(MEASURED_ENERGY) and all(e is not None for e in energies):
        resid = np.array([e - f.dynamic_energy_j for e, f in zip(energies, feats)])  # type: ignore[operator]
        # static power draws over the window's wall time, whichever time (wall or process CPU) the latency fit uses
        wall = np.array([float(s.info.get("wall_s", s.measured_latency_s)) for s in samples])
        static = float(nnls(wall[:, None], resid)[0])
        static_fitted, note = True, f"static power fit to {'/'.join(sorted(sources))} energy"
    else:
        static, static_fitted = profile.static_power_w, False
        note = f"static_power_w kept from the profile: energy was {'/'.join(sorted(sources))}, not measured"
    mem = profile.sections["memory"]
    return Calibration(eff, overhead_us, static, tuple(fitted), static_fitted, note, train_mape,
                       float(mem["dram_bandwidth_gbs"]), float(mem["onchip_buffer_mb"]), memory_fitted,
                       serial_ns, fit_serial)


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error as a fraction: ``mean |p - m| / m``."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    return float(np.mean(np.abs(p - m) / m))


def holdout_split(samples: Sequence[Sample], every: int = 3, offset: int = 1) -> tuple[list[Sample], list[Sample]]:
    """Deterministic split: every ``every``-th sample (from ``offset``) is held out, the rest fit."""
    held = [s for i, s in enumerate(samples) if i % every == offset % every]
    train = [s for i, s in enumerate(samples) if i % every != offset % every]
    return train, held


def calibrated_profile_dict(profile: DeviceProfile, cal: Calibration, *, machine: str, sweep: str,
                            mape_before: float, mape_after: float, date: str | None = None) -> dict[str, Any]:
    """The profile's TOML data with the fitted fields replaced and a ``[calibration]`` section."""
    data: dict[str, Any] = {
        "name": profile.name,
        "display_name": f"{profile.display_name} (calibrated)",
        "kind": profile.kind,
        "source": f"{profile.source}; calibrated by `codesign calibrate` on {machine}",
    }
    for section, values in profile.sections.items():
        if section not in ("calibration", "threads"):  # [threads] was fitted against the old [efficiency]
            data[section] = dict(values)
    eff = data["efficiency"]
    for k in cal.fitted_classes:
        eff[k] = round(cal.efficiency[k], 6)
    eff["kernel_overhead_us"] = round(cal.kernel_overhead_us, 4)
    if cal.serial_fitted:
        eff["serial_step_ns"] = round(cal.serial_step_ns, 4)
    eff["source"] = (
        f"NNLS fit of measured epoch times (classes {', '.join(cal.fitted_classes)}, kernel overhead"
        f"{', serial step time' if cal.serial_fitted else ''}; others kept from profile {profile.name})"
    )
    if cal.memory_fitted:
        effective_dram_energy(data, float(data["memory"]["dram_bandwidth_gbs"]), cal.dram_bandwidth_gbs)
        data["memory"]["dram_bandwidth_gbs"] = cal.dram_bandwidth_gbs
        data["memory"]["onchip_buffer_mb"] = cal.onchip_buffer_mb
        data["memory"]["source"] = (
            f"{data['memory'].get('source', '')}; calibrated: bandwidth and on-chip buffer are the *effective* "
            "values (grid search, lowest fit-set epoch-time error), not datasheet ones"
        )
    if cal.static_power_fitted:
        data["power"]["static_power_w"] = round(cal.static_power_w, 4)
    data["power"]["source"] = f"{data['power'].get('source', '')}; {cal.note}"
    data["calibration"] = {
        "date": date or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "sweep": sweep,
        "mape_before": round(mape_before, 6),
        "mape_after": round(mape_after, 6),
        "source": "codesign calibrate (costmodels.calibrate.fit, Lawson-Hanson NNLS)",
    }
    return data


def to_toml(data: dict[str, Any]) -> str:
    """Serialise a profile dict (scalars at the top, one level of tables) as TOML."""
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"cannot write non-finite number {v!r} to TOML")
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        return f'"{s}"'

    lines = [f"{k} = {fmt(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {fmt(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_profile(data: dict[str, Any], path: str | Path) -> Path:
    """Write a calibrated profile and check it loads back through the strict validator."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    from .atomic import atomic_path

    with atomic_path(p) as tmp:  # validated before it replaces anything
        tmp.write_text(to_toml(data))
        DeviceProfile.from_toml(tmp)
    return p
