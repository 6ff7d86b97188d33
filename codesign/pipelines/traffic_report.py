"""`codesign estimate --node-order ...`: aggregation DRAM traffic from the dataset's real edge list.

For each device with an on-chip buffer and each GNN layer, the exact gather traffic of the layer's
aggregation under ``costmodels.traffic`` (window schedule or LRU, in the given node order) beside the
closed form of ``ops.Aggregate``. With ``--graph-sparsity p`` the edge list is a seeded random
subset keeping ``1 - p`` of the undirected edges (a stand-in for a ticket; every layer the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from costmodels import GNNSpec, GraphStats
from costmodels.profiles import DTYPE_BYTES, DeviceProfile
from costmodels.traffic import aggregation_traffic, node_order
from costmodels.workloads import _layer_dims


def _edges(dataset: str, graph_sparsity: float, data_root: str | None
           ) -> tuple[np.ndarray, np.ndarray, int, GraphStats]:
    from codesign.graphs.data import graph_summary, load_dataset

    data = load_dataset(dataset, data_root)
    g = graph_summary(data)  # the loaded graph's own sizes (a file: or sbm: graph is in no table)
    stats = GraphStats(dataset, int(g["num_nodes"]), int(g["num_edges"]), int(g["num_features"]),
                       int(g["num_classes"]))
    src, dst = data.edge_index[0].numpy(), data.edge_index[1].numpy()
    if graph_sparsity > 0:
        und = data.dir_to_und.numpy()
        keep_und = np.random.default_rng(0).random(data.num_undirected) >= graph_sparsity
        keep = keep_und[und]
        src, dst = src[keep], dst[keep]
    return src, dst, data.num_nodes, stats


@dataclass(frozen=True)
class TrafficQuery:
    """What ``codesign estimate --node-order ...`` asks of the trace: the architecture, the graph (and its
    stand-in ticket's graph sparsity), the node order, the trace's policy, the value type and the
    aggregation order (every field from the command line: defaults live there)."""

    model: str
    dataset: str
    node_order: str
    layers: int
    hidden: int | None
    heads: int | None
    graph_sparsity: float
    data_root: str | None
    dtype: str
    aggregation_order: str
    policy: str


def traffic_rows(q: TrafficQuery, profiles: list[DeviceProfile]) -> list[dict[str, Any]]:
    """One row per (device, layer): trace gather bytes against the closed form (forward pass)."""
    spec = GNNSpec(q.model.lower(), q.layers, q.hidden, q.heads)
    src, dst, n, stats = _edges(q.dataset, q.graph_sparsity, q.data_root)
    perm = node_order(src, dst, n, q.node_order)
    b = DTYPE_BYTES[q.dtype]
    rows = []
    for profile in profiles:
        for i, (f_in, f_out, heads) in enumerate(_layer_dims(spec, stats)):
            width = f_in if (q.aggregation_order == "aggregate-first" or spec.model in ("gin", "sage")) \
                else f_out * heads
            t = aggregation_traffic(src, dst, n, int(width), profile.onchip_bytes, order=q.node_order,
                                    policy=q.policy, value_bytes=b, perm=perm,
                                    self_loops=spec.model in ("gcn", "gat"))
            rows.append({"device": profile.name, "layer": f"conv{i + 1}", "features": int(width),
                         "buffer_mb": profile.onchip_bytes / 1e6, "order": q.node_order,
                         "policy": q.policy, "messages": t.messages, "rows_loaded": t.rows_loaded,
                         "gather_bytes_trace": t.gather_bytes, "gather_bytes_closed_form": t.closed_form_gather_bytes,
                         "source": "exact trace of the dataset's edge list (costmodels.traffic)"})
    return rows
