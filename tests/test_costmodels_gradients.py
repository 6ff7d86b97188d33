"""Which gradients the GNN workloads price, against what the built-in models compute: dense GEMMs by
torch's FlopCounterMode, sparse-dense products by counting them under torch dispatch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from costmodels import ExecContext, GNNSpec, GraphStats, gnn_workload
from costmodels.ops import Gemm
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
