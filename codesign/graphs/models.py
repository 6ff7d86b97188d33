"""GNNs that take a per-edge weight (the trainable graph) and expose their maskable weights.

Architectures match what the cost model counts (docs/CONTRACTS.md). With ``E`` directed edges,
``N`` nodes, self-loops added where stated, ``w_ij`` the edge weight and ``d_i = 1 + sum_j w_ij``:

* ``gcn``  (PyG ``GCNConv`` semantics): ``h_i' = sum_{j in N(i) + i} w_ij / sqrt(d_i d_j) * (W h_j) + b``
  (transform first, then aggregate; symmetric normalisation with self-loops of weight 1).
* ``gat``  : ``alpha_ij = softmax_j(LeakyReLU(a_s . W h_j + a_d . W h_i))`` over ``N(i) + i``;
  ``h_i' = ||_k sum_j w_ij alpha^k_ij W^k h_j + b`` (edge weights multiply the attention
  coefficients); hidden layers concatenate ``heads`` heads of ``hidden``, the last layer averages
  ``output_heads`` head(s).
* ``gin``  : ``h_i' = Linear((1 + eps) h_i + sum_{j in N(i)} w_ij h_j)``, ``eps = 0``.
* ``sage`` : ``h_i' = lin_l(sum_j w_ij h_j / |N(i)|) + lin_r(h_i)`` (mean aggregation).

The layers are written here on ``index_add_`` (a test checks ``GCNLayer`` against PyG's ``GCNConv``)
so that a run does not import torch_geometric, whose import (torch._dynamo) costs seconds of
process start. Between layers: ReLU then dropout; the output is log-softmax (trained with NLL). The maskable
weights are the 2-D linear weights ``[F_out, F_in]`` of every layer (biases and attention vectors
stay dense), which is what the cost model's ``N * F_in * F_out`` term scales with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from costmodels.errors import CodesignError, unknown

MODELS = ("gcn", "gat", "gin", "sage")


CHUNK_VALUES = 1 << 22  # ~16 MB of float32 messages per chunk: below glibc's mmap threshold, reused


class _WeightedAggregate(torch.autograd.Function):
    """``out = base + sum_{e: j -> i} w_e h_j`` in edge chunks, saving only ``h``, ``w`` and the
    indices for backward: the ``[E, F]`` message tensor is never held whole (forward or backward),
    so memory is O(N F + E) instead of O(E F). Edges are visited in order, so every row sums its
    terms in the same order as one ``index_add_`` over all edges."""

    @staticmethod
    def forward(ctx, base: Tensor, h: Tensor, w: Tensor | None, src: Tensor, dst: Tensor) -> Tensor:  # type: ignore[override]
        out = base.clone()
        step = max(1, CHUNK_VALUES // max(1, h[0].numel()))
        for s in range(0, src.numel(), step):
            msg = h[src[s:s + step]]
            if w is not None:
                msg = msg * _expand(w[s:s + step], h)
            out.index_add_(0, dst[s:s + step], msg)
        ctx.save_for_backward(h, w, src, dst)
        ctx.step = step
        return out

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        h, w, src, dst = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        gh = torch.zeros_like(h) if need_h else None
        gw = torch.empty_like(w) if need_w and w is not None else None
        for s in range(0, src.numel(), ctx.step):
            gd = g[dst[s:s + ctx.step]]
            if gh is not None:
                gh.index_add_(0, src[s:s + ctx.step], gd if w is None else gd * _expand(w[s:s + ctx.step], h))
            if gw is not None:
                gw[s:s + ctx.step] = (gd * h[src[s:s + ctx.step]]).sum(dim=tuple(range(w.dim(), h.dim())))
        return g, gh, gw, None, None


def _expand(w: Tensor, h: Tensor) -> Tensor:
    """``w [E]`` or ``[E, H]`` viewed to broadcast against messages ``[E, *h.shape[1:]]``."""
    return w.view(*w.shape, *([1] * (h.dim() - w.dim())))


def weighted_aggregate(h: Tensor, edge_index: Tensor, weight: Tensor | None, base: Tensor | None = None) -> Tensor:
    """``base_i + sum_{(j -> i)} w_ji h_j`` for ``h [N, F]`` or ``[N, H, F]`` (``weight [E]`` or
    ``[E, H]``; ``base`` defaults to zeros), O(E F) time, O(N F + E) memory (see ``_WeightedAggregate``)."""
    if base is None:
        base = h.new_zeros(h.shape)
    return _WeightedAggregate.apply(base, h, weight, edge_index[0], edge_index[1])


def _aggregate(h: Tensor, edge_index: Tensor, weight: Tensor | None, n: int) -> Tensor:
    """``out_i = sum_{(j -> i)} w_ji h_j`` (``h [N, F]`` or ``[N, H, F]``), O(E F)."""
    return weighted_aggregate(h, edge_index, weight, h.new_zeros((n, *h.shape[1:])))


def segment_softmax(logits: Tensor, index: Tensor, n: int) -> Tensor:
    """Softmax of ``logits [E, H]`` over the entries sharing ``index`` (the target node)."""
    shape = (n, *logits.shape[1:])
    idx = index.view(-1, *([1] * (logits.dim() - 1))).expand_as(logits)
    peak = torch.full(shape, float("-inf"), dtype=logits.dtype, device=logits.device)
    peak = peak.scatter_reduce(0, idx, logits, reduce="amax", include_self=True)
    e = (logits - peak[index]).exp()
    total = torch.zeros(shape, dtype=logits.dtype, device=logits.device).index_add_(0, index, e)
    return e / (total[index] + 1e-16)


class GCNLayer(nn.Module):
    """PyG ``GCNConv`` with edge weights: self-loops of weight 1, ``d_i = 1 + sum_j w_ji``,
    ``h_i' = h_i / d_i + sum_j w_ji h_j / sqrt(d_i d_j) + b`` with ``h = x W^T`` (glorot ``W``, zero ``b``)."""

    def __init__(self, f_in: int, f_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(f_in, f_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(f_out))
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        n = x.size(0)
        h = self.lin(x)
        src, dst = edge_index
        w = edge_weight if edge_weight is not None else h.new_ones(src.numel())
        deg = torch.ones(n, dtype=h.dtype, device=h.device).index_add_(0, dst, w)
        dinv = deg.rsqrt()
        norm = dinv[src] * w * dinv[dst]
        return weighted_aggregate(h, edge_index, norm, base=h * (dinv * dinv).unsqueeze(-1)) + self.bias


class GATLayer(nn.Module):
    """Multi-head graph attention whose coefficients are scaled by the edge weights."""

    def __init__(self, f_in: int, f_out: int, heads: int, concat: bool, dropout: float) -> None:
        super().__init__()
        self.heads, self.f_out, self.concat, self.dropout = heads, f_out, concat, dropout
        self.lin = nn.Linear(f_in, heads * f_out, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, f_out))
        self.att_dst = nn.Parameter(torch.empty(1, heads, f_out))
        self.bias = nn.Parameter(torch.zeros(heads * f_out if concat else f_out))
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        n = x.size(0)
        loops = torch.arange(n, device=x.device)
        ei = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        w = None
        if edge_weight is not None:
            w = torch.cat([edge_weight, edge_weight.new_ones(n)])
        h = self.lin(x).view(n, self.heads, self.f_out)  # [N, H, C]
        a_src = (h * self.att_src).sum(-1)  # [N, H]
        a_dst = (h * self.att_dst).sum(-1)
        logits = F.leaky_relu(a_src[ei[0]] + a_dst[ei[1]], 0.2)  # [E + N, H]
        alpha = segment_softmax(logits, ei[1], n)
        alpha = F.dropout(alpha, self.dropout, self.training)
        if w is not None:
            alpha = alpha * w.unsqueeze(-1)
        out = weighted_aggregate(h, ei, alpha)
        out = out.reshape(n, -1) if self.concat else out.mean(dim=1)
        return out + self.bias


class GINLayer(nn.Module):
    """GIN with ``nn = Linear(F_in, F_out)``, ``eps = 0``, weighted sum aggregation."""

    def __init__(self, f_in: int, f_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(f_in, f_out)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        return self.lin(x + _aggregate(x, edge_index, edge_weight, x.size(0)))


class SAGELayer(nn.Module):
    """GraphSAGE, mean aggregation: ``lin_l(weighted mean of neighbours) + lin_r(x_i)``."""

    def __init__(self, f_in: int, f_out: int) -> None:
        super().__init__()
        self.lin_l = nn.Linear(f_in, f_out)
        self.lin_r = nn.Linear(f_in, f_out, bias=False)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        n = x.size(0)
        total = _aggregate(x, edge_index, edge_weight, n)
        ones = x.new_ones(edge_index.size(1))
        count = torch.zeros(n, dtype=x.dtype, device=x.device).index_add_(0, edge_index[1], ones)
        return self.lin_l(total / count.clamp(min=1).unsqueeze(-1)) + self.lin_r(x)


class GNN(nn.Module):
    """A stack of ``layers`` graph layers: ReLU + dropout between them, log-softmax at the end."""

    def __init__(self, model: str, f_in: int, classes: int, layers: int = 2, hidden: int = 16,
                 heads: int = 8, output_heads: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        if model not in MODELS:
            raise unknown("model", model, list(MODELS))
        if layers < 1 or hidden < 1 or heads < 1:
            raise CodesignError(f"--layers/--hidden/--heads must be >= 1, got {layers}/{hidden}/{heads}")
        self.model, self.dropout = model, dropout
        convs: list[nn.Module] = []
        width = f_in
        for i in range(layers):
            last = i == layers - 1
            out = classes if last else hidden
            if model == "gcn":
                convs.append(GCNLayer(width, out))
                width = out
            elif model == "gat":
                h = output_heads if last else heads
                convs.append(GATLayer(width, out, h, concat=not last, dropout=dropout))
                width = out if last else out * heads
            elif model == "gin":
                convs.append(GINLayer(width, out))
                width = out
            else:
                convs.append(SAGELayer(width, out))
                width = out
        self.convs = nn.ModuleList(convs)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """``x [N, F_in]``, ``edge_index [2, E]``, ``edge_weight [E]`` -> log-probabilities ``[N, C]``."""
        for i, conv in enumerate(self.convs):
            if i > 0:  # dropout between layers (the input is not dropped: the cost model's architecture)
                x = F.dropout(F.relu(x), self.dropout, self.training)
            x = conv(x, edge_index, edge_weight)
        return F.log_softmax(x, dim=-1)

    def maskable(self) -> dict[str, nn.Parameter]:
        """The 2-D linear weights, by parameter name (what a weight mask prunes)."""
        return {name: p for name, p in self.named_parameters() if p.dim() == 2}

    def first_layer_params(self) -> list[nn.Parameter]:
        return list(self.convs[0].parameters())
