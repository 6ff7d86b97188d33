"""Tables and files from a stored study: ``trials.csv``, ``pareto.csv``, ``summary.json``.

Everything is read back from the study's trials (user attributes written by
:mod:`search.study`), so ``codesign pareto`` rebuilds the same files without re-running anything.
Costs are in the metric's SI unit (column ``cost``; unit in ``summary.json`` ``budget``/``cost_unit``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .hardware import area_pareto, hardware_of
from .pareto import best_feasible, pareto_indices
from .study import CONTEXT_ATTR

if TYPE_CHECKING:
    import optuna

BASE_COLUMNS = ["study", "number", "state", "val_accuracy", "test_accuracy", "cost", "feasible",
                "eb_epoch", "seed", "wall_s", "retry_of"]


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (int, float, str, bool))


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial (every state), params as ``param.*`` and cost breakdown as ``cost.*``."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        row: dict[str, Any] = {"study": study.study_name, "number": t.number, "state": t.state.name}
        for key in BASE_COLUMNS[3:]:
            row[key] = ua.get(key)
        params = ua.get("params") or t.params
        for k, v in params.items():
            row[f"param.{k}"] = v
        for k, v in (ua.get("costs") or {}).items():
            if _scalar(v):
                row[f"cost.{k}"] = v
        for k, v in ua.items():
            if k not in row and k not in ("params", "costs", "worker") and _scalar(v):
                row[k] = v
        row["duration_s"] = t.duration.total_seconds() if t.duration is not None else None
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    return df


def complete_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Only COMPLETE trials with a finite accuracy and cost."""
    if df.empty:
        return df
    ok = (df["state"] == "COMPLETE") & df["val_accuracy"].notna() & df["cost"].notna()
    return df[ok].reset_index(drop=True)


def pareto_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The non-dominated COMPLETE trials (max val accuracy, min cost), cheapest first."""
    done = complete_frame(df)
    if done.empty:
        return done
    idx = pareto_indices(done["val_accuracy"].astype(float).tolist(), done["cost"].astype(float).tolist())
    return done.iloc[idx].reset_index(drop=True)


def context(study: optuna.Study) -> dict[str, Any]:
    """The stored search context (metric, budget, device, model, ...)."""
    return dict(study.user_attrs.get(CONTEXT_ATTR) or {})


def _params(row: pd.Series) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if str(k).startswith("param."):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            out[str(k)[6:]] = v.item() if hasattr(v, "item") else v
    return out


def _point(row: pd.Series) -> dict[str, Any]:
    test = row.get("test_accuracy")
    return {
        "number": int(row["number"]),
        "params": _params(row),
        "accuracy": float(row["val_accuracy"]),
        "test_accuracy": None if test is None or pd.isna(test) else float(test),
        "cost": float(row["cost"]),
        "feasible": bool(row["feasible"]),
        **({"hardware": hw} if (hw := hardware_of(row)) else {}),
    }


def storage_url(study: optuna.Study) -> str | None:
    """The study's storage URL with any password hidden (None for in-memory/journal storages)."""
    from .storage import _redact

    url = getattr(study._storage, "url", None)
    return None if url is None else _redact(str(url))


def summary(study: optuna.Study, df: pd.DataFrame | None = None) -> dict[str, Any]:
    """``summary.json``: best (most accurate feasible), full Pareto front, counts and context."""
    df = trials_frame(study) if df is None else df
    ctx = context(study)
    done = complete_frame(df)
    budget = ctx.get("budget")
    limit = None if budget is None else float(budget["value"])
    best = None
    if not done.empty:
        i = best_feasible(done["val_accuracy"].tolist(), done["cost"].tolist(), limit)
        best = None if i is None else _point(done.iloc[i])
    states = df["state"].value_counts().to_dict() if not df.empty else {}
    return {
        "study": study.study_name,
        "storage": storage_url(study),
        "metric": ctx.get("metric"),
        "cost_unit": ctx.get("cost_unit"),
        "device": ctx.get("device"),
        "cost_source": ctx.get("cost_source"),
        "objective": ctx.get("objective"),
        "budget": budget,
        "n_trials": int(len(done)),
        "n_trials_by_state": {str(k): int(v) for k, v in states.items()},
        "n_feasible": int(done["feasible"].astype(bool).sum()) if not done.empty else 0,
        "best": best,
        "pareto": [_point(r) for _, r in pareto_frame(df).iterrows()],
        **({"pareto_area": front} if (front := area_pareto(done)) else {}),  # (accuracy, cost, chip area)
        "context": ctx,
    }


def write_outputs(study: optuna.Study, out_dir: str | Path, *, plot: bool = True) -> dict[str, Any]:
    """Write trials.csv, pareto.csv, summary.json (and pareto.png) into ``out_dir``; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = trials_frame(study)
    df.to_csv(out / "trials.csv", index=False)
    pareto_frame(df).to_csv(out / "pareto.csv", index=False)
    summ = summary(study, df)
    (out / "summary.json").write_text(json.dumps(summ, indent=2, default=str) + "\n")
    if plot:
        from .plots import plot_studies

        plot_studies([(study.study_name, df, summ)], out / "pareto.png")
    return summ
