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

The layers are written here (a test checks ``GCNLayer`` against PyG's ``GCNConv``) so that a run
does not import torch_geometric, whose import (torch._dynamo) costs seconds of process start.
Aggregation (``codesign.graphs.aggregate.weighted_aggregate``) never materialises the ``[E, F]``
messages: it runs as CSR sparse-dense products with a hand-written backward (layouts cached per edge
list; GAT's heads in one product, each node split into one per head).
Between layers: ReLU then dropout; the output is log-softmax (trained with NLL). The maskable
weights are the 2-D linear weights ``[F_out, F_in]`` of every layer (biases and attention vectors
stay dense), which is what the cost model's ``N * F_in * F_out`` term scales with.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from costmodels.context import SPARSE_FEATURES_MAX_DENSITY
from costmodels.errors import CodesignError, unknown

from .aggregate import (
    aggregate,
    is_symmetric,
    normalized_aggregate,
    segment_softmax,
    symmetric_degree,
    undirected_of,
    weighted_aggregate,
    with_self_loops,
)

MODELS = ("gcn", "gat", "gin", "sage")


def sparse_features(x: Tensor) -> Tensor:
    """``x [N, F]`` for training: when at most ``SPARSE_FEATURES_MAX_DENSITY`` of it is non-zero (bag-of-
    words features: Cora 1.3%, CiteSeer 0.9%) and it lives on the CPU, a view of ``x`` that carries its
    CSR form and its transpose's, so the first layer's ``x W^T`` and ``dW = g^T x`` run as sparse-dense
    products (:func:`project`; Cora: ~0.3 ms instead of ~5-8 ms each on one core). The same matrix:
    results differ only by floating-point summation order. Otherwise ``x`` itself. The mark is on a new
    tensor object, so a dataset cached in this process (and a trace of it) still sees plain ``x``."""
    if x.device.type != "cpu" or x.dim() != 2 or x.requires_grad or x.numel() == 0:
        return x
    nnz = int(torch.count_nonzero(x))
    if nnz > SPARSE_FEATURES_MAX_DENSITY * x.numel():
        return x
    view = x.detach()
    with warnings.catch_warnings():  # "CSR support is in beta": the products used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        csr = x.to_sparse_csr()
        # the transpose from the CSR (CSC -> CSR, nnz-sized), with no dense transposed copy of x (Cora: 15.5 MB)
        view._codesign_csr = (csr, csr.t().to_sparse_csr())  # type: ignore[attr-defined]
    return view


class _SparseInputLinear(torch.autograd.Function):
    """``x W^T`` for a constant sparse ``x``: forward ``x_csr @ W^T``, backward ``dW = (x^T g)^T``
    with ``x^T`` as CSR (no gradient to ``x``)."""

    @staticmethod
    def forward(ctx, weight: Tensor, x_csr: Tensor, x_t_csr: Tensor) -> Tensor:  # type: ignore[override]
        ctx.x_t = x_t_csr
        return torch.sparse.mm(x_csr, weight.t().contiguous())

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        return torch.sparse.mm(ctx.x_t, g.contiguous()).t().contiguous(), None, None


def project(lin: nn.Linear, x: Tensor) -> Tensor:
    """``lin(x)``; as a sparse-dense product when ``x`` came from :func:`sparse_features`."""
    csr = getattr(x, "_codesign_csr", None)
    if csr is None:
        return lin(x)
    out = _SparseInputLinear.apply(lin.weight, *csr)
    return out if lin.bias is None else out + lin.bias


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
        h = project(self.lin, x)
        src, dst = edge_index
        symmetric = is_symmetric(edge_weight)
        w = edge_weight if edge_weight is not None else h.new_ones(src.numel())
        # d_i = 1 + sum_j w_ji; a symmetric w has the same sums over sources, whose index is sorted (a
        # sequential scatter instead of a random one)
        und = undirected_of(edge_weight, edge_index, n)
        if und is not None:  # the same sum; its gradient per undirected pair
            deg = symmetric_degree(und, w, src, n)
        else:
            deg = torch.ones(n, dtype=h.dtype, device=h.device).index_add_(0, src if symmetric else dst, w)
        dinv = deg.rsqrt().unsqueeze(-1)
        # D^-1/2 (I + A_w) D^-1/2 h as dinv * ((I + A_w)(dinv * h)): the normalisation scales rows, so no
        # per-edge norm (two random gathers of E values and their scatters back) is built. The bias added
        # in place: the backward keeps the product's inputs, not its output (one [N, F] tensor less)
        return normalized_aggregate(h, dinv, edge_index, edge_weight, symmetric).add_(self.bias)


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
        ei = with_self_loops(edge_index, n)
        w = None
        if edge_weight is not None:
            w = torch.cat([edge_weight, edge_weight.new_ones(n)])
        h = project(self.lin, x).view(n, self.heads, self.f_out)  # [N, H, C]
        a_src = (h * self.att_src).sum(-1)  # [N, H]
        a_dst = (h * self.att_dst).sum(-1)
        logits = F.leaky_relu(a_src.index_select(0, ei[0]) + a_dst.index_select(0, ei[1]), 0.2)  # [E + N, H]
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
        return self.lin(weighted_aggregate(x, edge_index, edge_weight, base=x, symmetric=is_symmetric(edge_weight)))


class SAGELayer(nn.Module):
    """GraphSAGE, mean aggregation: ``lin_l(weighted mean of neighbours) + lin_r(x_i)``."""

    def __init__(self, f_in: int, f_out: int) -> None:
        super().__init__()
        self.lin_l = nn.Linear(f_in, f_out)
        self.lin_r = nn.Linear(f_in, f_out, bias=False)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        n = x.size(0)
        total = aggregate(x, edge_index, edge_weight)
        ones = x.new_ones(edge_index.size(1))
        count = torch.zeros(n, dtype=x.dtype, device=x.device).index_add_(0, edge_index[1], ones)
        return self.lin_l(total / count.clamp(min=1).unsqueeze(-1)) + project(self.lin_r, x)


Edges = Tensor | list[Tensor]  # one edge list for every layer, or one per layer
Weights = Tensor | list[Tensor] | None


def _layer(value: Edges | Weights, i: int, layers: int) -> Tensor | None:
    """Layer ``i``'s entry of a per-layer list (a single tensor or None serves every layer)."""
    if not isinstance(value, (list, tuple)):
        return value
    if len(value) != layers:
        raise CodesignError(f"per-layer graph has {len(value)} entries for a {layers}-layer model; "
                            "draw the ticket with the same --layers")
    return value[i]


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

    def forward(self, x: Tensor, edge_index: Edges, edge_weight: Weights = None) -> Tensor:
        """``x [N, F_in]``, ``edge_index [2, E]``, ``edge_weight [E]`` -> log-probabilities ``[N, C]``.

        ``edge_index`` and ``edge_weight`` may also be lists with one entry per layer (per-layer
        graphs: layer ``l`` aggregates over ``edge_index[l]`` with ``edge_weight[l]``).
        """
        for i, conv in enumerate(self.convs):
            if i > 0:  # dropout between layers (the input is not dropped: the cost model's architecture)
                x = F.dropout(F.relu(x), self.dropout, self.training)
            x = conv(x, _layer(edge_index, i, len(self.convs)), _layer(edge_weight, i, len(self.convs)))
        return F.log_softmax(x, dim=-1)

    def maskable(self) -> dict[str, nn.Parameter]:
        """The 2-D linear weights, by parameter name (what a weight mask prunes)."""
        return {name: p for name, p in self.named_parameters() if p.dim() == 2}

    def first_layer_params(self) -> list[nn.Parameter]:
        return list(self.convs[0].parameters())
