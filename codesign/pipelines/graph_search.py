"""The graph-ticket search: its default space and the evaluator ``codesign search`` hands to ``search``.

Space (``--task graph``): ``method`` in gebt, geb, sgcn, random, ugs, dense; ``graph_sparsity`` p_g
(gebt, geb, sgcn, random, ugs), ``weight_sparsity`` p_w (gebt, random, ugs), ``threshold`` η of the
early-bird detector (gebt, geb), and ``train_epochs`` (every method: the length of the phase that
trains the final network: dense and random train for it, geb/gebt retrain the ticket for it, ugs
retrains each round for it, sgcn retrains its sparsified graph for it;
``GraphTrainConfig.retrain_epochs``). SGCN's schedule is fixed (pretrain E, sparsify E, retrain R),
so its cost interval is exact (:mod:`codesign.pipelines.graph_bounds`). A parameter that does not apply
to a method takes the value the method uses (dense: p_g = p_w = 0; no detector: threshold None).
``--epochs`` still sets the other phases (pretraining, the ticket search's cap, UGS mask training);
given on the command line, it caps ``train_epochs`` too (:func:`cap_train_epochs`) unless ``--space`` sets it.
With a budget, the dense run of the most ``train_epochs`` whose exact cost fits is trained right after
the reference (:func:`dense_that_fits`; in a hardware or multi-device search its cost is priced at its
best hardware under the area and power budgets, ``HardwareEvaluator.predict``).

What sets the cost: on a launch-bound device (an H100 running a Cora GCN) every epoch costs about
the same whatever the sparsity, so training cost follows the number of epochs (``train_epochs``,
the early-bird epoch, UGS rounds); on a bandwidth- or compute-bound device (a CPU, an edge GPU,
large graphs) sparsity also cuts the cost of each epoch.

Evaluation of one configuration: train it here (``codesign.graphs.pipeline.train``), then price the
executed run on ``--device`` with ``costmodels.price_gnn_run`` from the result's device-independent
``cost_inputs`` (accuracy from a real run, cost of that run estimated on the hardware being
designed for). ``--measured`` instead takes this machine's measured cost of the run.
:meth:`GraphEvaluator.predict` prices the run a configuration would make *before* training
(:mod:`codesign.pipelines.graph_bounds`), for screening. With ``stop_over`` (the budget, when the
search screens) a run whose ticket search has gone on so long that its cost's lower bound is over
the budget is stopped there (:meth:`GraphEvaluator.search_limit`) and reported as
:class:`search.OverBudget`: the detector decides the search's length, so this is known only while
the run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from search import CostInterval, Evaluation, EvaluationError, Metric, OverBudget, Param, SearchSpace

GRAPH_METHODS = ("gebt", "geb", "sgcn", "random", "ugs", "dense")
_SPARSE = frozenset({"gebt", "geb", "sgcn", "random", "ugs"})
TRAIN_EPOCHS = (20, 200, 10)  # the train_epochs range (low, high, step); the papers train 100
REFERENCE_METHOD = "dense"


def graph_space(max_sparsity: float = 0.9) -> SearchSpace:
    """The default graph search space (see the module docstring)."""
    lo, hi, step = TRAIN_EPOCHS
    return SearchSpace((
        Param("method", choices=GRAPH_METHODS, help="ticket method"),
        Param("graph_sparsity", low=0.0, high=max_sparsity, applies_to=_SPARSE, default=0.0,
              help="fraction of edges removed"),
        Param("weight_sparsity", low=0.0, high=max_sparsity, applies_to=frozenset({"gebt", "random", "ugs"}),
              default=0.0, help="fraction of weights removed"),
        Param("threshold", low=0.05, high=0.3, applies_to=frozenset({"gebt", "geb"}), default=None,
              help="early-bird detector threshold eta (methods without a detector: none)"),
        Param("train_epochs", low=lo, high=hi, step=step, integer=True,
              help="epochs of the phase that trains the final network (dense/random: training; tickets: retraining)"),
    ))


def cap_train_epochs(space: SearchSpace, epochs: int) -> SearchSpace:
    """``--epochs E`` given (and ``train_epochs`` not set by ``--space``): the final phase is capped at E
    like every other phase, ``train_epochs`` in ``low..E`` on the range's step (E below the range: exactly
    E). Without ``--epochs`` the range stays the default's, the papers' 100 epochs inside it."""
    from dataclasses import replace

    p = space.get("train_epochs")
    assert p.low is not None and p.high is not None
    high = min(p.high, float(epochs))
    low = min(p.low, high)
    if p.step and high > low:
        high = low + (high - low) // p.step * p.step  # Optuna needs (high - low) divisible by step
    capped = replace(p, low=low, high=high, step=None if low == high else p.step)
    return SearchSpace(tuple(capped if q.name == p.name else q for q in space.params))


def reference_params(space: SearchSpace, epochs: int | None) -> dict[str, Any] | None:
    """The dense reference run (trained first, once): ``--epochs`` epochs, or None if the space has no dense."""
    return space.reference(REFERENCE_METHOD, {"train_epochs": epochs or 100})


def dense_that_fits(space: SearchSpace, predict: Any, budget: float | None) -> dict[str, Any] | None:
    """The dense configuration with the most ``train_epochs`` whose exact predicted cost fits ``budget``
    (trained right after the reference, so a sparse answer must beat the best dense that fits); None
    without a budget or a predictor, or when not even the shortest dense run fits."""
    if budget is None or predict is None or space.reference(REFERENCE_METHOD, {}) is None:
        return None
    p = space.get("train_epochs")
    assert p.low is not None and p.high is not None
    step = int(p.step or 1) if p.low != p.high else 1
    best = None
    for epochs in range(int(p.low), int(p.high) + 1, step):  # cost grows with epochs: stop at the first over
        params = space.reference(REFERENCE_METHOD, {"train_epochs": epochs})
        interval = predict(params)
        if interval is None or not interval.exact or interval.high > budget:
            break
        best = params
    return best


def init_search_worker(threads: int) -> None:
    """Run first in each search worker process (``n_jobs`` > 1): set its torch threads, and give tqdm a
    thread lock. tqdm's default lock is a multiprocessing one: in a process forked from the fork server
    it is a named semaphore the resource tracker watches, and a worker stopped mid-trial leaves it
    behind ("leaked semaphore objects" on the terminal after Ctrl-C). A worker's bars never cross
    processes, so a thread lock is all they need."""
    import threading

    import torch
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class GraphEvaluator:
    """``evaluator(params, seed) -> Evaluation`` for graph tickets (see the module docstring)."""

    model: str
    dataset: str
    metric: Metric
    device: str | None
    measured: bool = False
    epochs: int | None = 100
    data_root: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    stop_over: float | None = None  # stop a run once its cost is proven over this (the budget; see module doc)

    def config(self, params: Mapping[str, Any], seed: int) -> Any:
        from codesign.graphs.config import GraphTrainConfig

        kwargs: dict[str, Any] = {
            "model": self.model, "dataset": self.dataset, "method": params["method"], "seed": seed,
            "epochs": self.epochs, "data_root": self.data_root,
            "graph_sparsity": float(params.get("graph_sparsity") or 0.0),
            "weight_sparsity": float(params.get("weight_sparsity") or 0.0),
            **dict(self.overrides),
        }
        if params.get("threshold") is not None:
            kwargs["eta"] = float(params["threshold"])
        if params.get("train_epochs") is not None:
            kwargs["retrain_epochs"] = int(params["train_epochs"])
        return GraphTrainConfig(**kwargs)

    def check(self) -> None:
        """Fail now (before a study exists) on a model, dataset or option no trial could run with."""
        from codesign.graphs.data import load_dataset

        self.config({"method": "dense"}, 0)
        load_dataset(self.dataset, self.data_root)

    def predict(self, params: dict[str, Any]) -> CostInterval | None:
        """The cost interval of the run ``params`` would make, before training (None with ``--measured``)."""
        return None if self.measured else self._interval(self.config(params, 0))

    def _interval(self, config: Any, search_from: int | None = None) -> CostInterval:
        from codesign.graphs.data import load_dataset

        from .graph_bounds import run_bounds
        from .pricing import priced_value

        (low, high), (ep_low, ep_high), exact = run_bounds(config, load_dataset(self.dataset, self.data_root),
                                                           search_from)
        return CostInterval(priced_value(low, self.metric, self.device), priced_value(high, self.metric, self.device),
                            exact=exact, epochs_low=ep_low, epochs_high=ep_high)

    def search_limit(self, config: Any) -> int | None:
        """The search epochs after which a run of ``config`` whose detector has not fired is over
        ``stop_over`` (it will search at least one epoch more, and the lower bound of a run searching
        ``T`` epochs grows with ``T``); None: no such epoch below the search cap, or nothing to stop."""
        from .graph_bounds import DETECTOR_METHODS, search_epochs

        if self.stop_over is None or self.measured or config.method not in DETECTOR_METHODS:
            return None
        lo, hi = search_epochs(config)
        if self._interval(config, hi).low <= self.stop_over:
            return None
        while lo < hi:  # the fewest search epochs T whose run is over the budget: stop after T - 1
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self._interval(config, mid).low > self.stop_over else (mid + 1, hi)
        return max(lo - 1, 1)

    def __call__(self, params: dict[str, Any], seed: int) -> Evaluation:
        from codesign.graphs.costing import price
        from codesign.graphs.methods.search import SearchStopped
        from codesign.graphs.pipeline import train
        from codesign.runtime.result_checks import SparsityNotReached

        from .pricing import trial_cost

        config = self.config(params, seed)
        limit = self.search_limit(config)
        try:
            result = train(config, progress=False, search_limit=limit)
        except SearchStopped as stop:  # the run can only be dearer than this interval's low end
            raise OverBudget(self._interval(config, stop.epochs + 1), stop.epochs, str(stop)) from None
        except SparsityNotReached as err:  # this configuration's sparsity only: its trial fails, the search goes on
            raise EvaluationError(str(err)) from None
        cost, costs = trial_cost(result, self.metric, self.device, self.measured, price)
        phases = result.get("phases", [])
        return Evaluation(
            val_accuracy=float(result["val_accuracy"]),
            test_accuracy=None if result.get("test_accuracy") is None else float(result["test_accuracy"]),
            cost=cost,
            costs=costs,
            attrs={"eb_epoch": result.get("eb_epoch"), "train_wall_s": result.get("wall_s"),
                   "achieved_graph_sparsity": result.get("achieved_graph_sparsity", result.get("graph_sparsity")),
                   "achieved_weight_sparsity": result.get("achieved_weight_sparsity", result.get("weight_sparsity")),
                   "epochs_run": sum(int(p["epochs"]) for p in phases),
                   "phases": [f"{p['name']}:{p['epochs']}" for p in phases],
                   "cost_inputs": result.get("cost_inputs")},  # re-pricing on other hardware (hardware_pricing)
        )
