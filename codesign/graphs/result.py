"""The record of one graph-ticket run: :class:`GraphRunResult`, whose ``to_dict()`` is the
``codesign train --json`` dict (and ``result.json``) that the search, the profiler, benchmarks and
other branches read by key.

Accuracies are fractions; sparsities are achieved fractions (``requested_*`` beside them, None where
the method is not asked for one); ``cost`` is the analytical, device-independent price of every
executed phase (transform-first order), ``cost_paper_order`` the MACs in the paper's aggregate-first
order, ``cost_inputs`` what re-prices the run on any device; ``wall_s``, ``data_wall_s`` (the part of
``wall_s`` before the method's first epoch: loading or generating the dataset, loading a ``--ticket``,
putting the graph in the run's node order) and ``peak_rss_bytes`` are measured (the process's peak resident set so far).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import GraphTrainConfig
from .costing import CostInputs
from .methods.common import PhaseRecord


@dataclass(frozen=True)
class GraphRunResult:
    model: str
    dataset: str
    method: str  # the config's method, or "ticket:<folder>" for a retrained saved ticket
    seed: int
    test_accuracy: float
    val_accuracy: float
    eb_epoch: int | None  # search epoch the detector fired at; None if it did not or there is none
    graph_sparsity: float  # achieved
    weight_sparsity: float  # achieved
    requested_graph_sparsity: float | None
    requested_weight_sparsity: float | None
    warnings: tuple[str, ...]
    phases: tuple[PhaseRecord, ...]
    cost: Mapping[str, Any]
    cost_paper_order: Mapping[str, Any]
    cost_inputs: CostInputs
    detector: Mapping[str, Any]
    dataset_checksum: str
    config: GraphTrainConfig
    wall_s: float
    peak_rss_bytes: int
    data_wall_s: float = 0.0  # of wall_s: before the first epoch (dataset, ticket, node order; measured)
    torch_threads: int = 1  # intra-op threads the run used (codesign.runtime.threads): wall time depends on it
    ticket_path: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # method-specific (search_epoch_wall_s, rounds)

    @property
    def search_epochs(self) -> int | None:
        return next((p.epochs for p in self.phases if p.name == "search"), None)

    @property
    def at_chance(self) -> bool:
        return bool(self.warnings)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": "graph",
            "model": self.model,
            "dataset": self.dataset,
            "method": self.method,
            "seed": self.seed,
            "test_accuracy": self.test_accuracy,
            "val_accuracy": self.val_accuracy,
            "eb_epoch": self.eb_epoch,
            "search_epochs": self.search_epochs,
            "graph_sparsity": self.graph_sparsity,
            "weight_sparsity": self.weight_sparsity,
            "requested_graph_sparsity": self.requested_graph_sparsity,
            "requested_weight_sparsity": self.requested_weight_sparsity,
            "achieved_graph_sparsity": self.graph_sparsity,
            "achieved_weight_sparsity": self.weight_sparsity,
            "at_chance": self.at_chance,
            "warnings": list(self.warnings),
            "phases": [p.to_dict() for p in self.phases],
            "cost": dict(self.cost),
            "cost_paper_order": dict(self.cost_paper_order),
            "cost_inputs": self.cost_inputs.to_dict(),
            "detector": dict(self.detector),
            "dataset_checksum": self.dataset_checksum,
            "config": self.config.to_dict(),
            **self.extra,
        }
        if self.ticket_path is not None:
            out["ticket_path"] = self.ticket_path
        out["wall_s"] = self.wall_s
        out["data_wall_s"] = self.data_wall_s
        out["torch_threads"] = self.torch_threads
        out["peak_rss_bytes"] = self.peak_rss_bytes
        return out
