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
    hint = "a positive area in square millimetres, e.g. 8mm2"
    return float(_budget_match(text, _AREA, "--area-budget", hint).group(1))


def parse_power_budget(text: str | None) -> float | None:
    """``"7W"`` / ``"500mW"`` -> watts."""
    if text is None:
        return None
    m = _budget_match(text, _POWER, "--power-budget", "a positive power with a unit, e.g. 7W or 500mW")
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


DEVICE_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def draw_hardware(ax: Any, fig: Any, done: Any, scale: float, budget: float | None = None,
                  marker_of: Any = None) -> bool:
    """Colour the trials of ``done`` by chip area, one marker per method (``marker_of``), infeasible ones
    edged red (one colour per device when several were searched; a ticket over ``budget`` on a device is
    hollow there).

    Returns True when it drew (the caller then skips its plain scatter).
    """
    if done.empty:
        return False
    cols = [c for c in done.columns if str(c).startswith("device_cost.")]
    if len(cols) >= 2:  # several devices: every ticket on every device, one colour each
        for k, col in enumerate(cols):
            colour = DEVICE_COLOURS[k % len(DEVICE_COLOURS)]
            cost = done[col].astype(float)
            fits = np.ones(len(done), dtype=bool) if budget is None else (cost <= budget).to_numpy()
            ax.scatter(cost[fits] / scale, done.loc[fits, "val_accuracy"], s=22, alpha=0.75, color=colour,
                       label=f"{col[len('device_cost.'):]} (each ticket)")
            if (~fits).any():
                ax.scatter(cost[~fits] / scale, done.loc[~fits, "val_accuracy"], s=22, alpha=0.75,
                           facecolors="none", edgecolors=colour)
        values = done[cols].to_numpy(dtype=float)
        if np.nanmin(values) > 0 and np.nanmax(values) > 10 * np.nanmin(values):
            ax.set_xscale("log")  # devices a decade or more apart
            ax._codesign_spread = float(np.nanmax(values) / np.nanmin(values))
        return True
    if "area_mm2" not in done or done["area_mm2"].isna().all():
        return False
    feas = done["feasible"].astype(bool)
    area = done["area_mm2"].astype(float)
    norm = (float(np.nanmin(area)), float(np.nanmax(area)))
    methods = done["param.method"].astype(str) if "param.method" in done else None
    sc = None
    for m in ([None] if methods is None else list(dict.fromkeys(methods))):  # one marker per method
        sel = np.ones(len(done), dtype=bool) if m is None else (methods == m).to_numpy()
        sc = ax.scatter(done.loc[sel, "cost"] / scale, done.loc[sel, "val_accuracy"], c=area[sel], cmap="viridis",
                        vmin=norm[0], vmax=norm[1], s=40, marker=marker_of(m) if marker_of and m else "o",
                        edgecolors=np.where(feas[sel], "none", "red"), zorder=3)
    cax = ax.inset_axes((1.03, 0.1, 0.22, 0.035))  # right of the axes, under the legend
    bar = fig.colorbar(sc, cax=cax, orientation="horizontal")
    bar.set_label("chip area [mm^2], estimated", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return True


def has_area(done: Any) -> bool:
    """Whether the trials carry a modelled chip area (a template device was searched)."""
    return not done.empty and "area_mm2" in done and bool(done["area_mm2"].notna().any())


def draw_area_panel(ax: Any, done: Any, summary: Mapping[str, Any], methods: list[str], colour: Any) -> None:
    """Accuracy against chip area: one point per trained ticket at its chosen chip (colour: method;
    hollow: infeasible), the area budget, the chosen chip as a star labelled with its knobs."""
    rows = done.dropna(subset=["area_mm2"])
    method = rows["param.method"].astype(str) if "param.method" in rows else None
    feas = rows["feasible"].astype(bool)
    for m in methods:
        sel = (method == m) if method is not None else np.ones(len(rows), dtype=bool)
        c = colour(m, methods)
        ax.scatter(rows.loc[sel & feas, "area_mm2"], rows.loc[sel & feas, "val_accuracy"], color=c, s=30, alpha=0.85,
                   label=m if bool((sel & feas).any()) else None)
        ax.scatter(rows.loc[sel & ~feas, "area_mm2"], rows.loc[sel & ~feas, "val_accuracy"], facecolors="none",
                   edgecolors=c, s=30, alpha=0.85)
    ctx = summary.get("context") or {}
    if ctx.get("area_budget_mm2"):
        ax.axvline(float(ctx["area_budget_mm2"]), color="crimson", ls="--", lw=1.2,
                   label=f"area budget {ctx['area_budget_mm2']:g} mm2")
    best = summary.get("best") or {}
    hw = best.get("hardware") or {}
    if hw.get("area_mm2") is not None:
        knobs = [part.split("=", 1)[0].strip() for part in str(ctx.get("hardware_space") or "").split(";")
                 if "=" in part]
        text = ", ".join(f"{k} {hw[k]:.3g}" if isinstance(hw.get(k), float) else f"{k} {hw.get(k)}" for k in knobs)
        ax.scatter([hw["area_mm2"]], [best["accuracy"]], marker="*", s=260, color="gold", edgecolors="black",
                   zorder=5, label=f"chosen chip: {hw['area_mm2']:.3g} mm2"
                   + (f", {hw['power_w']:.3g} W" if hw.get("power_w") is not None else "")
                   + (f"\n{text}" if text else ""))
    areas = rows["area_mm2"].astype(float)
    if len(areas) and areas.min() > 0 and areas.max() > 20 * areas.min():
        ax.set_xscale("log")
    ax.set_xlabel("chip area [mm^2] of each ticket's chosen hardware point (estimated)", fontsize=9)
    ax.set_ylabel("validation accuracy")
    ax.set_title("accuracy vs chip area", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


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
