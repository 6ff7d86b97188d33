"""Pareto plots (matplotlib, Agg backend, PNG) a person reads in five seconds.

x: the cost metric with an SI prefix picked for the data (e.g. "train energy on h100 [J]"),
y: validation accuracy. One colour per method (and, with several runs, one marker per run, each run
labelled by its folder); trials over the budget are hollow; the dense reference is labelled (where the
label covers no trial, bar or line: :func:`place_labels`); the
Pareto front of each run is a step line (a point on the front is the best accuracy affordable at
its cost); the budget is a vertical dashed line (a budget over ``FAR_BUDGET`` times the dearest
trial is a note at the axis' right end instead: the axis spans the trials); the chosen trial (most
accurate feasible) is a star. Screened configurations (ruled out by the cost model before training)
have no accuracy: they are not drawn, and their count is in the title. The x axis is linear while
the costs span less than ``LOG_SPREAD``; beyond that a log axis with labelled minor ticks shows every trial, and, with a
budget, a second, linear panel shows the region around the budget. A study with no trained trial
says so on the plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .confirm import seeds_text
from .export import complete_frame, pareto_frame, stopped_frame
from .hardware import draw_area_panel, draw_hardware, has_area

_PREFIXES = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
             (1e-6, "u"), (1e-9, "n")]
LOG_SPREAD = 20.0  # max/min cost beyond which the overview axis is logarithmic
FAR_BUDGET = 4.0  # a budget this many times the dearest trial: the axis shows the trials, the budget as a note
MINOR_LABEL_SPREAD = 100.0  # a log axis labels its 2x and 5x ticks only over at most two decades
METHOD_COLOURS = {"dense": "#222222", "gebt": "#1f77b4", "geb": "#17becf", "random": "#ff7f0e", "ugs": "#9467bd",
                  "sgcn": "#8c564b", "eb": "#1f77b4", "spline-eb": "#2ca02c", "spline": "#17becf",
                  "slimming": "#d62728"}
_SPARE = ["#e377c2", "#7f7f7f", "#bcbd22", "#2ca02c", "#d62728"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]
METHOD_MARKERS = {"dense": "o", "random": "s", "gebt": "^", "geb": "v", "ugs": "D", "sgcn": "P", "eb": "^",
                  "spline-eb": "v", "spline": "<", "slimming": "D"}


def _method_marker(method: str, methods: list[str]) -> str:
    return METHOD_MARKERS.get(method) or _MARKERS[methods.index(method) % len(_MARKERS)]


def _scale(max_value: float) -> tuple[float, str]:
    for s, p in _PREFIXES:
        if max_value >= s:
            return s, p
    return 1e-9, "n"


def _methods(frames: Sequence[pd.DataFrame]) -> list[str]:
    seen: dict[str, None] = {}
    for df in frames:
        df = complete_frame(df)
        if "param.method" in df:
            for m in df["param.method"].dropna():
                seen[str(m)] = None
    return list(seen) or ["trial"]


def _colour(method: str, methods: list[str]) -> str:
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return _SPARE[methods.index(method) % len(_SPARE)] if method in methods else _SPARE[0]


def _method_of(df: pd.DataFrame) -> pd.Series:
    if "param.method" in df:
        return df["param.method"].astype(str)
    return pd.Series(["trial"] * len(df), index=df.index)


def _screened(df: pd.DataFrame) -> int:
    return int(df["screened"].fillna(False).astype(bool).sum()) if "screened" in df else 0


def unique_labels(labels: Sequence[str]) -> list[str]:
    """The labels, with ``#2``, ``#3``... appended to repeats so every run is told apart."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def _draw(ax: Any, studies: list[tuple[str, pd.DataFrame, dict[str, Any]]], scale: float, methods: list[str],
          legend: bool, hardware_fig: Any = None, budget_line: bool = True) -> None:
    """Trials, fronts, the chosen point, the reference and (``budget_line``) the budget on ``ax``; with
    ``hardware_fig`` a one-run hardware search colours its trials by chip area or device instead
    (``draw_hardware``)."""
    several = len(studies) > 1
    for k, (label, df, summ) in enumerate(studies):
        done = complete_frame(df)
        run_marker = _MARKERS[k % len(_MARKERS)]
        budget = (summ.get("budget") or {}).get("value")
        by_hardware = hardware_fig is not None and not several and draw_hardware(
            ax, hardware_fig, done, scale, None if budget is None else float(budget),
            marker_of=lambda m: _method_marker(m, methods))
        ax._codesign_hardware = by_hardware  # the legend then leaves out the method markers
        if not done.empty:
            method = _method_of(done)
            feas = done["feasible"].astype(bool)
            for m in methods if not by_hardware else ():
                marker = run_marker if several else _method_marker(m, methods)
                c = _colour(m, methods)
                sel = method == m
                if (sel & feas).any():
                    ax.scatter(done.loc[sel & feas, "cost"] / scale, done.loc[sel & feas, "val_accuracy"], color=c,
                               marker=marker, s=36, alpha=0.85, zorder=3)
                if (sel & ~feas).any():
                    ax.scatter(done.loc[sel & ~feas, "cost"] / scale, done.loc[sel & ~feas, "val_accuracy"],
                               facecolors="none", edgecolors=c, marker=marker, s=36, alpha=0.85, zorder=3)
            front = pareto_frame(df)
            ax.step(front["cost"] / scale, front["val_accuracy"], where="post", color="0.45", lw=1.2,
                    ls=["-", "--", ":", "-."][k % 4], zorder=2,
                    label=(f"{label}: Pareto front" if several else "Pareto front") if legend else None)
        best = summ.get("best")
        if best:
            ax.scatter([best["cost"] / scale], [best["accuracy"]], marker="*", s=260, color="gold",
                       edgecolors="black", zorder=5,
                       label=(f"chosen{f' ({label})' if several else ''}: {chosen_text(best)}" if legend else None))
            conf = best.get("confirmed")
            if conf and conf.get("val_mean") is not None:  # mean +- sd over the confirmation seeds
                ax.errorbar([best["cost"] / scale], [conf["val_mean"]], yerr=[conf.get("val_sd") or 0.0], fmt="_",
                            color="black", ms=14, capsize=4, lw=1.2, zorder=6,
                            label=f"chosen: mean +- sd over {seeds_text(conf['seeds'])}" if legend else None)
                if not several:
                    _draw_other_candidates(ax, summ, done, scale, legend)
    labels = getattr(ax, "_codesign_labels", [])
    for (cost, acc), runs in _references(studies).items():  # one label per point, naming every run it is in
        where = "" if not several else " (every run)" if len(runs) == len(studies) else f" ({', '.join(runs)})"
        labels.append(ax.annotate(f"dense reference{where}\nacc {acc:.3f}", (cost / scale, acc),
                                  xytext=LABEL_OFFSETS[0][:2], textcoords="offset points", ha=LABEL_OFFSETS[0][2],
                                  fontsize=8, arrowprops={"arrowstyle": "-", "color": "0.3", "lw": 0.8}))
        labels[-1].set_in_layout(False)  # placed after the layout (place_labels), kept inside the axes there
    ax._codesign_labels = labels  # placed by place_labels once the figure's layout is final
    budgets = {(s["budget"]["value"], s["budget"]["text"]) for _, _, s in studies if s.get("budget")}
    for value, text in sorted(budgets) if budget_line else []:
        ax.axvline(value / scale, color="crimson", ls="--", lw=1.2, zorder=1,
                   label=f"budget {text}" if legend else None)


def _draw_other_candidates(ax: Any, summ: dict[str, Any], done: pd.DataFrame, scale: float, legend: bool) -> None:
    """The other confirmed candidates' mean +- sd (grey bars at their trials' cost), ``tie`` beside those
    within one standard error of the leader: a user sees what the answer was weighed against."""
    conf = summ.get("confirmation") or {}
    chosen = conf.get("chosen")
    if "number" not in done or "cost" not in done:
        return
    cost_of = dict(zip(done["number"].astype(int), done["cost"].astype(float), strict=True))
    tied = set(conf.get("tied_with") or [])
    drawn = 0
    for c in conf.get("candidates") or []:
        if c["number"] == chosen or c.get("val_mean") is None or c["number"] not in cost_of:
            continue
        x = cost_of[c["number"]] / scale
        ax.errorbar([x], [c["val_mean"]], yerr=[c.get("val_sd") or 0.0], fmt="_", color="0.5", ms=10, capsize=3,
                    lw=1.0, zorder=4,
                    label="other candidates: mean +- sd, same seeds" if legend and not drawn else None)
        if c["number"] in tied:
            ax.annotate(f"#{c['number']} ties", (x, c["val_mean"]), xytext=(6, -3), textcoords="offset points",
                        fontsize=8, color="0.3")
        drawn += 1


def chosen_text(best: dict[str, Any]) -> str:
    """``#12 acc 0.795`` (+ ``, confirmed 0.791 +- 0.012 (3 seeds)``) (+ the chip of a hardware search)."""
    text = f"#{best['number']} acc {best['accuracy']:.3f}"
    conf = best.get("confirmed")
    if conf and conf.get("val_mean") is not None:
        sd = "" if conf.get("val_sd") is None else f" +- {conf['val_sd']:.3f}"
        text += f",\n  {conf['val_mean']:.3f}{sd} over {seeds_text(conf['seeds'])}"
    else:
        text += " (one seed)"
    hw = best.get("hardware")
    if hw:
        chip = [str(hw.get("device", ""))]
        if hw.get("area_mm2") is not None:
            chip.append(f"{hw['area_mm2']:.3g} mm2")
        if hw.get("power_w") is not None:
            chip.append(f"{hw['power_w']:.3g} W")
        text += "\n  on " + ", ".join(chip)
    return text


# (dx, dy) points from the labelled point and the alignment, nearest first: below-left is the default
LABEL_OFFSETS = tuple(sorted(((sx * dx, dy, "right" if sx < 0 else "left") for dx in (10, 40, 80, 130)
                              for dy in (-26, 16, -50, 36, -74, 60, -100) for sx in (-1, 1)),
                             key=lambda o: (o[0] ** 2 + o[1] ** 2, o[0] > 0, o[1] > 0)))
_MARK_PX = 7.0  # a marker's half-width in pixels, and the spacing of the points sampled along lines


def place_labels(fig: Any) -> None:
    """Move each point label (``ax._codesign_labels``) to the place of ``LABEL_OFFSETS`` whose drawn box
    stays inside its axes and covers the fewest markers, bars, lines and other texts, the nearer of two
    that cover as many (a mark covered weighs as 10 points of distance): measured on the rendered figure,
    so it holds at any axis range, font and size."""
    import numpy as np

    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = getattr(ax, "_codesign_labels", [])
        if not labels:
            continue
        marks = _marks(ax)
        frame = ax.get_window_extent(renderer)
        taken = [t.get_window_extent(renderer) for t in ax.texts if t not in labels]
        for label in labels:
            best: tuple[float, int] | None = None
            for k, (dx, dy, ha) in enumerate(LABEL_OFFSETS):
                label.xyann = (dx, dy)
                label.set_ha(ha)
                box = _text_box(label, renderer).padded(_MARK_PX)
                covered = int(np.count_nonzero((marks[:, 0] >= box.x0) & (marks[:, 0] <= box.x1)
                                               & (marks[:, 1] >= box.y0) & (marks[:, 1] <= box.y1)))
                covered += 5 * sum(box.overlaps(t) for t in taken)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                score = 10 * covered + (0 if inside else 10_000) + math.hypot(dx, dy) / 10
                if best is None or score < best[0]:
                    best = (score, k)
            assert best is not None
            dx, dy, ha = LABEL_OFFSETS[best[1]]
            label.xyann = (dx, dy)
            label.set_ha(ha)
            taken.append(_text_box(label, renderer))


def _text_box(label: Any, renderer: Any) -> Any:
    """The pixel box of an annotation's text alone (``Annotation.get_window_extent`` adds its leader line,
    which ends on the labelled point)."""
    from matplotlib.text import Text

    label.update_positions(renderer)
    return Text.get_window_extent(label, renderer)


def _marks(ax: Any) -> Any:
    """Pixel positions of what a label should not cover in ``ax``: every scatter marker, and points every
    ``_MARK_PX`` along every line (Pareto steps, error bars, the budget line)."""
    import numpy as np
    from matplotlib.collections import LineCollection, PathCollection

    out = [np.zeros((0, 2))]
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), dtype=float).reshape(-1, 2)
        if isinstance(coll, PathCollection) and len(offsets):
            out.append(coll.get_offset_transform().transform(offsets))
        elif isinstance(coll, LineCollection):
            out += [_along(coll.get_transform().transform(np.asarray(seg, dtype=float)))
                    for seg in coll.get_segments() if len(seg)]
    for line in ax.lines:
        xy = np.asarray(line.get_xydata(), dtype=float)
        if len(xy):
            drawn = line.get_transform().transform(xy)
            out.append(drawn if line.get_linestyle() in ("None", "", " ") else _along(_stepped(line, drawn)))
    return np.concatenate(out)


def _stepped(line: Any, xy: Any) -> Any:
    """A ``steps-post`` line's corners (``ax.step(where="post")``): each point, then its successor's x at its y."""
    import numpy as np

    if not str(line.get_drawstyle()).startswith("steps") or len(xy) < 2:
        return xy
    corners = np.empty((2 * len(xy) - 1, 2))
    corners[0::2] = xy
    corners[1::2, 0], corners[1::2, 1] = xy[1:, 0], xy[:-1, 1]
    return corners


def _along(xy: Any) -> Any:
    """Points every ``_MARK_PX`` pixels along the polyline ``xy`` (its vertices included)."""
    import numpy as np

    pieces = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:], strict=True):
        n = max(1, int(np.hypot(*(b - a)) // _MARK_PX))
        pieces.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(pieces)


def _references(studies: list[tuple[str, pd.DataFrame, dict[str, Any]]]) -> dict[tuple[float, float], list[str]]:
    out: dict[tuple[float, float], list[str]] = {}
    for label, df, _ in studies:
        done = complete_frame(df)
        if "reference" not in done:
            continue
        for _, r in done[done["reference"].fillna(False).astype(bool)].iterrows():
            out.setdefault((float(r["cost"]), float(r["val_accuracy"])), []).append(label)
    return out


def _zoom_ylim(ax: Any, frames: list[pd.DataFrame], lo: float, hi: float, scale: float) -> None:
    """Fit the y axis of the zoom panel to the trials inside its x range."""
    accs = [float(a) for df in frames for c, a in zip(complete_frame(df).get("cost", []),
                                                      complete_frame(df).get("val_accuracy", []))
            if lo <= c / scale <= hi]
    if accs:
        pad = max(0.01, 0.08 * (max(accs) - min(accs)))
        ax.set_ylim(min(accs) - pad, max(accs) + pad)


def _log_axis(ax: Any, spread: float) -> None:
    """A log x axis whose labels never collide: minor ticks (2, 5) labelled only over at most
    ``MINOR_LABEL_SPREAD`` (two decades); beyond, decades only."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(fmt)
    if spread <= MINOR_LABEL_SPREAD:
        ax.xaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        ax.xaxis.set_minor_formatter(fmt)
        ax.tick_params(axis="x", which="minor", labelsize=7)
    else:
        ax.xaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 3.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())


def budget_is_far(budget: float, dearest: float) -> bool:
    """Whether ``budget`` lies over :data:`FAR_BUDGET` times the dearest cost drawn: the axis then spans the
    costs and the budget is a note (:func:`far_budget_note`), in ``pareto.png`` and ``cost_split.png``."""
    return dearest > 0 and budget > FAR_BUDGET * dearest


def far_budget_note(ax: Any, words: str) -> None:
    """``budget <words> ->`` in red at the top right of ``ax``: the budget past the axis' right end."""
    ax.annotate(f"budget {words} \u2192", xy=(0.99, 0.98), xycoords="axes fraction", ha="right", va="top",
                fontsize=8, color="crimson")


def _near(costs: list[float], budget: float) -> bool:
    """Whether any trial lies within [0.5, 1.5] x the budget (the zoom panel would not be empty)."""
    return any(0.5 * budget <= c <= 1.5 * budget for c in costs)


def prefetch_plotting() -> None:
    """Import matplotlib (Agg) and pyplot and load the text font, as the first plot would: run in a
    background thread by a search process while its workers train (``study.run_search``), so that drawing
    the plots after the last trial does not start with ~1 s of imports. An error here is left for the
    plots to report (they import the same modules), not printed from the thread."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401  (the import is the point)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(1, 1))
        figure.text(0.5, 0.5, "0.1 J")
        FigureCanvasAgg(figure).draw()
    except Exception:  # noqa: BLE001, S110 - see the docstring
        pass


def plot_studies(studies: Sequence[tuple[str, pd.DataFrame, dict[str, Any]]], path: str | Path) -> Path:
    """Draw ``(label, trials frame, summary)`` triples onto one PNG at ``path`` (labels: e.g. run folders)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    labels = unique_labels([label for label, _, _ in studies])
    studies = [(lab, df, s) for lab, (_, df, s) in zip(labels, studies)]
    frames = [df for _, df, _ in studies]
    costs = [float(c) for df in frames for c in complete_frame(df).get("cost", pd.Series(dtype=float))]
    budget_values = [s["budget"]["value"] for _, _, s in studies if s.get("budget")]
    positive = [c for c in costs if c > 0]
    spread = max(positive) / min(positive) if positive else 1.0
    # a budget far beyond every trial (1 kJ for trials of 4-10 J) would squash them all against the axis
    far = bool(positive and budget_values and spread <= LOG_SPREAD and budget_is_far(min(budget_values), max(costs)))
    scale, prefix = _scale(max(costs if far else [*costs, *budget_values], default=1.0))
    zoom = spread > LOG_SPREAD and bool(budget_values) and _near(costs, min(budget_values, default=0.0))
    area = (len(studies) == 1 and has_area(complete_frame(frames[0]))
            and bool((studies[0][2].get("context") or {}).get("hardware_space")))  # a searched chip
    widths = [1.2] * zoom + [1.0] + [0.8] * area
    fig, axes = plt.subplots(1, len(widths), figsize=(9.5 + 5.0 * (len(widths) - 1), 5.2),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    ax_zoom = axes[0][0] if zoom else None
    ax = axes[0][1 if zoom else 0]
    methods = _methods(frames)
    _draw(ax, studies, scale, methods, legend=True, hardware_fig=fig, budget_line=not far)
    if area:
        draw_area_panel(axes[0][-1], complete_frame(frames[0]), studies[0][2], methods, _colour)
    if spread > LOG_SPREAD:
        _log_axis(ax, spread)
    elif ax.get_xscale() == "log":  # draw_hardware chose it (devices a decade apart)
        _log_axis(ax, float(getattr(ax, "_codesign_spread", spread)))
    elif far:
        ax.set_xlim(0, max(costs) / scale * 1.15)
        texts = sorted({(s["budget"]["value"], s["budget"]["text"]) for _, _, s in studies if s.get("budget")})
        far_budget_note(ax, ", ".join(f"{text} ({value / max(costs):.0f}x the dearest trial)" for value, text in texts))
    elif (positive or budget_values) and ax.get_xscale() != "log":  # draw_hardware may have chosen log
        hi = max([*costs, *budget_values]) / scale
        lo = min([*costs, *budget_values]) / scale
        if area and not budget_values and costs and lo > 0.5 * hi:  # a hardware search: the trials' own range
            pad = 0.1 * (hi - lo) or 0.05 * hi
            ax.set_xlim(lo - pad, hi + pad)
        else:
            ax.set_xlim(0, hi * 1.08)
    if ax_zoom is not None:
        several_devices = len(studies) == 1 and sum(str(c).startswith("device_cost.") for c in frames[0].columns) > 1
        _draw(ax_zoom, studies, scale, methods, legend=False, hardware_fig=fig if several_devices else None)
        b = min(budget_values) / scale
        ax_zoom.set_xlim(0.5 * b, 1.5 * b)
        _zoom_ylim(ax_zoom, frames, 0.5 * b, 1.5 * b, scale)
        ax_zoom.set_title("around the budget (linear)", fontsize=9)
        ax.set_title("every trained trial (log)", fontsize=9)
    first = studies[0][2] if studies else {}
    metric = str(first.get("metric") or "cost").replace("-", " ")
    unit = first.get("cost_unit") or ""
    devices = sorted({str(s.get("device")) for _, _, s in studies if s.get("device")})
    where = f" on {', '.join(devices)}" if devices else ""
    source = first.get("cost_source")
    xlabel = f"{metric}{where} [{prefix}{unit}]" + (f"\n({source})" if source else "")
    for a in (ax, ax_zoom):
        if a is None:
            continue
        a.set_xlabel(xlabel, fontsize=9)
        a.set_ylabel("validation accuracy")
        a.grid(True, alpha=0.3, which="both" if a is ax and spread > LOG_SPREAD else "major")
    if not costs:
        ax.text(0.5, 0.5, "no complete trials", transform=ax.transAxes, ha="center", va="center", fontsize=14,
                color="0.3")
        ax.set_xlim(0, 1) if not budget_values else None
        ax.set_ylim(0, 1)
    trained = sum(len(complete_frame(df)) for df in frames)
    feasible = sum(int(complete_frame(df)["feasible"].astype(bool).sum()) for df in frames if len(complete_frame(df)))
    seeds = [(s.get("confirmation") or {}).get("n_seeds") for _, _, s in studies]
    screened = sum(_screened(df) for df in frames)
    stopped = sum(len(stopped_frame(df)) for df in frames)
    counts = f"{trained} trained ({feasible} within budget)"
    if screened:
        counts += (f";\n{screened} screened as over budget by the cost model"
                   + (f" ({screened - stopped} before training, {stopped} stopped in the ticket search)" if stopped
                      else " before training") + "; not drawn")
    if any(seeds):
        counts += f"\nanswer confirmed on {seeds_text(max(n or 0 for n in seeds))} (mean +- sd bar on the star)"
    elif costs:
        counts += "\nanswer on one seed per configuration (not confirmed)"
    fig.suptitle("Accuracy vs cost: " + ", ".join(labels) + "\n" + counts, fontsize=10)
    by_hardware = bool(getattr(ax, "_codesign_hardware", False))  # trials coloured by area/device instead
    by_area = by_hardware and not any(str(c).startswith("device_cost.") for c in frames[0].columns)
    handles = [Line2D([], [], ls="", marker=_method_marker(m, methods) if len(studies) == 1 else "o",
                      color="0.4" if by_area else _colour(m, methods), label=m)
               for m in methods if costs and (not by_hardware or by_area)]  # by area: colour is the chip
    if len(studies) > 1:
        handles += [Line2D([], [], ls="", marker=_MARKERS[k % len(_MARKERS)], color="0.4", label=f"run {lab}")
                    for k, lab in enumerate(labels)]
    if costs:
        handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", color="0.4",
                              label="over budget (hollow)"))
    h2, l2 = ax.get_legend_handles_labels()
    ax.legend(handles=handles + h2, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    place_labels(fig)
    path = Path(path)
    from costmodels.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path
