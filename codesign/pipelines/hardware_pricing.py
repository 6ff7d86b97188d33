"""Joint search of hardware with sparsity, and several devices in one search (analytical, no retraining).

``codesign search ... --device gcn-accelerator --hardware-space "pes=256:8192; buffer_mb=0.5:32"
--area-budget 8mm2 [--power-budget 7W]``, and ``--device A --device B``: every trained ticket is
priced on each listed device from its recorded, device-independent ``cost_inputs``:

* a template device (``[template]`` in its profile) over the factorial grid of ``--hardware-space``
  (``costmodels.hwgrid.price_run_grid``: vectorised; knobs not in the space stay at their defaults),
  or at its defaults without a space;
* a fixed profile as training prices it (``codesign.graphs.costing.price``); its area is not
  modelled, so an area budget excludes it, and its power is ``board_power_w``.

The trial's cost is the cheapest (device, hardware point) under the area and power budgets; the
trial records it as ``hw.device``, ``hw.<knob>``, ``area_mm2``, ``power_w``, ``hw.within_budget``
(False when no point met the area/power budgets: then the smallest-area point is kept),
``budgets_missed`` (``area``, ``power`` or both: the study then calls the trial infeasible), the
points priced, and ``device_cost.<device>`` (the best cost on each device, for the plot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from costmodels.errors import CodesignError
from costmodels.hwgrid import grid, price_run_grid
from costmodels.knobs import INTEGER_KNOBS
from costmodels.runs import Phase, gnn_run_workloads
from costmodels.templates import require_template, template_of
from search import CostInterval, Evaluation, Metric
from search.hardware import (
    HW_PREFIX,
    HardwareSpace,
    best_index,
    parse_area_budget,
    parse_hardware_space,
    parse_power_budget,
)

from .pricing import flat_costs, resolve_device


@dataclass(frozen=True)
class HardwareOptions:
    """The devices and hardware options of one search (``active`` when any goes beyond one fixed device)."""

    devices: tuple[str, ...]
    space: HardwareSpace | None = None
    area_budget_mm2: float | None = None
    power_budget_w: float | None = None

    @property
    def active(self) -> bool:
        return (len(self.devices) > 1 or self.space is not None or self.area_budget_mm2 is not None
                or self.power_budget_w is not None)

    @classmethod
    def parse(cls, device: str | list[str] | None, hardware_space: str | None = None, area_budget: str | None = None,
              power_budget: str | None = None, *, measured: bool = False, task: str = "graph") -> HardwareOptions:
        """The options from ``--device`` (repeatable; none: h100), ``--hardware-space``, ``--area-budget``,
        ``--power-budget`` as given, checked against ``--measured`` and ``--task``."""
        given = device if isinstance(device, list) else [device or "h100"]
        devices = tuple(dict.fromkeys(given or ["h100"]))
        opts = cls(devices, parse_hardware_space(hardware_space) if hardware_space else None,
                   parse_area_budget(area_budget), parse_power_budget(power_budget))
        if opts.active:
            if measured:
                raise CodesignError("--measured prices on this machine; drop it to search hardware "
                                    "(--hardware-space, several --device, area/power budgets)")
            if task != "graph":
                raise CodesignError("--hardware-space, several --device and area/power budgets apply to "
                                    "--task graph only")
            opts.check()
        return opts

    def check(self) -> None:
        """Every device exists; the space's knobs exist and are in range on every template device; an
        area budget has a template device to meet it (a fixed profile's area is not modelled)."""
        templates = []
        for name in self.devices:
            profile = resolve_device(name).profile
            t = template_of(profile)
            if t is not None:
                templates.append(t)
        if self.area_budget_mm2 is not None and not templates:
            raise CodesignError(f"--area-budget {self.area_budget_mm2:g}mm2: no chip area is modelled for "
                                f"{', '.join(self.devices)} (fixed profiles), so no trial could meet it; drop "
                                "--area-budget or add a template device, e.g. --device gcn-accelerator")
        if self.space is not None:
            if not templates:
                require_template(resolve_device(self.devices[0]).profile)
            for t in templates:
                for k, axis in self.space.axes().items():
                    knob = t.knob(k)
                    if knob.choices and k in self.space.ranges:  # a range would grid values between the choices
                        names = ",".join(map(str, knob.choices))
                        raise CodesignError(f"--hardware-space {k}={self.space.ranges[k][0]:g}:"
                                            f"{self.space.ranges[k][1]:g}: {k} takes only {names}; list the "
                                            f"values instead, e.g. {k}={names}")
                    listed = knob.choices or isinstance(axis, list)  # every listed value; a range by its ends
                    for v in (axis if listed else (np.min(axis), np.max(axis))):
                        knob.check(v, f"--hardware-space on {t.name}")

    def context(self) -> dict[str, Any]:
        """What the study stores (a resume with other hardware options is refused)."""
        if not self.active:
            return {}
        label: dict[str, Any] = {}
        if len(self.devices) > 1:
            label = {"device": "|".join(self.devices),
                     "cost_source": "estimated: analytical model, best device per ticket"}
        space = None if self.space is None else self.space.text
        return {**label, "devices": list(self.devices), "hardware_space": space,
                "area_budget_mm2": self.area_budget_mm2, "power_budget_w": self.power_budget_w}

    def study_suffix(self) -> str:
        parts = [f"+{d}" for d in self.devices[1:]]
        if self.space is not None:
            parts.append("-hw")
        if self.area_budget_mm2 is not None:
            parts.append(f"-{self.area_budget_mm2:g}mm2")
        if self.power_budget_w is not None:
            parts.append(f"-{self.power_budget_w:g}W")
        return "".join(parts).replace("/", "_")

    def wrap(self, evaluator: Any, metric: Metric) -> Any:
        return HardwareEvaluator(evaluator, self, metric) if self.active else evaluator


def run_workloads(inputs: Mapping[str, Any], aggregation_order: str = "transform-first") -> tuple[list[Phase], Any]:
    """The phases and inference workload of a run's recorded ``cost_inputs`` (as ``costing.price``)."""
    from codesign.graphs.costing import CostInputs

    ci = CostInputs.from_dict(inputs)
    return gnn_run_workloads(ci.spec, ci.stats, list(ci.phases), ci.infer_graph_density, ci.infer_weight_density,
                             aggregation_order)


@dataclass(frozen=True)
class Candidate:
    device: str
    cost: float
    area_mm2: float
    power_w: float
    knobs: dict[str, Any]
    costs: dict[str, Any]
    within_budget: bool
    points: int = 1


def _grid_axes(space: HardwareSpace | None, template: Any) -> dict[str, Any]:
    axes = dict(space.axes()) if space is not None else {}
    for k, v in axes.items():  # integer knobs (PEs, lanes) take whole values
        if k in INTEGER_KNOBS:
            axes[k] = np.unique(np.round(np.asarray(v)))
    return axes


def price_on_device(name: str, inputs: Mapping[str, Any], phases: list[Phase], infer: Any, metric: Metric,
                    opts: HardwareOptions, aggregation_order: str = "transform-first") -> Candidate:
    """The cheapest point of device ``name`` for one run, under the area and power budgets. A fixed
    profile prices the run's recorded ``inputs`` as training does (``costing.price``: counted launches on
    devices that run PyTorch); a template prices ``phases``/``infer`` over its hardware grid."""
    from codesign.graphs.costing import price

    resolved = resolve_device(name)
    profile, used = resolved.profile, resolved.name
    t = template_of(profile)
    if t is None:
        costs = flat_costs(price(inputs, name, aggregation_order))
        cost = float(costs[metric.cost_key])
        power = float(profile.sections["power"]["board_power_w"])
        _, ok = best_index(np.array([cost]), np.array([np.nan]), np.array([power]), opts.area_budget_mm2,
                           opts.power_budget_w)
        return Candidate(used, cost, float("nan"), power, {}, costs, ok)
    points = grid(_grid_axes(opts.space, t)) if opts.space is not None else {}
    out = price_run_grid(phases, infer, profile, points)
    n = len(out["area_mm2"])
    i, ok = best_index(out[metric.cost_key], out["area_mm2"], out["power_w"], opts.area_budget_mm2,
                       opts.power_budget_w)
    knobs = t.defaults() | {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in points.items()}
    knobs.update({k: int(knobs[k]) for k in INTEGER_KNOBS if k in knobs})
    costs = {k: float(v[i]) for k, v in out.items()} | {"device": used}
    return Candidate(used, float(out[metric.cost_key][i]), float(out["area_mm2"][i]), float(out["power_w"][i]),
                     knobs, costs, ok, n)


def budgets_missed(c: Candidate, opts: HardwareOptions) -> str:
    """The hardware budgets the chosen point misses, comma-separated (``""``: it meets them all); an
    unmodelled area (NaN, a fixed profile) misses an area budget. The study makes such a trial infeasible."""
    missed = []
    if opts.area_budget_mm2 is not None and not (np.isfinite(c.area_mm2) and c.area_mm2 <= opts.area_budget_mm2):
        missed.append("area")
    if opts.power_budget_w is not None and not (np.isfinite(c.power_w) and c.power_w <= opts.power_budget_w):
        missed.append("power")
    return ",".join(missed)


@dataclass(frozen=True)
class HardwareEvaluator:
    """Wraps a graph evaluator: train once, then price the ticket on every device / hardware point."""

    inner: Any
    options: HardwareOptions
    metric: Metric
    aggregation_order: str = "transform-first"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def best(self, inputs: Mapping[str, Any]) -> tuple[Candidate, list[Candidate]]:
        """The cheapest (device, hardware point) for a run's ``cost_inputs`` under the area and power
        budgets (none meets them: the smallest-area one), and the best candidate of every device."""
        phases, infer = run_workloads(inputs, self.aggregation_order)
        cands = [price_on_device(d, inputs, phases, infer, self.metric, self.options, self.aggregation_order)
                 for d in self.options.devices]
        i, _ = best_index(np.array([c.cost if c.within_budget else np.inf for c in cands]),
                          np.zeros(len(cands)), np.zeros(len(cands)), None, None)
        if not any(c.within_budget for c in cands):
            i = int(np.argmin([c.area_mm2 if np.isfinite(c.area_mm2) else np.inf for c in cands]))
        return cands[i], cands

    def predict(self, params: dict[str, Any]) -> CostInterval | None:
        """Before training, the exact cost of a configuration with a fixed schedule (dense, random, sgcn)
        at its best hardware under the area and power budgets; None for any other (a detector or UGS
        decides its schedule) or when no point meets those budgets. Used to train the dense run that
        fits early (``codesign.pipelines.graph_search.dense_that_fits``), not to screen: the interval of
        a bounded schedule is not priced here."""
        from codesign.graphs.data import load_dataset

        from .graph_bounds import run_bounds

        inner = self.inner
        (_, high), (_, epochs), exact = run_bounds(inner.config(params, 0), load_dataset(inner.dataset,
                                                                                          inner.data_root))
        if not exact:  # the high end: densities with the mask-rounding slack, never below the run's cost
            return None
        best, _ = self.best(high.to_dict())
        if not best.within_budget:
            return None
        return CostInterval(best.cost, best.cost, exact=True, epochs_low=epochs, epochs_high=epochs)

    def __call__(self, params: dict[str, Any], seed: int) -> Evaluation:
        ev = self.inner(params, seed)
        inputs = ev.attrs.get("cost_inputs")
        if inputs is None:
            raise CodesignError("the evaluator recorded no cost_inputs; hardware search needs --task graph")
        best, cands = self.best(inputs)
        attrs = dict(ev.attrs)
        attrs.update({f"{HW_PREFIX}device": best.device, **{f"{HW_PREFIX}{k}": v for k, v in best.knobs.items()},
                      "area_mm2": None if not np.isfinite(best.area_mm2) else best.area_mm2,
                      "power_w": best.power_w, f"{HW_PREFIX}within_budget": best.within_budget,
                      "hw_points_priced": sum(c.points for c in cands),
                      "budgets_missed": budgets_missed(best, self.options)})
        if len(cands) > 1:
            attrs.update({f"device_cost.{c.device}": c.cost for c in cands})
        return Evaluation(val_accuracy=ev.val_accuracy, cost=best.cost, test_accuracy=ev.test_accuracy,
                          costs=best.costs, attrs=attrs)
