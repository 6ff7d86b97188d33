"""``cost_split.png``: where a run's training cost goes (ticket search vs training the final network).

One horizontal bar per trial shown (the chosen one, the dense reference, the longest dense run that
fits, and the most accurate trained trial of every other method), split by the phases the run
executed (``cost.phase.<name>.<key>`` columns of ``trials.csv``), grouped as

* pretraining: a dense phase before a ticket search (``pretrain``; CNN slimming's ``dense-l1``),
* ticket search: the phases that find the ticket (``search``, ``sparsify``, UGS ``ugs-mask-r*``,
  the spline detector's ``detector-probe``),
* training the final network: everything else (``train``, ``retrain``, ``pruned``, ``ugs-retrain-r*``,
  CNN ``dense``).

So a user sees why a ticket method costs what it costs: e.g. GEBT's search epochs train a weight step
and an edge-value step each, about 1.6-3.9 dense epochs per epoch on a launch-bound GPU. Drawn for the
additive training metrics (train energy, latency, FLOPs); inference and memory have no split (None).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from .export import _describe, complete_frame

PHASE_KEYS = {"train-energy": "energy_j", "train-latency": "latency_s", "train-flops": "flops"}
GROUPS = (("pretraining", "#9e9e9e"), ("ticket search", "#d62728"), ("training the final network", "#1f77b4"))


def phase_group(name: str) -> str:
    if name in ("pretrain", "dense-l1"):
        return "pretraining"
    if name in ("search", "sparsify", "detector-probe") or name.startswith("ugs-mask"):
        return "ticket search"
    return "training the final network"


def split_rows(df: pd.DataFrame, summary: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """``(label, {group: cost})`` of the trials shown (see the module docstring); empty without a split."""
    key = PHASE_KEYS.get(str(summary.get("metric")))
    done = complete_frame(df)
    prefix, suffix = "cost.phase.", f".{key}"
    cols = [c for c in done.columns if str(c).startswith(prefix) and str(c).endswith(suffix)] if key else []
    if done.empty or not cols:
        return []
    picks: list[tuple[str, int]] = []
    best = summary.get("best")
    if best:
        picks.append(("chosen", int(best["number"])))
    for flag, what in (("reference", "dense reference"), ("early", "longest dense that fits")):
        if flag in done:
            for n in done.loc[done[flag].fillna(False).astype(bool), "number"]:
                picks.append((what, int(n)))
    if "param.method" in done:
        for method, g in done.groupby("param.method"):
            g = g[g["feasible"].astype(bool)] if g["feasible"].astype(bool).any() else g
            top = g.sort_values(["val_accuracy", "cost"], ascending=[False, True]).iloc[0]
            picks.append((f"best {method}", int(top["number"])))
    rows, seen = [], set()
    for what, n in picks:
        if n in seen:
            continue
        seen.add(n)
        r = done[done["number"] == n].iloc[0]
        parts = {g: 0.0 for g, _ in GROUPS}
        for c in cols:
            v = r.get(c)
            if v is not None and not pd.isna(v):
                parts[phase_group(str(c)[len(prefix):-len(suffix)])] += float(v)
        params = {str(k)[6:]: v for k, v in r.items() if str(k).startswith("param.") and not pd.isna(v)}
        epochs = ", ".join(f"{str(c)[len(prefix):-len('.epochs')]} {int(r[c])}" for c in done.columns
                           if str(c).startswith(prefix) and str(c).endswith(".epochs") and not pd.isna(r.get(c))
                           and r.get(c))
        label = textwrap.fill(f"{what}: #{n} {_describe(params)}", 40)
        rows.append((f"{label}\nepochs: {epochs}; val acc {float(r['val_accuracy']):.3f}", parts))
    return rows


def plot_cost_split(df: pd.DataFrame, summary: dict[str, Any], path: str | Path) -> Path | None:
    """Draw ``cost_split.png`` at ``path``; None (nothing written) for a metric without a split."""
    rows = split_rows(df, summary)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .budget import format_si
    from .plots import _scale, budget_is_far, far_budget_note

    unit = summary.get("cost_unit") or ""
    totals = [sum(p.values()) for _, p in rows]
    budget = summary.get("budget")
    far = bool(budget and budget_is_far(budget["value"], max(totals)))
    scale, prefix = _scale(max(totals if far else [*totals, (budget or {}).get("value") or 0.0]))
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.95 * len(rows)))
    y = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    for group, colour in GROUPS:
        widths = [p[group] / scale for _, p in rows]
        ax.barh(y, widths, left=left, color=colour, label=group, height=0.6)
        left = [a + b for a, b in zip(left, widths)]
    for yi, total in zip(y, totals):
        ax.text(total / scale, yi, " " + format_si(total, unit), va="center", fontsize=8)
    if far and budget:  # past the axis: a note, not a line that would squash the bars
        times = budget["value"] / max(totals)
        far_budget_note(ax, f"{format_si(budget['value'], unit)} ({times:.0f}x the dearest bar)")
    elif budget:
        ax.axvline(budget["value"] / scale, color="crimson", ls="--", lw=1.2,
                   label=f"budget {format_si(budget['value'], unit)}")
    ax.set_yticks(y)
    ax.set_yticklabels([label for label, _ in rows], fontsize=7)
    metric = str(summary.get("metric") or "cost").replace("-", " ")
    ax.set_xlabel(f"{metric} on {summary.get('device')} [{prefix}{unit}] ({summary.get('cost_source') or 'estimated'})",
                  fontsize=8)
    ax.set_xlim(0, max([*left, 0.0 if far else (budget or {}).get("value", 0.0) / scale]) * 1.25 or 1.0)
    ax.set_title("Where the training cost goes: ticket search vs training the final network", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: never over a bar's total
    fig.tight_layout()
    out = Path(path)
    from costmodels.atomic import atomic_path

    try:  # bbox "tight": long method labels widen the figure rather than being cut at its left edge
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
