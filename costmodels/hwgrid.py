"""Price one run over a whole grid of hardware points of a template (vectorised, no retraining).

``price_run_grid(phases, infer, profile, points)`` returns, for every point, what
``runs.price_run`` returns for the single profile ``templates.configure(profile, point)`` --
train/infer latency and energy, FLOPs, DRAM bytes, memory -- plus ``area_mm2`` and ``power_w``.

How: operator costs (FLOPs, bytes, launches) depend on the hardware only through the on-chip
buffer size and the weight-sparsity support (``context.ExecContext``); they are computed once per
distinct (choice knobs, buffer) group. Latency and energy are then numpy expressions over the
group's points (the roofline of ``analytical._price`` with the template's derived peaks and
energies), so a grid of 10^5 points costs a few dozen operator evaluations plus array arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .analytical import memory_bytes, op_costs
from .context import ExecContext
from .knobs import CHOICES
from .ops import OpCost
from .profiles import DTYPE_BYTES, DeviceProfile
from .runs import Phase
from .templates import derive, require_template
from .workloads import Workload

COST_KEYS = ("train_latency_s", "train_energy_j", "train_flops", "train_dram_bytes", "train_memory_bytes",
             "infer_latency_s", "infer_energy_j", "infer_flops", "infer_dram_bytes", "infer_memory_bytes",
             "area_mm2", "power_w")


def grid(space: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The full factorial grid of ``{knob: values}`` as flat arrays (one entry per point)."""
    names = list(space)
    axes = [np.asarray(space[k]) if np.ndim(space[k]) else np.asarray([space[k]]) for k in names]
    if not names:
        return {}
    mesh = np.meshgrid(*axes, indexing="ij")
    return {k: m.ravel() for k, m in zip(names, mesh)}


def _ctx(values: Mapping[str, Any], buffer_mb: float, dtype: str, training: bool,
         sparse_features: bool = False) -> ExecContext:
    sparse = values["weight_sparsity"] == "unstructured"
    return ExecContext(dtype_bytes=DTYPE_BYTES[dtype], onchip_bytes=buffer_mb * 1e6,
                       weight_sparsity="unstructured" if sparse else "none", sparse_weight_storage=sparse,
                       sparse_index_bytes=2.0 if sparse else 0.0, training=training,
                       sparse_feature_storage=sparse_features)


def _time_energy(costs: list[OpCost], d: Mapping[str, Any], profile: DeviceProfile) -> tuple[Any, Any]:
    latency: Any = 0.0
    energy: Any = 0.0
    bw = d["dram_gbs"] * 1e9
    overhead = profile.kernel_overhead_s
    for c in costs:
        eta = profile.efficiency(c.op_class)
        agg = c.op_class == "aggregation"
        peak = (d["aggregation_peak_tflops"] if agg else d["peak_tflops"]) * 1e12
        e_flop = (d["aggregation_pj_per_flop"] if agg else d["pj_per_flop"]) * 1e-12
        latency = latency + np.maximum(c.flops / (peak * eta), c.dram_bytes / (bw * eta)) + c.kernels * overhead
        energy = energy + c.flops * e_flop + c.dram_bytes * d["pj_per_dram_byte"] * 1e-12
    return latency, energy  # static power of a template is 0 (leakage not modelled)


def price_run_grid(phases: list[Phase], infer: Workload, profile: DeviceProfile, points: Mapping[str, Any],
                   dtype: str = "fp32") -> dict[str, np.ndarray]:
    """Costs of the run at every point (arrays of the points' length; see the module docstring)."""
    t = require_template(profile)
    n = max((np.size(v) for v in points.values()), default=1)
    for k, v in points.items():  # every value inside its knob's range: one clear line otherwise
        knob = t.knob(k)
        for x in (set(np.atleast_1d(v).tolist()) if knob.choices else (np.min(v), np.max(v))):
            knob.check(x, t.name)
    full = {k: np.broadcast_to(np.asarray(points.get(k, v)), (n,)) for k, v in t.defaults().items()}
    out = {k: np.zeros(n) for k in COST_KEYS}
    choice_names = [k for k in CHOICES if k != "precision_bits"] + ["precision_bits", "buffer_mb"]
    code = np.zeros(n, dtype=np.int64)
    uniques = {}
    for k in choice_names:  # one integer code per distinct (choices, buffer) combination
        uniques[k], inv = np.unique(full[k], return_inverse=True)
        code = code * len(uniques[k]) + inv.ravel()
    group_codes, group_of = np.unique(code, return_inverse=True)
    order = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[order], np.arange(len(group_codes) + 1))
    groups = {}
    for j in range(len(group_codes)):
        members = order[bounds[j]:bounds[j + 1]]
        groups[tuple(full[k][members[0]].item() for k in choice_names)] = members
    for key, idx in groups.items():
        fixed = dict(zip(choice_names, key))
        sub = {k: (fixed[k] if k in fixed else full[k][idx].astype(float)) for k in full}
        d = derive(sub)
        train_l: Any = 0.0
        train_e: Any = 0.0
        train_f = train_b = train_m = 0.0
        for ph in phases:
            ctx = _ctx(fixed, fixed["buffer_mb"], dtype, True, profile.sparse_feature_storage)
            costs = op_costs(ph.workload, ctx, training=True, optimizer=ph.optimizer)
            lat, en = _time_energy(costs, d, profile)
            reps = ph.epochs * ph.steps_per_epoch
            train_l, train_e = train_l + reps * lat, train_e + reps * en
            train_f += reps * float(sum(c.flops for c in costs))
            train_b += reps * float(sum(c.dram_bytes for c in costs))
            train_m = max(train_m, float(memory_bytes(ph.workload, ctx, training=True, optimizer=ph.optimizer)))
        ictx = _ctx(fixed, fixed["buffer_mb"], dtype, False, profile.sparse_feature_storage)
        icosts = op_costs(infer, ictx, training=False)
        il, ie = _time_energy(icosts, d, profile)
        row = {"train_latency_s": train_l, "train_energy_j": train_e, "train_flops": train_f,
               "train_dram_bytes": train_b, "train_memory_bytes": train_m, "infer_latency_s": il,
               "infer_energy_j": ie, "infer_flops": float(sum(c.flops for c in icosts)),
               "infer_dram_bytes": float(sum(c.dram_bytes for c in icosts)),
               "infer_memory_bytes": float(memory_bytes(infer, ictx, training=False)),
               "area_mm2": d["area_mm2"], "power_w": d["power_w"]}
        for k2, v in row.items():
            out[k2][idx] = np.broadcast_to(np.asarray(v, dtype=float), (len(idx),))
    return out

