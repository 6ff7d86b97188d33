"""The pruned-CNN search: its default space and the evaluator ``codesign search --task cnn`` hands to ``search``.

Space (``--task cnn``): ``method`` in dense, eb, spline-eb, spline, slimming, random;
``channel_sparsity`` p (every method but dense: the fraction of prunable channels removed);
``threshold`` of the ticket detector (eb, spline-eb, spline). The threshold means what the
method's detector compares against: the mask distance ε of the EB detector (``eb``, ``spline``
with ``--detector eb``; paper 0.1) or the partition-code distance of the spline-EB detector
(``spline-eb``, ``spline`` with the default spline detector; paper 0.16). A parameter that does
not apply takes the value the method uses (dense: p = 0; slimming, random: no detector).

Evaluation of one configuration: train it here (``codesign.cnn.pipeline.train`` on a seeded
training subset, ``val_size`` of it held out), take the *validation* accuracy as the objective and
report the test accuracy, then price the executed run on ``--device`` with
``codesign.cnn.cost.price(result["cost_inputs"], device)`` (``costmodels.price_run`` of the dense
phase at the dense widths and the pruned phase at the kept widths; estimated, not measured).
``--measured`` instead takes this machine's measured training wall time (train-latency only).

Screening (:meth:`CNNEvaluator.predict`, :mod:`codesign.pipelines.cnn_bounds`): the cost of a run lies
between the run at the requested channel sparsity's narrowest possible widths and the dense network
(exact for dense and random); with a budget, a configuration whose low end is over it is not trained,
and a detector run (eb, spline-eb, spline) is stopped once the epochs it searched put its low end
over the budget (``stop_over``, :class:`search.OverBudget`), as the graph search does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from costmodels.errors import CodesignError
from search import CostInterval, Evaluation, EvaluationError, Metric, OverBudget, Param, SearchSpace

CNN_METHODS = ("eb", "spline-eb", "spline", "slimming", "random", "dense")
_PRUNED = frozenset({"eb", "spline-eb", "spline", "slimming", "random"})
_DETECTED = frozenset({"eb", "spline-eb", "spline"})

# CPU-scale defaults of `codesign search --task cnn` (about 10-20 s per trial on 2 cores)
CPU_DEFAULTS = {"model": "vgg11", "dataset": "fashion-mnist", "width": 0.25, "epochs": 8, "train_subset": 2000,
                "val_size": 0.1, "batch_size": 128, "probe_grid": 16}


def cnn_space(min_sparsity: float = 0.1, max_sparsity: float = 0.8) -> SearchSpace:
    """The default CNN search space (see the module docstring)."""
    return SearchSpace((
        Param("method", choices=CNN_METHODS, help="pruning method"),
        Param("channel_sparsity", low=min_sparsity, high=max_sparsity, applies_to=_PRUNED, default=0.0,
              help="fraction of prunable channels removed"),
        Param("threshold", low=0.05, high=0.3, applies_to=_DETECTED, default=None,
              help="ticket detector threshold: EB mask distance or spline code distance (others: none)"),
    ))


def reference_params(space: SearchSpace, epochs: int | None = None) -> dict[str, Any] | None:
    """The dense reference run (trained first, once; its length is the task's ``--epochs``), or None if the
    space leaves dense out."""
    return space.reference("dense", {})


def uses_spline_detector(method: str, detector: str = "spline") -> bool:
    """True when ``method`` watches partition codes (``threshold`` = spline threshold), else EB masks."""
    return method == "spline-eb" or (method == "spline" and detector == "spline")


@dataclass(frozen=True)
class CNNEvaluator:
    """``evaluator(params, seed) -> Evaluation`` for pruned CNNs (see the module docstring).

    ``overrides`` are extra ``CNNTrainConfig`` fields applied to every trial (e.g. ``detector``).
    """

    model: str
    dataset: str
    metric: Metric
    device: str | None
    measured: bool = False
    epochs: int = 8
    width: float = 0.25
    train_subset: int | None = 2000
    val_size: float = 0.1
    batch_size: int = 128
    probe_grid: int = 16
    data_root: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    stop_over: float | None = None  # stop a search once its cost is proven over this (the budget)

    def __post_init__(self) -> None:
        if self.val_size == 0:
            raise CodesignError("--val-size 0: the search selects on validation accuracy and needs a validation "
                                "set; use e.g. --val-size 0.1 (a fraction) or --val-size 500 (images)")

    def config(self, params: Mapping[str, Any], seed: int) -> Any:
        from codesign.cnn.pipeline import CNNTrainConfig

        method = params["method"]
        kwargs: dict[str, Any] = {
            "model": self.model, "dataset": self.dataset, "method": method, "seed": seed, "epochs": self.epochs,
            "width": self.width, "train_subset": self.train_subset, "val_size": self.val_size,
            "batch_size": self.batch_size, "probe_grid": self.probe_grid, "data_root": self.data_root,
            "channel_sparsity": float(params.get("channel_sparsity") or 0.0), "progress": False,
            **dict(self.overrides),
        }
        if params.get("threshold") is not None:
            key = "spline_threshold" if uses_spline_detector(method, kwargs.get("detector", "spline")) else "eb_eps"
            kwargs[key] = float(params["threshold"])
        return CNNTrainConfig(**kwargs)

    def check(self) -> None:
        """Fail now (before a study exists) on data no trial could load (a missing dataset, a bad --val-size)."""
        from codesign.cnn.data import load_dataset
        from codesign.runtime.data_root import resolve_data_root

        load_dataset(self.dataset, resolve_data_root(self.data_root), train_subset=self.train_subset,
                     val_size=self.val_size or 0.0)

    def predict(self, params: dict[str, Any]) -> CostInterval | None:
        """The cost interval of the run ``params`` would make, before training (:mod:`.cnn_bounds`; None with
        ``--measured`` or a network it does not bound)."""
        return None if self.measured else self._interval(self.config(params, 0))

    def _interval(self, config: Any, search_from: int | None = None) -> CostInterval | None:
        from codesign.cnn.cost import price

        from .cnn_bounds import run_bounds
        from .pricing import priced_value

        bounds = run_bounds(config, search_from)
        if bounds is None:
            return None
        lows, highs, (ep_lo, ep_hi), exact = bounds
        low = min(priced_value(i, self.metric, self.device, price) for i in lows)
        high = max(priced_value(i, self.metric, self.device, price) for i in highs)
        return CostInterval(low, max(low, high), exact=exact, epochs_low=ep_lo, epochs_high=ep_hi)

    def search_limit(self, config: Any) -> int | None:
        """The search epochs after which a run whose detector has not fired is proven over ``stop_over``
        (as the graph search's :meth:`GraphEvaluator.search_limit`); None: nothing to stop."""
        from .cnn_bounds import DETECTED

        if self.stop_over is None or self.measured or config.method not in DETECTED:
            return None
        epochs = int(config.resolved().epochs)
        for t in range(2, epochs + 1):  # the fewest search epochs t whose run is over: stop after t - 1
            interval = self._interval(config, t)
            if interval is None:
                return None
            if interval.low > self.stop_over:
                return t - 1
        return None

    def __call__(self, params: dict[str, Any], seed: int) -> Evaluation:
        from dataclasses import replace

        from codesign.cnn.cost import price
        from codesign.cnn.pipeline import train
        from codesign.graphs.methods.search import SearchStopped
        from codesign.runtime.result_checks import SparsityNotReached

        from .pricing import trial_cost

        config = self.config(params, seed)
        limit = self.search_limit(config)
        try:
            result = train(replace(config, search_limit=limit) if limit is not None else config)
        except SearchStopped as stop:  # the run can only be dearer than this interval's low end
            interval = self._interval(config, stop.epochs + 1)
            assert interval is not None
            raise OverBudget(interval, stop.epochs, str(stop)) from None
        except SparsityNotReached as err:  # this configuration's sparsity only: its trial fails, the search goes on
            raise EvaluationError(str(err)) from None
        if result.get("val_accuracy") is None:  # e.g. a fraction that rounds to 0 images of a tiny subset
            raise CodesignError(f"--val-size {self.val_size:g} held out no validation images of "
                                f"{result['data']['n_train']}; raise --val-size or --train-subset")
        cost, costs = trial_cost(result, self.metric, self.device, self.measured, price)
        return Evaluation(
            val_accuracy=float(result["val_accuracy"]),
            test_accuracy=float(result["test_accuracy"]),
            cost=cost,
            costs=costs,
            attrs={"eb_epoch": result.get("eb_epoch"), "eb_found": result.get("eb_found"),
                   "train_wall_s": result.get("wall_s"),
                   "channel_sparsity_achieved": result.get("channel_sparsity"),
                   "achieved_channel_sparsity": result.get("achieved_channel_sparsity", result.get("channel_sparsity")),
                   "kept_channels": list(result.get("kept_channels", [])),
                   "forward_flops_reduction": result["forward_flops"]["reduction"],
                   "phases": [f"{p['name']}:{p['epochs']}" for p in result.get("phases", [])]},
        )
