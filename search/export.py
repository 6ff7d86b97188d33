"""Tables from a stored study: what ``trials.csv``, ``pareto.csv`` and ``summary.json`` hold (written by
:mod:`search.outputs`).

Everything is read back from the study's trials (user attributes written by
:mod:`search.study`), so ``codesign pareto`` rebuilds the same files without re-running anything.
Costs are in the metric's SI unit (column ``cost``; unit in ``summary.json`` ``budget``/``cost_unit``).
Screened trials (state PRUNED, ``screened``) carry ``predicted_cost_low/high`` and no accuracy.
``summary["answer"]`` says the result in words (:func:`answer`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from .config import CONTEXT_ATTR
from .confirm import decide, seeds_text
from .hardware import area_pareto, hardware_of
from .pareto import best_feasible, pareto_indices

if TYPE_CHECKING:
    import optuna

BASE_COLUMNS = ["study", "number", "state", "val_accuracy", "test_accuracy", "cost", "feasible", "screened",
                "stopped_after_epochs", "predicted_cost_low", "predicted_cost_high", "reference", "eb_epoch", "slot",
                "seed", "wall_s", "retry_of", "duplicate_of"]


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (int, float, str, bool))


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial (every state), params as ``param.*`` and cost breakdown as ``cost.*``."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        row: dict[str, Any] = {"study": study.study_name, "number": t.number, "state": _state(t)}
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
        if "fail_reason" not in row and t.system_attrs.get("fail_reason"):  # a dead worker's, set by storage
            row["fail_reason"] = t.system_attrs["fail_reason"]
        row["duration_s"] = t.duration.total_seconds() if t.duration is not None else None
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    return df


def _state(t: optuna.trial.FrozenTrial) -> str:
    """The trial's state as ``trials.csv`` says it: a configuration already trained is ``REPEAT`` and a
    trial that lost the race for the last slots ``SURPLUS``, one Ctrl-C stopped ``INTERRUPTED`` (Optuna
    stores all three as FAIL: nothing was evaluated); a real failure stays ``FAIL`` (its ``fail_reason``
    beside it)."""
    if t.state.name == "FAIL":
        if t.user_attrs.get("duplicate_of") is not None:
            return "REPEAT"
        if t.user_attrs.get("surplus"):
            return "SURPLUS"
        if t.user_attrs.get("interrupted"):  # Ctrl-C: its retry (retry_of) makes the same trial on resume
            return "INTERRUPTED"
    return str(t.state.name)


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
    fits = done[_flag(done, "feasible")] if not done.empty else done  # every budget: cost, area, power
    if not fits.empty:
        i = best_feasible(fits["val_accuracy"].tolist(), fits["cost"].tolist(), limit)
        best = None if i is None else _point(fits.iloc[i])
    confirmed = decide(study)
    single = best
    if confirmed is not None and confirmed["chosen"] is not None:
        row = done[done["number"] == confirmed["chosen"]]
        best = _point(row.iloc[0]) if not row.empty else best
    if best is not None and confirmed is not None:
        best = {**best, "confirmed": next((c for c in confirmed["candidates"] if c["number"] == best["number"]), None),
                "seeds": 1 + (confirmed["n_seeds"] if confirmed["chosen"] == best["number"] else 0)}
    states = df["state"].value_counts().to_dict() if not df.empty else {}
    screened = _flag(df, "screened")
    stopped = stopped_frame(df)
    ref = done[_flag(done, "reference")] if not done.empty else done
    reference = None if ref.empty else _point(ref.iloc[0])
    out = {
        "study": study.study_name,
        "storage": storage_url(study),
        "metric": ctx.get("metric"),
        "cost_unit": ctx.get("cost_unit"),
        "device": ctx.get("device"),
        "cost_source": ctx.get("cost_source"),
        "regime": ctx.get("regime"),  # per phase on the device: launch-, bandwidth- or compute-bound
        "objective": ctx.get("objective"),
        "budget": budget,
        "n_trials": int(len(done)),
        "n_trials_by_state": {str(k): int(v) for k, v in states.items()},
        "n_feasible": int(done["feasible"].astype(bool).sum()) if not done.empty else 0,
        "n_screened": int(screened.sum()),
        "n_stopped": int(len(stopped)),  # of the screened: stopped part-way (ticket search), not before training
        "stopped_train_wall_s": float(stopped["wall_s"].sum()) if len(stopped) else 0.0,
        "n_duplicates": int(df["duplicate_of"].notna().sum()) if "duplicate_of" in df else 0,
        "n_failed": n_failed(df),
        "screening_saved_train_s": screening_saving_s(df),
        "train_wall_s": float(done["wall_s"].sum()) if "wall_s" in done and not done.empty else 0.0,
        "reference": reference,
        "best": best,
        "best_single_run": single,  # the most accurate feasible trial on its one seed (before confirmation)
        "confirmation": confirmed,  # search.confirm.decide: candidates retrained on further seeds
        "confirm_train_wall_s": 0.0 if confirmed is None else confirmed["train_wall_s"],
        "budgets_unmet": budgets_unmet(done, limit),
        "pareto": [_point(r) for _, r in pareto_frame(df).iterrows()],
        "stopped": study.user_attrs.get("stopped"),
        **({"pareto_area": front} if (front := area_pareto(done)) else {}),  # (accuracy, cost, chip area)
        "context": ctx,
    }
    out["answer"] = answer(out)
    return out


def budgets_unmet(done: pd.DataFrame, limit: float | None) -> list[str]:
    """The budgets (``cost``, ``area``, ``power``) that no trained trial meets (empty when nothing was trained)."""
    if done.empty:
        return []
    out = []
    if limit is not None and not (done["cost"].astype(float) <= limit).any():
        out.append("cost")
    if "budgets_missed" in done:
        missed = done["budgets_missed"].fillna("").astype(str)
        out += [b for b in ("area", "power") if missed.str.contains(b).all()]
    return out


def n_failed(df: pd.DataFrame) -> int:
    """FAIL trials whose slot no retry took over (a dead worker's trial is retried: not counted)."""
    if df.empty:
        return 0
    retried = set(df["retry_of"].dropna().astype(int)) if "retry_of" in df else set()
    return int(((df["state"] == "FAIL") & ~df["number"].isin(retried)).sum())


def stopped_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The screened trials whose run was stopped part-way (``stopped_after_epochs``), not before training."""
    return df[df["stopped_after_epochs"].notna()] if "stopped_after_epochs" in df else df.iloc[:0]


def _flag(df: pd.DataFrame, column: str) -> pd.Series:
    if column not in df:
        return pd.Series([False] * len(df), index=df.index, dtype=bool)
    return df[column].apply(lambda v: bool(v) if isinstance(v, (bool, int)) or v is True else False).astype(bool)


def screening_saving_s(df: pd.DataFrame) -> float | None:
    """Training time the screened configurations would have taken here had they been trained, estimated:
    their predicted epochs (interval midpoint; less the epochs a stopped run did train) x the measured
    seconds per epoch of the trained trials of the same method (of all trained trials when none of that
    method was trained). Not a saving of the search's wall time (``--trials`` counts trained trials:
    screening gives those trainings to configurations that can fit), so the answer's words do not quote
    it. None without the data."""
    done = complete_frame(df)
    screened = df[_flag(df, "screened")]
    if screened.empty:
        return 0.0
    need = {"wall_s", "epochs_run"}
    if done.empty or not need <= set(done.columns) or "predicted_epochs_low" not in screened:
        return None
    per_epoch_all = float(done["wall_s"].sum()) / max(float(done["epochs_run"].sum()), 1.0)
    per_epoch: dict[str, float] = {}
    if "param.method" in done:
        for m, g in done.groupby("param.method"):
            per_epoch[str(m)] = float(g["wall_s"].sum()) / max(float(g["epochs_run"].sum()), 1.0)
    total = 0.0
    for _, r in screened.iterrows():
        lo, hi = r.get("predicted_epochs_low"), r.get("predicted_epochs_high")
        if lo is None or pd.isna(lo):
            continue
        epochs = (float(lo) + float(hi if hi is not None and not pd.isna(hi) else lo)) / 2
        ran = r.get("stopped_after_epochs")
        epochs = max(0.0, epochs - (0.0 if ran is None or pd.isna(ran) else float(ran)))
        total += epochs * per_epoch.get(str(r.get("param.method")), per_epoch_all)
    return total


def _si(value: float, unit: str) -> str:
    from .budget import format_si

    return format_si(value, unit)


def _describe(params: dict[str, Any]) -> str:
    method = params.get("method")
    rest = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items()
                     if k != "method" and v is not None and not (isinstance(v, float) and v == 0.0))
    return f"{method}" + (f" ({rest})" if rest else "") if method else rest


def _pm(mean: float | None, sd: float | None) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.3f}" + (f" +- {sd:.3f}" if sd is not None else "")


def _confirm_words(s: dict[str, Any]) -> str:
    """The confirmation stage in words: seeds, mean +- sd of the answer and of the dense beside it, ties."""
    conf = s.get("confirmation")
    if not conf:
        return "Not confirmed: one seed per configuration (--confirm-seeds 0)."
    n = conf["n_seeds"]
    by_number = {c["number"]: c for c in conf["candidates"]}
    if conf["chosen"] is None:
        return (f"Not confirmed: none of the {len(by_number)} leading candidates fit every budget on all {n} "
                "confirmation seeds; the answer above rests on one seed.")
    c = by_number[conf["chosen"]]
    text = (f"Confirmed on {seeds_text(n)} (the same for each of {len(by_number)} candidates): trial "
            f"#{c['number']} reaches validation {_pm(c['val_mean'], c['val_sd'])}, test "
            f"{_pm(c['test_mean'], c['test_sd'])} "
            f"({'mean +- sd over the ' + seeds_text(n, further=False) if n > 1 else 'one seed: no spread'})")
    single = s.get("best_single_run") or {}
    if single and single.get("number") != c["number"]:
        text += f"; the best single run, #{single['number']}, did not hold up over the seeds"
    d = by_number.get(conf.get("dense"))
    if d is not None and d["number"] != c["number"]:
        what = "the best dense that fits" if d["fits_every_seed"] else "the dense reference (over a budget)"
        text += (f"; {what}, #{d['number']} ({_describe(d['params'])}), reaches validation "
                 f"{_pm(d['val_mean'], d['val_sd'])}, test {_pm(d['test_mean'], d['test_sd'])} on the same seeds")
    elif d is not None:
        text += "; it is the best dense configuration that fits"
    if conf.get("tied_with"):
        others = ", ".join(f"#{n}" for n in conf["tied_with"])
        text += f". It ties with {others} (within one standard error); the cheapest of them is chosen"
    return text + f" ({conf['train_wall_s']:.0f} s of confirmation training)."


def _chip_words(hw: dict[str, Any] | None, ctx: dict[str, Any]) -> str:
    """``"Run it on gcn-accelerator with pes 1024, buffer_mb 2 (4.1 mm2, 3.2 W, estimated)."``: the device
    and hardware point of the answer, when several devices or a hardware space were searched."""
    searched = len(ctx.get("devices") or []) > 1 or ctx.get("hardware_space") or ctx.get("area_budget_mm2") \
        or ctx.get("power_budget_w")
    if not hw or not searched:
        return ""
    searched_knobs = [part.split("=", 1)[0].strip() for part in str(ctx.get("hardware_space") or "").split(";")
                      if "=" in part]
    knobs = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                      for k in searched_knobs if (v := hw.get(k)) is not None)
    chip = [f"{hw['area_mm2']:.3g} mm2" if hw.get("area_mm2") is not None else "area not modelled"]
    if hw.get("power_w") is not None:
        chip.append(f"{hw['power_w']:.3g} W")
    return (f"Run it on {hw.get('device', '?')}" + (f" with {knobs}" if knobs else "")
            + f" ({', '.join(chip)}, estimated).")


def _unmet_words(s: dict[str, Any]) -> str:
    """``"the 1 mJ cost budget and the 1 mm2 area budget"``: the budgets no trained trial meets."""
    ctx, budget = s.get("context") or {}, s.get("budget")
    names = {"cost": f"the {budget['text']} cost budget" if budget else "the cost budget",
             "area": f"the {ctx.get('area_budget_mm2'):g} mm2 area budget" if ctx.get("area_budget_mm2") else "",
             "power": f"the {ctx.get('power_budget_w'):g} W power budget" if ctx.get("power_budget_w") else ""}
    return " and ".join(names[b] for b in s.get("budgets_unmet") or [] if names.get(b))


def _raise_flags(s: dict[str, Any]) -> str:
    flags = {"cost": "--budget", "area": "--area-budget", "power": "--power-budget"}
    return " / ".join(flags[b] for b in s.get("budgets_unmet") or [] if b in flags)


def _reference_words(s: dict[str, Any], best: dict[str, Any], ref: dict[str, Any], unit: str) -> str:
    """The answer beside the dense reference: accuracy gap in points (test where both have it) and cost.
    After confirmation the answer's side is its confirmed mean; the reference's is its mean over the
    same seeds when it was a candidate (no dense fits), else its one run, said so."""
    saving = 100 * (1 - best["cost"] / ref["cost"]) if ref["cost"] > 0 else 0.0
    dearer = f"{saving:.0f}% less" if saving >= 0 else f"{-saving:.0f}% more"
    conf = s.get("confirmation") or {}
    rows = {c["number"]: c for c in conf.get("candidates") or []}
    mine = rows.get(best["number"]) if conf.get("chosen") == best["number"] else None
    theirs = rows.get(ref["number"])
    if mine is not None:
        use_test = mine.get("test_mean") is not None and (
            (theirs or {}).get("test_mean") is not None if theirs else ref.get("test_accuracy") is not None)
        name, mean_key, run_key = ("test", "test_mean", "test_accuracy") if use_test else \
            ("validation", "val_mean", "accuracy")
        if theirs is not None and theirs.get(mean_key) is not None:
            gap = 100 * (theirs[mean_key] - mine[mean_key])
            sd_key = "test_sd" if use_test else "val_sd"
            return (f"The dense reference (trial #{ref['number']}) reaches {name} "
                    f"{_pm(theirs[mean_key], theirs[sd_key])} on the same seeds at {_si(ref['cost'], unit)}: the "
                    f"choice's mean is {abs(gap):.1f} points {'below' if gap > 0 else 'above'} it at {dearer} cost.")
        gap = 100 * ((ref[run_key] or 0.0) - mine[mean_key])
        return (f"The dense reference (trial #{ref['number']}, one seed, not retrained) reaches {name} "
                f"{ref[run_key]:.3f} at {_si(ref['cost'], unit)}: the choice's confirmed mean is {abs(gap):.1f} "
                f"points {'below' if gap > 0 else 'above'} that one run, at {dearer} cost.")
    test = best.get("test_accuracy")
    both_test = test is not None and ref.get("test_accuracy") is not None
    key, name = ("test_accuracy", "test") if both_test else ("accuracy", "validation")
    gap = 100 * ((ref[key] or 0.0) - (best[key] or 0.0))
    return (f"The dense reference (trial #{ref['number']}) reaches {name} {ref[key]:.3f} at "
            f"{_si(ref['cost'], unit)}: the choice is {abs(gap):.1f} points "
            f"{'below' if gap > 0 else 'above'} it at {dearer} cost.")


def answer(s: dict[str, Any]) -> str:
    """The result in words: best feasible configuration against the reference and the budget, counts."""
    unit = s.get("cost_unit") or ""
    budget = s.get("budget")
    best, ref = s.get("best"), s.get("reference")
    lines = []
    within = f"within {budget['text']}" if budget else "overall"
    if best is None and not budget and s.get("n_trials", 0) == 0:  # no budget to name: it said "fits the budget"
        lines.append("No trial completed.")
    elif best is None:
        unmet = _unmet_words(s)
        lines.append(f"No trained configuration fits {unmet or (budget['text'] if budget else 'the budget')}"
                     + ("; no trial completed." if s.get("n_trials", 0) == 0
                        else f"; raise {_raise_flags(s) or '--budget'}."))
    else:
        test = best.get("test_accuracy")
        acc = f"validation accuracy {best['accuracy']:.3f}" + (f", test {test:.3f}" if test is not None else "")
        lines.append(f"Best {within}: {_describe(best['params'])}, trial #{best['number']}: {acc}.")
        confirm = _confirm_words(s)
        if confirm:
            lines.append(confirm)
        chip = _chip_words(best.get("hardware"), s.get("context") or {})
        if chip:
            lines.append(chip)
        if ref is not None and ref["number"] != best["number"]:
            lines.append(_reference_words(s, best, ref, unit))
        elif ref is not None:
            lines.append("It is the dense reference itself.")
        cost = f"It costs {_si(best['cost'], unit)}"
        if budget:
            cost += f", {100 * (1 - best['cost'] / budget['value']):.0f}% under the {budget['text']} budget"
        lines.append(cost + f" ({s.get('cost_source') or 'estimated'}).")
    screened = s.get("n_screened", 0)
    n_trained = s.get("n_trials", 0)
    text = f"{n_trained} configuration{'s' * (n_trained != 1)} trained ({s.get('n_feasible', 0)} within budget)"
    n_stop = s.get("n_stopped") or 0
    if screened:
        text += f", {screened} ruled out by the cost model as over budget"
        if n_stop:
            spent = s.get("stopped_train_wall_s") or 0.0
            text += (f" ({screened - n_stop} before training, {n_stop} stopped in the ticket search once their cost "
                     f"could only pass the budget, after {spent:.0f} s of training in all)")
        else:
            text += " before training"
    if s.get("n_duplicates"):
        text += f"; {s['n_duplicates']} repeated sample{'s' * (s['n_duplicates'] != 1)} not trained again"
    if s.get("n_failed"):
        text += f"; {s['n_failed']} failed (fail_reason in trials.csv)"
    lines.append(text + ".")
    if s.get("stopped"):
        lines.append(f"Stopped early: {s['stopped']}.")
    return " ".join(lines)
