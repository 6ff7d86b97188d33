"""Pareto plots (matplotlib, Agg backend, PNG): every trial, the front, the budget, the choice.

x: the cost metric with an SI prefix picked for the data (e.g. "train energy on h100 [mJ]"),
y: validation accuracy. Infeasible trials are drawn hollow; the front is a step line (a point on
the front is the best accuracy affordable at its cost); the budget is a vertical dashed line; the
chosen trial (most accurate feasible) is a star. Several studies share one plot (one colour each).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .export import complete_frame, pareto_frame
from .hardware import draw_hardware

_PREFIXES = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
             (1e-6, "u"), (1e-9, "n")]


def _scale(max_value: float) -> tuple[float, str]:
    for s, p in _PREFIXES:
        if max_value >= s:
            return s, p
    return 1e-9, "n"


def plot_studies(studies: Sequence[tuple[str, pd.DataFrame, dict[str, Any]]], path: str | Path) -> Path:
    """Draw ``(label, trials frame, summary)`` triples onto one PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    costs = [c for _, df, _ in studies for c in complete_frame(df).get("cost", pd.Series(dtype=float))]
    budgets = [s["budget"]["value"] for _, _, s in studies if s.get("budget")]
    scale, prefix = _scale(max([*costs, *budgets], default=1.0))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, df, summ) in enumerate(studies):
        c = colors[k % len(colors)]
        done = complete_frame(df)
        tag = f"{label}" if len(studies) > 1 else "trials"
        drew = len(studies) == 1 and draw_hardware(ax, fig, done, scale)  # area colour / one colour per device
        if not done.empty and not drew:
            feas = done["feasible"].astype(bool)
            ax.scatter(done.loc[feas, "cost"] / scale, done.loc[feas, "val_accuracy"], color=c, s=22,
                       alpha=0.6, label=f"{tag} (feasible)")
            if (~feas).any():
                ax.scatter(done.loc[~feas, "cost"] / scale, done.loc[~feas, "val_accuracy"],
                           facecolors="none", edgecolors=c, s=22, alpha=0.6, label=f"{tag} (over budget)")
        if not done.empty:
            front = pareto_frame(df)
            ax.step(front["cost"] / scale, front["val_accuracy"], where="post", color=c, lw=1.5,
                    label=f"{label}: Pareto front" if len(studies) > 1 else "Pareto front")
        if summ.get("budget"):
            ax.axvline(summ["budget"]["value"] / scale, color=c, ls="--", lw=1,
                       label=f"budget {summ['budget']['text']}")
        best = summ.get("best")
        if best:
            ax.scatter([best["cost"] / scale], [best["accuracy"]], marker="*", s=220, color=c,
                       edgecolors="black", zorder=5,
                       label=f"chosen #{best['number']}: acc {best['accuracy']:.3f}")
    first = studies[0][2] if studies else {}
    metric = str(first.get("metric") or "cost").replace("-", " ")
    unit = first.get("cost_unit") or ""
    devices = sorted({str(s.get("device")) for _, _, s in studies if s.get("device")})
    where = f" on {', '.join(devices)}" if devices else ""
    source = first.get("cost_source")
    ax.set_xlabel(f"{metric}{where} [{prefix}{unit}]" + (f" ({source})" if source else ""))
    ax.set_ylabel("validation accuracy")
    positive = [c for c in costs if c > 0]
    if positive and max(positive) > 10 * min(positive):
        ax.set_xscale("log")  # costs spanning more than a decade
    ax.set_title("Accuracy vs cost: " + ", ".join(label for label, _, _ in studies))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
