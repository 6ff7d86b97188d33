"""Workloads: the ordered operators of one training step / inference pass, plus resident data.

A :class:`Workload` is what runs; the analytical model (``analytical.py``) prices it on a device.
GNN builders follow the architectures the training code runs (docs/CONTRACTS.md):

* ``gcn``: PyG ``GCNConv`` - symmetric normalisation with self-loops recomputed each forward,
  transform first (``X W``) then aggregate (``Â (X W)``), bias. ``aggregation_order=
  "aggregate-first"`` prices the paper's order ``(Â X) W`` instead.
* ``gat``: PyG ``GATConv`` - ``X W`` for all heads, edge attention, weighted aggregation, bias;
  hidden layers ``heads × hidden`` concatenated, last layer ``output_heads`` head(s) averaged.
* ``gin``: ``GINConv`` with one ``Linear`` (eps = 0): sum-aggregate the inputs, add ``x``, linear.
* ``sage``: ``SAGEConv`` (mean): ``lin_l(mean_j w_ji x_j) + lin_r(x_i)``.

ReLU and dropout between layers; log-softmax + NLL loss at the end (training only).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .context import WEIGHT_PATTERNS
from .errors import CodesignError, check_fraction, unknown
from .ops import (
    RNG_STEPS_PER_DRAW,
    SELECT_STEPS_PER_VALUE,
    Aggregate,
    Array,
    EdgeAttention,
    Elementwise,
    Gemm,
    Op,
)
from .stats import GraphStats

GNN_MODELS = ("gcn", "gat", "gin", "sage")
AGGREGATION_ORDERS = ("transform-first", "aggregate-first")


@dataclass(frozen=True)
class Workload:
    """Operators in execution order plus the data resident during a pass.

    ``input_values``: input tensor size (features / images) [values];
    ``graph_edges``: stored messages (edge_index pairs + one value each, self-loops included);
    ``extra_trainable``: trainable values outside the ops (e.g. the edge values of a trainable
    graph), which get gradients and optimizer state.
    ``graph_step``: the operators of a second forward and backward pass in the same step that trains
    only the edge values (a GEB/GEBT search epoch: the weight step, then the edge-value step); its
    weights are those of ``ops`` (no parameters of its own) and its activations are not live at the
    same time as those of ``ops``.
    """

    name: str
    ops: tuple[Op, ...]
    input_values: Array = 0.0
    graph_edges: Array = 0.0
    extra_trainable: Array = 0.0
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    kernel_launches: Array | None = None  # counted kernel launches of one step (None: launch.py fallback)
    host_ops: Array | None = None  # counted framework operations of one step (None: = kernel_launches)
    graph_step: tuple[Op, ...] = ()
    input_density: Array = 1.0  # non-zero fraction of the input (graph features; sparse feature storage)


DEFAULT_HIDDEN = {"gcn": 16, "gin": 16, "sage": 16, "gat": 8}  # gat: per head (8 heads x 8, PyG's GAT example)


def default_hidden(model: str) -> int:
    """The hidden width of ``model`` when none is given (GAT: per head): the one default that
    ``estimate``, ``train``, ``profile`` and ``search`` share."""
    return DEFAULT_HIDDEN.get(model, 16)


@dataclass(frozen=True)
class GNNSpec:
    """A GNN architecture: ``model`` in gcn|gat|gin|sage, depth, width and GAT heads
    (``hidden=None``: :func:`default_hidden`)."""

    model: str
    layers: int = 2
    hidden: int = None  # type: ignore[assignment]  # None -> default_hidden(model)
    heads: int = 8
    output_heads: int = 1

    def __post_init__(self) -> None:
        if self.model not in GNN_MODELS:
            raise unknown("model", self.model, GNN_MODELS)
        if self.hidden is None:
            object.__setattr__(self, "hidden", default_hidden(self.model))
        for name in ("layers", "hidden", "heads", "output_heads"):
            if int(getattr(self, name)) < 1:
                raise CodesignError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


def _layer_dims(spec: GNNSpec, g: GraphStats) -> list[tuple[int, int, int]]:
    """(f_in, f_out per head, heads) for every layer."""
    dims = []
    f_in = g.num_features
    for layer in range(spec.layers):
        last = layer == spec.layers - 1
        heads = (spec.output_heads if last else spec.heads) if spec.model == "gat" else 1
        f_out = g.num_classes if last else spec.hidden
        dims.append((f_in, f_out, heads))
        f_in = f_out * heads if not (last and spec.model == "gat") else f_out
    return dims


def _layer_weights(spec: GNNSpec, dims: list[tuple[int, int, int]], density: Array,
                   pattern: str) -> list[tuple[Array, str]]:
    """(weight density, pattern) of every layer. Unstructured: the global density everywhere. 2:4: the
    output layer (the classifier) is dense and earns no credit, as ``codesign.graphs.masks.nm_weight_mask``
    draws it, and the other layers hold the whole pruned count: ``d' = (d W - W_out) / (W - W_out)``."""
    if pattern == "unstructured" or len(dims) == 1:
        return [(density, pattern)] * len(dims)
    per = 2 if spec.model == "sage" else 1
    counts = [f_in * f_out * heads * per for f_in, f_out, heads in dims]
    total, out = float(sum(counts)), float(counts[-1])
    rest = np.clip((density * total - out) / (total - out), 0.0, 1.0)
    return [(rest, pattern)] * (len(dims) - 1) + [(1.0 + 0.0 * rest, "unstructured")]


def _between_layers(name: str, numel: Array, training: bool) -> list[Op]:
    ops: list[Op] = [Elementwise(f"{name}.relu", numel, 1.0, 1.0, saved_values=1.0)]
    if training:
        ops.append(Elementwise(f"{name}.dropout", numel, 2.0, 1.0, saved_masks=1.0,
                               serial_per_elem=RNG_STEPS_PER_DRAW))
    return ops


def gnn_workload(
    spec: GNNSpec,
    g: GraphStats,
    *,
    graph_density: Array = 1.0,
    weight_density: Array = 1.0,
    trainable_graph: bool = False,
    aggregation_order: str = "transform-first",
    training: bool = True,
    weight_pattern: str = "unstructured",
) -> Workload:
    """Operators of one full-graph forward (and, when training, the loss) of ``spec`` on ``g``.
    ``weight_pattern``: what every weight mask conforms to (``context.WEIGHT_PATTERNS``; 2:4 credit).

    ``graph_density`` (1 - graph sparsity) scales the directed edges kept, ``E·g``; self-loops are
    never pruned. ``weight_density`` (1 - weight sparsity) applies to every weight matrix (the
    global magnitude mask); a 2:4 ticket's output layer is dense (:func:`_layer_weights`).
    ``trainable_graph``: the edge values receive gradients (GEB/GEBT search).
    """
    if aggregation_order not in AGGREGATION_ORDERS:
        raise unknown("aggregation order", aggregation_order, AGGREGATION_ORDERS)
    if weight_pattern not in WEIGHT_PATTERNS:
        raise unknown("weight pattern", weight_pattern, WEIGHT_PATTERNS)
    n = g.num_nodes
    edges = g.num_edges * graph_density
    loops = float(n) if spec.model in ("gcn", "gat") else 0.0
    dims = _layer_dims(spec, g)
    ops: list[Op] = []
    upstream_grad = False  # the input features never require grad
    for i, ((f_in, f_out, heads), (d, pattern)) in enumerate(zip(dims, _layer_weights(spec, dims, weight_density,
                                                                                         weight_pattern))):
        name = f"conv{i + 1}"
        last = i == spec.layers - 1

        def agg(width: Array, grad: bool, reduce: str = "sum", name: str = name, heads: int = heads,
                features_in: bool = False) -> Aggregate:
            return Aggregate(f"{name}.aggregate", n, edges, loops, width, True, reduce, trainable_graph, grad,
                             products=heads if spec.model == "gat" else 1,
                             input_density=g.feature_density if features_in else 1.0)

        if spec.model == "gcn":
            ops.append(Elementwise(f"{name}.gcn_norm", edges + loops, 3.0, 3.0, reads=3.0,
                                   needs_backward=trainable_graph, kernels=8.0))
            if aggregation_order == "aggregate-first":
                ops.append(agg(f_in, upstream_grad, features_in=i == 0))
                upstream_grad = upstream_grad or trainable_graph
                ops.append(Gemm(f"{name}.linear", n, f_in, f_out, d, upstream_grad, weight_pattern=pattern))
            else:
                ops.append(Gemm(f"{name}.linear", n, f_in, f_out, d,
                            upstream_grad, input_resident=i == 0, weight_pattern=pattern,
                            input_density=g.feature_density))
                upstream_grad = True
                ops.append(agg(f_out, upstream_grad))
            width = f_out
        elif spec.model == "gat":
            ops.append(Gemm(f"{name}.linear", n, f_in, f_out * heads, d,
                            upstream_grad, input_resident=i == 0, weight_pattern=pattern,
                            input_density=g.feature_density))
            upstream_grad = True
            ops.append(EdgeAttention(f"{name}.attention", n, edges + loops, heads, f_out))
            if training:  # GATConv drops attention coefficients
                ops.append(Elementwise(f"{name}.attention_dropout", (edges + loops) * heads, 2.0, 1.0,
                                       saved_masks=1.0, serial_per_elem=RNG_STEPS_PER_DRAW))
            ops.append(agg(f_out * heads, upstream_grad))
            width = f_out * heads
            if last and heads > 1:
                ops.append(Elementwise(f"{name}.head_mean", n * f_out * heads, 1.0, 1.0))
                width = f_out
        elif spec.model == "gin":
            ops.append(agg(f_in, upstream_grad, features_in=i == 0))
            ops.append(Elementwise(f"{name}.self_add", n * f_in, 1.0, 0.0, reads=2.0,
                                   needs_backward=upstream_grad or trainable_graph))
            upstream_grad = upstream_grad or trainable_graph
            ops.append(Gemm(f"{name}.linear", n, f_in, f_out, d, upstream_grad, weight_pattern=pattern))
            width = f_out
        else:  # sage
            x_grad = upstream_grad  # lin_r reads x itself: a gradient to x only where x has one
            ops.append(agg(f_in, upstream_grad, "mean", features_in=i == 0))
            upstream_grad = upstream_grad or trainable_graph
            ops.append(Gemm(f"{name}.lin_l", n, f_in, f_out, d, upstream_grad, weight_pattern=pattern))
            ops.append(Gemm(f"{name}.lin_r", n, f_in, f_out, d,
                            x_grad, input_resident=i == 0, weight_pattern=pattern,
                            input_density=g.feature_density))
            ops.append(Elementwise(f"{name}.add", n * f_out, 1.0, 0.0, reads=2.0))
            width = f_out
        upstream_grad = True
        ops.append(Elementwise(f"{name}.bias", n * width, 1.0, 1.0, params=width))
        if not last:
            ops.extend(_between_layers(name, n * width, training))
    if training:
        ops.append(Elementwise("loss.log_softmax_nll", n * g.num_classes, 4.0, 3.0, saved_values=1.0,
                               kernels=4.0))
    # Trainable graph: one value per undirected edge (mirrored), trained with the weights.
    extra = (edges / 2.0) if trainable_graph else 0.0
    return Workload(
        name=f"{spec.model}/{g.name}",
        ops=tuple(ops),
        input_values=float(n * g.num_features),
        input_density=g.feature_density,
        graph_edges=edges + loops,
        extra_trainable=extra,
        info={"spec": spec, "graph": g, "aggregation_order": aggregation_order},
    )


def weight_count(spec: GNNSpec, g: GraphStats) -> int:
    """Number of prunable weights (all weight matrices; biases and attention vectors excluded)."""
    total = 0
    for f_in, f_out, heads in _layer_dims(spec, g):
        total += f_in * f_out * heads * (2 if spec.model == "sage" else 1)
    return total


def mask_update_ops(spec: GNNSpec, g: GraphStats, graph_density: Array = 1.0,
                    graph_copies: int = 1, weight_mask: bool = True) -> tuple[Op, ...]:
    """Per-epoch ticket search work: magnitude masks over the edge values and (``weight_mask``: GEBT, not
    the graph-only GEB and SGCN searches) over all weights.

    A top-k by magnitude over ``n`` values selects them (k-th value, then a comparison per value):
    ``ops.SELECT_STEPS_PER_VALUE`` serial steps per value (``serial_step_ns``); the ADMM sparsifier adds
    ``ρ‖a + U − Z‖²`` and its dual update, ~6 FLOPs per edge value, and projects ``Z`` with a second top-k.
    ``graph_copies``: edge-value vectors masked each epoch (one per layer for per-layer graphs).
    """
    edges = g.num_edges * graph_density / 2.0 * graph_copies
    weights = float(weight_count(spec, g))
    graph = (
        Elementwise("search.graph_mask_topk", edges, SELECT_STEPS_PER_VALUE, 0.0,
                    reads=2.0, needs_backward=False, serial_per_elem=SELECT_STEPS_PER_VALUE),
        Elementwise("search.admm", edges, 6.0, 2.0, reads=3.0, writes=2.0,  # + its Z projection: a top-k
                    serial_per_elem=SELECT_STEPS_PER_VALUE),
    )
    if not weight_mask:
        return graph
    return graph + (Elementwise("search.weight_mask_topk", weights, SELECT_STEPS_PER_VALUE, 0.0,
                                reads=2.0, needs_backward=False, serial_per_elem=SELECT_STEPS_PER_VALUE),)


def check_densities(graph_sparsity: float, weight_sparsity: float) -> tuple[float, float]:
    """Validate user sparsities in [0, 1) and return the densities (1 - sparsity)."""
    return 1.0 - check_fraction("--graph-sparsity", graph_sparsity), 1.0 - check_fraction(
        "--weight-sparsity", weight_sparsity
    )


def graph_step_ops(spec: GNNSpec, g: GraphStats, graph_density: Array = 1.0,
                   aggregation_order: str = "transform-first", graph_copies: int = 1) -> tuple[Op, ...]:
    """The edge-value step of a search epoch: the directed edge weights ``relu(theta)[und]`` of every
    copy, a forward in eval mode (no dropout) with them as aggregation weights, and a backward that
    reaches the edge values only (input and edge-value gradients, no weight gradients).

    The weights are constants in this step (``codesign.graphs.methods.search.SearchLoop.graph_step``), so
    nothing before the first op that reads the edge values (GCN's normalisation, the first aggregation)
    needs a gradient: the first layer's ``X W`` (GCN, GAT) gets no ``dh = A^T g``, and GAT's first
    attention, computed from ``X W`` and frozen vectors alone, no backward."""
    wl = gnn_workload(spec, g, graph_density=graph_density, trainable_graph=True,
                      aggregation_order=aggregation_order, training=True)
    ops: list[Op] = [Elementwise("search.edge_weights", g.num_edges * graph_density * graph_copies, 1.0, 1.0,
                                 reads=1.5)]
    live = False  # an op so far depends on the edge values: gradients flow back from here on
    for op in wl.ops:
        if op.name.endswith("dropout"):
            continue
        if isinstance(op, Gemm):
            op = replace(op, trainable=False, input_grad=op.input_grad and live)
        elif isinstance(op, Aggregate):
            op = replace(op, input_grad=op.input_grad and live)
            live = True
        elif isinstance(op, EdgeAttention):
            op = replace(op, needs_backward=live)
        elif isinstance(op, Elementwise) and not op.name.endswith("gcn_norm"):
            op = replace(op, needs_backward=op.needs_backward and live)
        ops.append(op)
    return tuple(ops)
