"""A run folder's files from a stored study: ``trials.csv``, ``pareto.csv``, ``summary.json``, and the
plots ``pareto.png`` and ``cost_split.png``. The tables come from :mod:`search.export`, the pictures
from :mod:`search.plots` and :mod:`search.cost_split` (both read the tables; neither writes files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costmodels.atomic import write_text

from .cost_split import plot_cost_split
from .export import pareto_frame, summary, trials_frame
from .plots import plot_studies

if TYPE_CHECKING:
    import optuna


def write_outputs(study: optuna.Study, out_dir: str | Path, *, plot: bool = True) -> dict[str, Any]:
    """Write trials.csv, pareto.csv, summary.json (and pareto.png, and cost_split.png for a training metric)
    into ``out_dir``; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = trials_frame(study)
    write_text(out / "trials.csv", df.to_csv(index=False))
    write_text(out / "pareto.csv", pareto_frame(df).to_csv(index=False))
    summ = summary(study, df)
    write_text(out / "summary.json", json.dumps(summ, indent=2, default=str) + "\n")
    if plot:
        plot_studies([(study.study_name, df, summ)], out / "pareto.png")
        plot_cost_split(df, summ, out / "cost_split.png")
    return summ
