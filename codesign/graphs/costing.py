"""Analytical cost of a graph run, from device-independent inputs a run records.

``cost_inputs(...)`` gathers what the cost model needs (architecture, graph statistics, one
``PhaseSpec`` per executed phase with the epochs actually run, the ticket's inference densities);
``price(inputs, device)`` turns it into ``costmodels.price_gnn_run(...).to_dict()``, so a search can
re-price the same run on any device profile without retraining.

Weight densities are global over layers. Every layer's weight cost is ``N * nnz(W_l)`` (all layers
see the same ``N`` rows), so ``N * density * sum_l |W_l|`` is exact for the global mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from costmodels import GNNSpec, GraphStats, PhaseSpec, load_profile, price_gnn_run

from .config import GraphTrainConfig
from .data import GraphData


@dataclass(frozen=True)
class CostInputs:
    """What pricing a graph run needs, device-independent; ``to_dict()`` is the result's ``cost_inputs``
    (plain JSON), ``from_dict`` reads it back (a stored run re-priced on another device)."""

    spec: GNNSpec
    stats: GraphStats
    phases: tuple[PhaseSpec, ...]
    infer_graph_density: float
    infer_weight_density: float
    method: str | None = None  # the ticket method (selects the counted launches, codesign/dispatch/opcount.py)
    infer_weight_pattern: str = "unstructured"  # what the final weight mask conforms to (masks.mask_pattern)

    def to_dict(self) -> dict[str, Any]:
        s, g = self.spec, self.stats
        return {
            "spec": {"model": s.model, "layers": s.layers, "hidden": s.hidden, "heads": s.heads,
                     "output_heads": s.output_heads},
            "stats": {"name": g.name, "num_nodes": g.num_nodes, "num_edges": g.num_edges,
                      "num_features": g.num_features, "num_classes": g.num_classes, "num_train": g.num_train,
                      "feature_density": g.feature_density},
            "phases": [p.to_dict() for p in self.phases],
            "infer_graph_density": self.infer_graph_density,
            "infer_weight_density": self.infer_weight_density,
            "method": self.method,
            "infer_weight_pattern": self.infer_weight_pattern,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostInputs:
        return cls(GNNSpec(**d["spec"]), GraphStats(**d["stats"]), tuple(PhaseSpec(**p) for p in d["phases"]),
                   d["infer_graph_density"], d["infer_weight_density"], d.get("method"),
                   d.get("infer_weight_pattern", "unstructured"))


def graph_stats_of(data: GraphData) -> GraphStats:
    """The cost model's statistics of a loaded graph, with its training nodes and the measured
    density of its input features (what sparse feature storage and compute are priced from)."""
    return GraphStats(data.name, data.num_nodes, data.num_edges, data.num_features, data.num_classes,
                      int(data.train_mask.sum()), feature_density=round(float((data.x != 0).float().mean()), 6))


def cost_inputs(config: GraphTrainConfig, data: GraphData, phases: list[PhaseSpec],
                infer_graph_density: float, infer_weight_density: float,
                infer_weight_pattern: str = "unstructured") -> CostInputs:
    """Everything ``price`` needs for a run of ``config`` on ``data``."""
    return CostInputs(
        GNNSpec(config.model, config.layers, config.hidden, config.heads, config.output_heads),
        graph_stats_of(data), tuple(phases), infer_graph_density, infer_weight_density, config.method,
        infer_weight_pattern)


def price(inputs: CostInputs | Mapping[str, Any], device: str | None = None,
          aggregation_order: str = "transform-first") -> dict[str, Any]:
    """``price_gnn_run`` of recorded ``inputs`` (a :class:`CostInputs` or its dict) on ``device`` (a
    profile name/path; None = counts)."""
    ci = inputs if isinstance(inputs, CostInputs) else CostInputs.from_dict(inputs)
    profile = None if device is None else load_profile(device)
    phases, infer = list(ci.phases), None
    from codesign.dispatch.opcount import counts_apply

    if profile is not None and ci.method is not None and counts_apply(profile):
        # counted launches (codesign/dispatch/opcount.py) for the launch term of devices that run PyTorch eager
        from codesign.dispatch.opcount import inference_launches, phase_launches, target_for

        target, spec = target_for(profile.kind), ci.to_dict()["spec"]
        phases = [p if p.kernel_launches is not None else
                  replace(p, **dict(zip(("kernel_launches", "host_ops"),
                                        phase_launches(spec, ci.method, p.to_dict(), target))))
                  for p in phases]
        infer = inference_launches(spec, target)
    run = price_gnn_run(
        ci.spec,
        ci.stats,
        phases,
        infer_graph_density=ci.infer_graph_density,
        infer_weight_density=ci.infer_weight_density,
        device=profile,
        aggregation_order=aggregation_order,
        infer_launches=infer,
        infer_weight_pattern=ci.infer_weight_pattern,
    )
    return run.to_dict()
