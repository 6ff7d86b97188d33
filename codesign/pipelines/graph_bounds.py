"""The phases a graph run will execute, known before training: exact or bounded, for screening.

``run_bounds(config, data)`` returns two ``cost_inputs`` dicts (the form a finished run records,
re-priced by ``codesign.graphs.costing.price``): the cheapest and the dearest run the configuration
can make, their total training epochs, and whether the schedule is exact. The cost model's cost
grows with epochs and with graph/weight density, so pricing the two gives an interval that holds
the priced cost of the run actually made.

Per method (E = ``--epochs``, the phase length and search cap; R = ``train_epochs``, the final
phase; masks keep exactly ``n - round(p n)`` entries, priced here with a ``DENSITY_SLACK`` for the
rounding):

* ``dense``: train R on the full graph. Exact.
* ``random``: train R at densities ``1 - p_g``, ``1 - p_w``. Exact.
* ``gebt``: ticket search for T epochs, then retrain R at ``1 - p_g``, ``1 - p_w``; the detector
  cannot fire before ``max(warmup, fifo + 1)`` (its FIFO must fill) nor after the cap E, so
  ``T`` lies in ``[min(max(warmup, fifo + 1), E), E]``.
* ``geb``: pretrain E, graph search T (as above), retrain R at ``1 - p_g`` (dense weights).
* ``sgcn``: pretrain E, sparsify E, retrain R. Exact.
* ``ugs``: ``rounds`` rounds of mask training E and retraining R. Lower bound: every phase at the
  final densities ``min(1 - p, (1 - step)^rounds)``; upper bound: every phase dense.

During a run the interval narrows: a search that has run ``k`` epochs without firing will run at
least ``k + 1`` (``run_bounds(..., search_from=k + 1)``); the budgeted search stops such a run once
that lower bound is over its budget (``codesign.pipelines.graph_search``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from costmodels import PhaseSpec

DENSITY_SLACK = 1e-3  # mask-count rounding: |achieved - requested density| <= 0.5 / entries, far below this


def _clip(d: float) -> float:
    return min(1.0, max(0.0, d))


DETECTOR_METHODS = frozenset({"gebt", "geb"})  # a detector decides the search length: bounded, not exact


def search_epochs(config: Any) -> tuple[int, int]:
    """The fewest and most epochs the ticket search of a detector method can run."""
    cap = config.phase_epochs()
    return min(max(config.warmup, config.fifo + 1), cap), cap


def _phases(config: Any, search_epochs: int, g: float, w: float) -> list[PhaseSpec]:
    """Phases of a non-UGS run whose search (if any) ran ``search_epochs`` and whose ticket has densities g, w."""
    method, cap, final = config.method, config.phase_epochs(), config.final_epochs()
    copies = config.layers if config.graph_sharing == "per-layer" else 1
    search = PhaseSpec("search", search_epochs, trainable_graph=True, mask_update=True, graph_copies=copies,
                       graph_training="alternate")  # as codesign/graphs/methods/gebt.py records it
    if method == "dense":
        return [PhaseSpec("train", final)]
    if method == "random":
        return [PhaseSpec("train", final, g, w)]
    if method == "gebt":
        return [search, PhaseSpec("retrain", final, g, w)]
    if method in ("geb", "sgcn"):  # weights frozen during the graph search (methods/geb.py)
        name = "search" if method == "geb" else "sparsify"
        return [PhaseSpec("pretrain", cap), replace(search, name=name, graph_training="frozen-weights"),
                PhaseSpec("retrain", final, g, 1.0)]
    raise ValueError(f"no phase plan for method {method!r}")


def _ugs_phases(config: Any, g: float, w: float, dense: bool) -> list[PhaseSpec]:
    from codesign.graphs.methods.ugs import default_rounds

    rounds = config.rounds or default_rounds(config.weight_sparsity, config.graph_sparsity)
    mask_epochs, final = config.phase_epochs(200), config.final_epochs(config.phase_epochs(200))
    gd, wd = (1.0, 1.0) if dense else (g, w)
    out: list[PhaseSpec] = []
    for r in range(1, rounds + 1):
        out.append(PhaseSpec(f"ugs-mask-r{r}", mask_epochs, gd, wd, trainable_graph=True, mask_update=True))
        out.append(PhaseSpec(f"ugs-retrain-r{r}", final, gd, wd))
    return out


def _ugs_floor(config: Any) -> tuple[float, float]:
    from codesign.graphs.methods.ugs import EDGE_STEP, WEIGHT_STEP, default_rounds

    rounds = config.rounds or default_rounds(config.weight_sparsity, config.graph_sparsity)
    return (min(1 - config.graph_sparsity, (1 - EDGE_STEP) ** rounds),
            min(1 - config.weight_sparsity, (1 - WEIGHT_STEP) ** rounds))


def _epochs(phases: list[PhaseSpec]) -> int:
    return int(sum(p.epochs for p in phases))


def run_bounds(config: Any, data: Any, search_from: int | None = None
               ) -> tuple[tuple[dict[str, Any], dict[str, Any]], tuple[int, int], bool]:
    """``((low inputs, high inputs), (low epochs, high epochs), exact)`` for a ``GraphTrainConfig``;
    ``search_from``: the search is known to run at least this many epochs (detector methods)."""
    from codesign.graphs.costing import cost_inputs

    g = 1.0 if config.method == "dense" else 1 - config.graph_sparsity
    w = 1.0 if config.method in ("dense", "geb", "sgcn") else 1 - config.weight_sparsity
    if config.method == "ugs":
        g_floor, w_floor = _ugs_floor(config)
        lo_g, lo_w = _clip(g_floor - DENSITY_SLACK), _clip(w_floor - DENSITY_SLACK)
        low = _ugs_phases(config, lo_g, lo_w, dense=False)
        high = _ugs_phases(config, 1.0, 1.0, dense=True)
        infer_low, infer_high = (lo_g, lo_w), (1.0, 1.0)
        exact = False
    else:
        t_lo, t_hi = search_epochs(config)
        if search_from is not None and config.method in DETECTOR_METHODS:
            t_lo = min(max(t_lo, search_from), t_hi)
        lo_g, lo_w = _clip(g - DENSITY_SLACK), _clip(w - DENSITY_SLACK)
        hi_g, hi_w = _clip(g + DENSITY_SLACK), _clip(w + DENSITY_SLACK)
        if config.method == "sgcn":
            t_lo = t_hi
        low, high = _phases(config, t_lo, lo_g, lo_w), _phases(config, t_hi, hi_g, hi_w)
        infer_low, infer_high = (lo_g, lo_w), (hi_g, hi_w)
        exact = config.method in ("dense", "random", "sgcn")
    return ((cost_inputs(config, data, low, *infer_low), cost_inputs(config, data, high, *infer_high)),
            (_epochs(low), _epochs(high)), exact)
