"""Hardware as a searched variable: ``--hardware-space``, area and power budgets, best point of a grid.

Knows nothing of GNNs or of the technology model: it parses what the user wrote, lays out a grid
of knob values, picks the cheapest point of a priced grid under the budgets, and turns the choice
into the flat ``hw.*`` columns a trial stores (``trials.csv``), the ``hardware`` entry of
``summary.json``'s best, and the area / device colouring of ``pareto.png``.

``--hardware-space "pes=256:8192; buffer_mb=0.5:32; dram=hbm2,lpddr4"``: ``low:high`` is a numeric
range (``steps`` values, geometric when ``high/low >= 4``, else linear), ``a,b,c`` a list, a
single value fixes the knob. The grid is the full factorial of the knobs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from costmodels.errors import CodesignError

GRID_POINTS = 4096  # target size of the factorial grid (numeric knobs share it)
HW_PREFIX = "hw."


@dataclass(frozen=True)
class HardwareSpace:
    """Parsed ``--hardware-space``: numeric ranges ``(low, high)`` and explicit value lists."""

    text: str
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def knobs(self) -> list[str]:
        return [*self.ranges, *self.values]

    def steps(self) -> int:
        """Values per numeric range: about ``GRID_POINTS`` points in all, 4..64 per knob."""
        listed = int(np.prod([len(v) for v in self.values.values()])) if self.values else 1
        if not self.ranges:
            return 0
        return int(min(64, max(4, round((GRID_POINTS / listed) ** (1.0 / len(self.ranges))))))

    def axes(self) -> dict[str, np.ndarray | list[Any]]:
        """Knob -> the values the grid takes."""
        n = self.steps()
        out: dict[str, np.ndarray | list[Any]] = {}
        for k, (lo, hi) in self.ranges.items():
            out[k] = np.geomspace(lo, hi, n) if lo > 0 and hi / lo >= 4 else np.linspace(lo, hi, n)
        for k, vals in self.values.items():
            out[k] = list(vals)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "ranges": {k: list(v) for k, v in self.ranges.items()},
                "values": {k: list(v) for k, v in self.values.items()}, "steps": self.steps()}


def _value(text: str) -> Any:
    try:
        v = float(text)
    except ValueError:
        return text
    return int(v) if v.is_integer() and "." not in text else v


def parse_hardware_space(text: str) -> HardwareSpace:
    """``"pes=256:8192; buffer_mb=0.5:32; dram=hbm2,lpddr4"`` -> :class:`HardwareSpace` (one-line errors)."""
    ranges: dict[str, tuple[float, float]] = {}
    values: dict[str, tuple[Any, ...]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        if "=" not in part:
            raise CodesignError(f"--hardware-space {part!r}: write knob=low:high or knob=a,b,c, "
                                "e.g. 'pes=256:8192; buffer_mb=0.5:32'")
        name, spec = (s.strip() for s in part.split("=", 1))
        if name in ranges or name in values:
            raise CodesignError(f"--hardware-space: knob {name!r} given twice")
        if ":" in spec:
            lo_s, hi_s = spec.split(":", 1)
            try:
                lo, hi = float(lo_s), float(hi_s)
            except ValueError:
                raise CodesignError(f"--hardware-space {part!r}: low:high must be numbers") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise CodesignError(f"--hardware-space {part!r}: need finite numbers low < high")
            ranges[name] = (lo, hi)
        else:
            values[name] = tuple(_value(v.strip()) for v in spec.split(",") if v.strip())
            if not values[name]:
                raise CodesignError(f"--hardware-space {part!r}: no values")
    if not ranges and not values:
        raise CodesignError(f"--hardware-space {text!r}: no knobs; e.g. 'pes=256:8192; buffer_mb=0.5:32'")
    return HardwareSpace(text.strip(), ranges, values)


_AREA = re.compile(r"^\s*([0-9.eE+-]+)\s*(mm2|mm\^2|mm²)\s*$")  # the unit is required, as for every budget
_POWER = re.compile(r"^\s*([0-9.eE+-]+)\s*(W|mW|kW)\s*$")


def _budget_match(text: str, pattern: re.Pattern[str], flag: str, hint: str) -> re.Match[str]:
    m = pattern.match(str(text))
    if not m or not _finite_positive(m.group(1)):
        raise CodesignError(f"{flag} {text!r}: give {hint}")
    return m


def parse_area_budget(text: str | None) -> float | None:
    """``"8mm2"`` / ``"8 mm^2"`` -> 8.0 (mm^2)."""
    if text is None:
        return None
    return float(_budget_match(text, _AREA, "--area-budget", "square millimetres, e.g. 8mm2").group(1))


def parse_power_budget(text: str | None) -> float | None:
    """``"7W"`` / ``"500mW"`` -> watts."""
    if text is None:
        return None
    m = _budget_match(text, _POWER, "--power-budget", "watts with a unit, e.g. 7W or 500mW")
    return float(m.group(1)) * {"W": 1.0, "mW": 1e-3, "kW": 1e3}[m.group(2)]


def _finite_positive(s: str) -> bool:
    try:
        v = float(s)
    except ValueError:
        return False
    return math.isfinite(v) and v > 0


def best_index(cost: np.ndarray, area: np.ndarray, power: np.ndarray, area_budget: float | None,
               power_budget: float | None) -> tuple[int, bool]:
    """The cheapest point within the area and power budgets, and whether any point was within them.

    Among points of equal cost the one with the smallest area wins.
    A NaN area or power (not modelled, e.g. a fixed GPU profile) fails a budget on that quantity.
    With no point within budget, the smallest-area (then cheapest) point is returned, flagged False.
    """
    cost, area, power = (np.asarray(x, dtype=float) for x in (cost, area, power))
    ok = np.isfinite(cost)
    if area_budget is not None:
        ok &= np.nan_to_num(area, nan=np.inf) <= area_budget
    if power_budget is not None:
        ok &= np.nan_to_num(power, nan=np.inf) <= power_budget
    if ok.any():  # ties on cost (e.g. every point past the memory roofline): the smallest chip
        masked = np.where(ok, cost, np.inf)
        tied = ok & (masked <= masked.min() * (1 + 1e-9))
        return int(np.lexsort((np.nan_to_num(area, nan=np.inf), ~tied))[0]), True
    return int(np.lexsort((cost, np.nan_to_num(area, nan=np.inf)))[0]), False


def hardware_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``hardware`` entry of a trial row: its ``hw.*`` columns plus area and power (None if absent)."""
    hw = {str(k)[len(HW_PREFIX):]: _plain(v) for k, v in row.items()
          if str(k).startswith(HW_PREFIX) and not _missing(v)}
    if not hw:
        return None
    for key in ("area_mm2", "power_w"):
        if key in row and not _missing(row[key]):
            hw[key] = float(row[key])
    return hw


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def draw_hardware(ax: Any, fig: Any, done: Any, scale: float) -> bool:
    """Colour the trials of ``done`` by chip area (one colour per device when several were searched).

    Returns True when it drew (the caller then skips its plain scatter).
    """
    if done.empty:
        return False
    cols = [c for c in done.columns if str(c).startswith("device_cost.")]
    if len(cols) >= 2:  # several devices: every ticket on every device, one colour each
        colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
        for k, col in enumerate(cols):
            ax.scatter(done[col] / scale, done["val_accuracy"], s=22, alpha=0.7, color=colors[k % len(colors)],
                       label=f"{col[len('device_cost.'):]} (each ticket)")
        values = done[cols].to_numpy(dtype=float)
        if np.nanmin(values) > 0 and np.nanmax(values) > 10 * np.nanmin(values):
            ax.set_xscale("log")  # devices a decade or more apart
        return True
    if "area_mm2" not in done or done["area_mm2"].isna().all():
        return False
    feas = done["feasible"].astype(bool)
    sc = ax.scatter(done["cost"] / scale, done["val_accuracy"], c=done["area_mm2"], cmap="viridis", s=30,
                    edgecolors=np.where(feas, "none", "red"), label="trials (colour: chip area)")
    cax = ax.inset_axes((1.03, 0.1, 0.22, 0.035))  # right of the axes, under the legend
    bar = fig.colorbar(sc, cax=cax, orientation="horizontal")
    bar.set_label("chip area [mm^2], estimated", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return True


def area_pareto(done: Any) -> list[int]:
    """Trial numbers on the (accuracy up, cost down, area down) Pareto front of trials with an area."""
    if done.empty or "area_mm2" not in done:
        return []
    rows = done.dropna(subset=["area_mm2"])
    acc, cost, area = (rows[c].to_numpy(dtype=float) for c in ("val_accuracy", "cost", "area_mm2"))
    keep = []
    for i in range(len(rows)):
        better_eq = (acc >= acc[i]) & (cost <= cost[i]) & (area <= area[i])
        strictly = (acc > acc[i]) | (cost < cost[i]) | (area < area[i])
        if not np.any(better_eq & strictly):
            keep.append(int(rows["number"].iloc[i]))
    return keep
