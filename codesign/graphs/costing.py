"""Analytical cost of a graph run, from device-independent inputs a run records.

``cost_inputs(...)`` gathers what the cost model needs (architecture, graph statistics, one
``PhaseSpec`` per executed phase with the epochs actually run, the ticket's inference densities);
``price(inputs, device)`` turns it into ``costmodels.price_gnn_run(...).to_dict()``, so a search can
re-price the same run on any device profile without retraining.

Weight densities are global over layers. Every layer's weight cost is ``N * nnz(W_l)`` (all layers
see the same ``N`` rows), so ``N * density * sum_l |W_l|`` is exact for the global mask.
"""

from __future__ import annotations

from typing import Any

from costmodels import GNNSpec, GraphStats, PhaseSpec, load_profile, price_gnn_run

from .config import GraphTrainConfig
from .data import GraphData


def cost_inputs(config: GraphTrainConfig, data: GraphData, phases: list[PhaseSpec],
                infer_graph_density: float, infer_weight_density: float) -> dict[str, Any]:
    """Everything ``price`` needs, as plain JSON-able values."""
    return {
        "spec": {"model": config.model, "layers": config.layers, "hidden": config.hidden,
                 "heads": config.heads, "output_heads": config.output_heads},
        "stats": {"name": data.name, "num_nodes": data.num_nodes, "num_edges": data.num_edges,
                  "num_features": data.num_features, "num_classes": data.num_classes,
                  "num_train": int(data.train_mask.sum())},
        "method": config.method,
        "phases": [p.to_dict() for p in phases],
        "infer_graph_density": infer_graph_density,
        "infer_weight_density": infer_weight_density,
    }


def price(inputs: dict[str, Any], device: str | None = None,
          aggregation_order: str = "transform-first") -> dict[str, Any]:
    """``price_gnn_run`` of recorded ``inputs`` on ``device`` (a profile name/path; None = counts)."""
    profile = None if device is None else load_profile(device)
    phases, infer = [dict(p) for p in inputs["phases"]], None
    from ..opcount import counts_apply

    if profile is not None and "method" in inputs and counts_apply(profile):
        # counted launches (codesign/opcount.py) for the launch term of devices that run PyTorch eager
        from ..opcount import inference_launches, phase_launches, target_for

        target = target_for(profile.kind)
        for p in phases:
            if p.get("kernel_launches") is None:
                p["kernel_launches"], p["host_ops"] = phase_launches(inputs["spec"], inputs["method"], p, target)
        infer = inference_launches(inputs["spec"], target)
    run = price_gnn_run(
        GNNSpec(**inputs["spec"]),
        GraphStats(**inputs["stats"]),
        [PhaseSpec(**p) for p in phases],
        infer_graph_density=inputs["infer_graph_density"],
        infer_weight_density=inputs["infer_weight_density"],
        device=profile,
        aggregation_order=aggregation_order,
        infer_launches=infer,
    )
    return run.to_dict()
