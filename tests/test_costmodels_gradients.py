"""Which gradients the GNN workloads price, against what the built-in models compute: dense GEMMs by
torch's FlopCounterMode, sparse-dense products by counting them under torch dispatch."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from costmodels import ExecContext, GNNSpec, GraphStats, gnn_workload
from costmodels.ops import Aggregate, Gemm
from costmodels.workloads import graph_step_ops

CTX = ExecContext()
N, F_IN, C, HIDDEN, HEADS = 30, 6, 3, 8, 2


def _graph() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ei = torch.randint(0, N, (2, 80))
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(torch.cat([ei, ei.flip(0)], 1), dim=1)
    pairs = ei[:, ei[0] < ei[1]]
    index = {(int(a), int(b)): i for i, (a, b) in enumerate(pairs.t().tolist())}
    dir_to_und = torch.tensor([index[(min(a, b), max(a, b))] for a, b in ei.t().tolist()])
    return ei, pairs, dir_to_und, torch.randn(N, F_IN), torch.randint(0, C, (N,))


def _gemm_flops(ops) -> float:  # type: ignore[no-untyped-def]
    return sum(op.forward(CTX).flops + op.backward(CTX).flops for op in ops if isinstance(op, Gemm))


class _SparseProducts(TorchDispatchMode):
    """Counts the sparse-dense products (``_sparse_addmm``: the aggregations' forward and ``dh``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if any(isinstance(a, torch.Tensor) and a.layout != torch.strided for a in args):
            self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("model", ["gcn", "gat", "gin", "sage"])
@pytest.mark.parametrize("layers", [2, 3])
def test_gemm_flops_of_every_pass_equal_flop_counter_on_the_built_in_model(model, layers):
    from codesign.graphs.models import GNN

    ei, _, _, x, y = _graph()
    spec, g = GNNSpec(model, layers, HIDDEN, HEADS), GraphStats("t", N, ei.size(1), F_IN, C)
    net = GNN(model, F_IN, C, layers, HIDDEN, HEADS)

    def counted(fn) -> int:  # type: ignore[no-untyped-def]
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    def train(weight: torch.Tensor | None) -> None:
        net.train()
        F.nll_loss(net(x, ei, weight), y).backward()

    def infer() -> None:
        net.eval()
        with torch.no_grad():
            net(x, ei, None)

    def graph_step() -> None:  # weights frozen, only the edge values get a gradient (the search's step)
        for p in net.parameters():
            p.requires_grad_(False)
        net.eval()
        F.nll_loss(net(x, ei, torch.ones(ei.size(1), requires_grad=True)), y).backward()
        for p in net.parameters():
            p.requires_grad_(True)

    assert _gemm_flops(gnn_workload(spec, g).ops) == counted(lambda: train(None))
    infer_ops = [op for op in gnn_workload(spec, g, training=False).ops if isinstance(op, Gemm)]
    assert sum(op.forward(CTX).flops for op in infer_ops) == counted(infer)
    # a trainable graph (UGS: weights and edge values in one step): x itself never gets a gradient
    # (SAGE's lin_r(x) had been priced with dX in the first layer)
    joint = gnn_workload(spec, g, trainable_graph=True).ops
    assert _gemm_flops(joint) == counted(lambda: train(torch.ones(ei.size(1), requires_grad=True)))
    assert _gemm_flops(graph_step_ops(spec, g)) == counted(graph_step)


@pytest.mark.parametrize("model", ["gcn", "gat", "gin", "sage"])
def test_search_graph_step_prices_the_sparse_products_the_search_runs(model):
    """The edge-value step with frozen weights runs one product per layer forward and ``dh = A^T g``
    only where the layer's input depends on the edge values: not in the first layer (GCN and GAT had
    been priced with the first layer's ``dh``, and GAT with its first attention's backward)."""
    from codesign.graphs.methods.common import edge_weight
    from codesign.graphs.models import GNN

    ei, pairs, dir_to_und, x, y = _graph()
    net = GNN(model, F_IN, C, 2, HIDDEN, HEADS)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    theta = torch.ones(pairs.size(1), requires_grad=True)
    rec = _SparseProducts()
    with rec:
        out = net(x, ei, edge_weight(theta, dir_to_und, pairs))
        F.nll_loss(out, y).backward()
    ops = graph_step_ops(GNNSpec(model, 2, HIDDEN, HEADS), GraphStats("t", N, ei.size(1), F_IN, C))
    aggregates = [op for op in ops if isinstance(op, Aggregate)]
    priced = len(aggregates) + sum(op.input_grad for op in aggregates)
    assert rec.ops["_sparse_addmm"] == priced == 3
    first = next(op for op in ops if op.name == "conv1.aggregate")
    assert first.backward(CTX).flops == 2 * (ei.size(1) + (N if model in ("gcn", "gat") else 0)) * first.features
    if model == "gat":
        attention = {op.name: op.backward(CTX).flops for op in ops if op.name.endswith("attention")}
        assert attention["conv1.attention"] == 0 and attention["conv2.attention"] > 0


@pytest.mark.parametrize("training", ["frozen-weights", "alternate"])
def test_a_search_prices_the_masks_it_draws(training):
    """GEB and SGCN search with the weights frozen and draw only the graph mask (``SearchLoop`` with
    ``weight_ratio=None``); GEBT draws both. The frozen-weight search had been priced with a top-k over
    every weight each epoch (on the calibrated 2-core CPU ~0.8 ms of a Cora GCN search epoch)."""
    from costmodels import PhaseSpec, graph_stats
    from costmodels.runs import gnn_phase_workload
    from costmodels.workloads import weight_count

    spec, g = GNNSpec("gcn"), graph_stats("cora")
    phase = PhaseSpec("search", 1, trainable_graph=True, mask_update=True, graph_copies=2, graph_training=training)
    ops = gnn_phase_workload(spec, g, phase).ops
    masks = [op for op in ops if op.name.startswith("search.") and op.name != "search.fixed_edge_weights"]
    serial = sum(op.forward(CTX).serial_steps for op in masks)
    edges = 2 * g.num_edges / 2  # two copies of the undirected edge values: a top-k each, and ADMM's projection
    weights = weight_count(spec, g) if training == "alternate" else 0
    assert serial == pytest.approx(2.5 * (2 * edges + weights))
    assert ("search.weight_mask_topk" in {op.name for op in masks}) == (training == "alternate")
