"""The graph-ticket search: its default space and the evaluator ``codesign search`` hands to ``search``.

Space (``--task graph``): ``method`` in gebt, geb, random, ugs, dense; ``graph_sparsity`` p_g
(gebt, geb, random, ugs), ``weight_sparsity`` p_w (gebt, random, ugs), ``threshold`` η of the
early-bird detector (gebt, geb). A parameter that does not apply to a method takes the value the
method uses (dense: p_g = p_w = 0; no detector: threshold None).

Evaluation of one configuration: train it here (``codesign.graphs.pipeline.train``, epochs capped
by ``epochs``), then price the executed run on ``--device`` with ``costmodels.price_gnn_run`` from
the result's device-independent ``cost_inputs`` (the co-design point: accuracy from a real run,
cost of that run estimated on the hardware being designed for). ``--measured`` instead takes this
machine's measured cost of the run where the training pipeline measured it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from search import Evaluation, Metric, Param, SearchSpace

GRAPH_METHODS = ("gebt", "geb", "random", "ugs", "dense")
_SPARSE = frozenset({"gebt", "geb", "random", "ugs"})


def graph_space(max_sparsity: float = 0.9) -> SearchSpace:
    """The default graph search space (see the module docstring)."""
    return SearchSpace((
        Param("method", choices=GRAPH_METHODS, help="ticket method"),
        Param("graph_sparsity", low=0.0, high=max_sparsity, applies_to=_SPARSE, default=0.0,
              help="fraction of edges removed"),
        Param("weight_sparsity", low=0.0, high=max_sparsity, applies_to=frozenset({"gebt", "random", "ugs"}),
              default=0.0, help="fraction of weights removed"),
        Param("threshold", low=0.05, high=0.3, applies_to=frozenset({"gebt", "geb"}), default=None,
              help="early-bird detector threshold eta (methods without a detector: none)"),
    ))


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
        return GraphTrainConfig(**kwargs)

    def __call__(self, params: dict[str, Any], seed: int) -> Evaluation:
        from codesign.graphs.costing import price
        from codesign.graphs.pipeline import train

        from .pricing import trial_cost

        result = train(self.config(params, seed), progress=False)
        cost, costs = trial_cost(result, self.metric, self.device, self.measured, price)
        return Evaluation(
            val_accuracy=float(result["val_accuracy"]),
            test_accuracy=None if result.get("test_accuracy") is None else float(result["test_accuracy"]),
            cost=cost,
            costs=costs,
            attrs={"eb_epoch": result.get("eb_epoch"), "train_wall_s": result.get("wall_s"),
                   "graph_sparsity_achieved": result.get("graph_sparsity"),
                   "weight_sparsity_achieved": result.get("weight_sparsity"),
                   "phases": [f"{p['name']}:{p['epochs']}" for p in result.get("phases", [])],
                   "cost_inputs": result.get("cost_inputs")},  # re-pricing on other hardware (hardware_pricing)
        )
