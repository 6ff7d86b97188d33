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
Aggregation (:func:`weighted_aggregate`) never materialises the ``[E, F]`` messages: it runs as
CSR sparse-dense products with a hand-written backward (layouts cached per edge list; GAT's heads
in one product, each node split into one per head).
Between layers: ReLU then dropout; the output is log-softmax (trained with NLL). The maskable
weights are the 2-D linear weights ``[F_out, F_in]`` of every layer (biases and attention vectors
stay dense), which is what the cost model's ``N * F_in * F_out`` term scales with.
"""

from __future__ import annotations

import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from costmodels.context import SPARSE_FEATURES_MAX_DENSITY
from costmodels.errors import CodesignError, unknown

MODELS = ("gcn", "gat", "gin", "sage")


def mark_symmetric(weight: Tensor) -> Tensor:
    """Declare ``weight [E]`` symmetric: ``w(u -> v) = w(v -> u)`` on an edge list that holds both
    directions of every edge (``GraphData``'s lists; weights from undirected values, as
    ``relu(theta)[dir_to_und]``). ``A`` is then ``A^T``, and the aggregation runs on ``A^T``'s CSR,
    whose order is the coalesced edge list's own: no per-call gather of ``E`` values into ``A``'s
    order (at 10^6 nodes a random gather of 10^7 values, ~0.8 s per layer on one core). Same
    matrix, same CSR structure, so the same result bit for bit. Returns ``weight``."""
    weight._codesign_symmetric = True  # type: ignore[attr-defined]
    return weight


def mark_undirected(weight: Tensor, values: Tensor, pairs: Tensor) -> Tensor:
    """Declare ``weight [E]`` (symmetric: :func:`mark_symmetric`) the gather ``values[dir_to_und]`` of
    the undirected values ``values [M]`` (with their autograd) over ``pairs [2, M]`` (``GraphData.
    undirected``: ``i < j``, sorted), ``E = 2 M``. GCN's degree and the sum aggregation then take their
    gradient to ``values`` directly, per undirected edge (:class:`_SymmetricAggregate`,
    :class:`_SymmetricDegree`), instead of per directed edge and an ``index_add_`` of ``E`` values into
    ``M``; the forward products are unchanged (bit for bit). Returns ``weight``."""
    weight._codesign_undirected = (values, pairs)  # type: ignore[attr-defined]
    return mark_symmetric(weight)


def _undirected_of(weight: Tensor | None, plan_symmetric: bool) -> tuple[Tensor, Tensor] | None:
    """``(values, pairs)`` of a :func:`mark_undirected` weight that needs a gradient, on an edge list
    holding both directions of every pair; else None (the per-directed-edge path)."""
    und = getattr(weight, "_codesign_undirected", None)
    if und is None or weight is None or not plan_symmetric or not und[0].requires_grad \
            or weight.size(0) != 2 * und[1].size(1):
        return None
    return und


class _SymmetricDegree(torch.autograd.Function):
    """``d = 1 + sum_(e: src_e = i) w_e`` (bit for bit the directed sum, from ``w``'s values) with the
    gradient to the undirected values: ``d(d_i)/d(u_ij) = d(d_j)/d(u_ij) = 1``, so ``du = dd_i + dd_j``."""

    @staticmethod
    def forward(ctx, values: Tensor, w: Tensor, src: Tensor, pairs: Tensor, n: int) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pairs)
        return torch.ones(n, dtype=w.dtype, device=w.device).index_add_(0, src, w)

    @staticmethod
    def backward(ctx, dd: Tensor):  # type: ignore[override]
        (pairs,) = ctx.saved_tensors
        return dd.index_select(0, pairs[0]).add_(dd.index_select(0, pairs[1])), None, None, None, None


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
        view._codesign_csr = (x.to_sparse_csr(), x.t().contiguous().to_sparse_csr())  # type: ignore[attr-defined]
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


def is_symmetric(weight: Tensor | None) -> bool:
    """``weight`` was declared symmetric (:func:`mark_symmetric`); None (all ones) is."""
    return weight is None or bool(getattr(weight, "_codesign_symmetric", False))


class _Plan:
    """CSR layouts of ``A`` (rows = targets) and ``A^T`` (rows = sources) for one ``edge_index``:
    each a stable sort of the edges, computed once per edge list (``A``'s on first need: symmetric
    weights on a symmetric list never need it) and reused every epoch."""

    def __init__(self, edge_index: Tensor, n: int) -> None:
        src, dst = edge_index[0], edge_index[1]
        self.n = n
        small = n < 2**31 and src.numel() < 2**31  # int32 indices halve the plan's memory
        self.perm_t, self.crow_t, self.col_t = _layout(src, dst, n, small)
        # both directions of every edge, coalesced (the transpose needs no permutation): the condition
        # under which a symmetric weight makes A = A^T (in-degree = out-degree is a cheap sanity check)
        self.symmetric = self.perm_t is None and bool(torch.equal(self.crow_t[1:] - self.crow_t[:-1],
                                                                  torch.bincount(dst, minlength=n).to(self.crow_t)))
        self._a = None if self.symmetric else _layout(dst, src, n, small)

    @property
    def a_layout(self) -> tuple[Tensor | None, Tensor, Tensor]:
        """``A``'s ``(perm, crow, col)``; on a symmetric list built on first need from ``A^T``'s: the
        same ``crow`` and ``col``, and ``perm`` = the position of each edge's reverse."""
        if self._a is None:
            crow, col = self.crow_t.long(), self.col_t.long()
            rows = torch.repeat_interleave(torch.arange(self.n, device=crow.device), crow[1:] - crow[:-1])
            rev = torch.searchsorted(rows * self.n + col, col * self.n + rows)
            self._a = (rev.to(self.col_t.dtype), self.crow_t, self.col_t)
        return self._a

    def matrix(self, w: Tensor, transpose: bool = False, symmetric: bool = False) -> Tensor:
        """``A`` (or ``A^T``) with values ``w`` in edge-list order; ``symmetric``: ``w`` is
        (:func:`mark_symmetric`), so on a symmetric list ``A`` is built as ``A^T``."""
        if transpose or (symmetric and self.symmetric):
            perm, crow, col = self.perm_t, self.crow_t, self.col_t
        else:
            perm, crow, col = self.a_layout
        with warnings.catch_warnings():  # "CSR support is in beta": the products used here are stable
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(crow, col, w if perm is None else w[perm], (self.n, self.n),
                                           check_invariants=False)  # valid by construction (_layout)

    def scatter_back(self, values: Tensor, transpose: bool = False) -> Tensor:
        """Per-edge values in ``A``'s (or ``A^T``'s) CSR order back to the edge list's order."""
        perm = self.perm_t if transpose else self.a_layout[0]
        if perm is None:
            return values
        out = torch.empty_like(values)
        out[perm] = values
        return out


def _layout(rows: Tensor, cols: Tensor, n: int, small: bool) -> tuple[Tensor | None, Tensor, Tensor]:
    """``(perm, crow, col)`` of the CSR matrix with these rows and columns; ``perm`` is None when
    the edges are already sorted by (row, col) (e.g. the transpose of a coalesced edge list)."""
    key = rows * n + cols
    perm = None if bool((key[1:] >= key[:-1]).all()) else torch.argsort(key, stable=True)
    dtype = torch.int32 if small else torch.long
    crow = torch.zeros(n + 1, dtype=dtype, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
    col = (cols if perm is None else cols[perm]).to(dtype)
    return (None if perm is None else perm.to(dtype)), crow, col


_CACHE: dict[tuple[str, int], tuple[weakref.ref, int, object]] = {}


def _per_tensor(kind: str, edge_index: Tensor, n: int, build):
    """``build()`` once per (``kind``, this very tensor object, ``n``); dropped when the tensor dies.
    Training reuses one edge list for every epoch, so its derived structures are built once."""
    key = (kind, id(edge_index))
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is edge_index and hit[1] == n:
        return hit[2]
    value = build()
    _CACHE[key] = (weakref.ref(edge_index, lambda _r, k=key, cache=_CACHE: cache.pop(k, None)), n, value)
    return value


def _plan(edge_index: Tensor, n: int) -> _Plan:
    return _per_tensor("csr", edge_index, n, lambda: _Plan(edge_index, n))


def _head_plan(edge_index: Tensor, n: int, heads: int) -> _Plan:
    """The plan of the graph with each node ``i`` split into ``heads`` nodes ``i H + k`` and edge ``e``
    into ``heads`` edges ``e H + k`` (``j H + k -> i H + k``): GAT's heads in one product."""
    def build() -> _Plan:
        k = torch.arange(heads, device=edge_index.device)
        return _Plan((edge_index.unsqueeze(-1) * heads + k).reshape(2, -1), heads * n)

    return _per_tensor(f"csr-heads-{heads}", edge_index, n, build)


def with_self_loops(edge_index: Tensor, n: int) -> Tensor:
    """``edge_index`` followed by the ``n`` self-loops; the same tensor object for the same input,
    so its CSR layout (:func:`_plan`) is built once, not every forward."""
    def build() -> Tensor:
        loops = torch.arange(n, device=edge_index.device)
        return torch.cat([edge_index, torch.stack([loops, loops])], dim=1)

    return _per_tensor("self-loops", edge_index, n, build)


class _SparseAggregate(torch.autograd.Function):
    """``out = base + A h`` (``out = A h`` without ``base``) with ``A[i, j] = w_(j -> i)`` as a CSR
    matrix: forward and ``dh = A^T g`` are sparse-dense products, ``dw_e = g_i . h_j`` a sampled
    dense-dense product, so no ``[E, F]`` tensor exists at all. ``h [N, F]``, one weight per edge
    (GAT's heads: the split-node matrix of :func:`_head_plan`, ``h [N H, C]``)."""

    @staticmethod
    def forward(ctx, base: Tensor | None, h: Tensor, w: Tensor, plan: _Plan,  # type: ignore[override]
                symmetric: bool = False) -> Tensor:
        ctx.save_for_backward(h, w)
        ctx.plan = plan
        out = torch.sparse.mm(plan.matrix(w, symmetric=symmetric), h)
        return out if base is None else out.add_(base)  # in place: out is this product's own fresh tensor

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        h, w = ctx.saved_tensors
        plan: _Plan = ctx.plan
        a_t = plan.matrix(w, transpose=True)  # rows = sources: a coalesced edge list needs no permutation
        gh = torch.sparse.mm(a_t, g) if ctx.needs_input_grad[1] else None
        gw = None
        if ctx.needs_input_grad[2]:  # dw_(j -> i) = h_j . g_i, sampled at A^T's pattern (row j, column i)
            sampled = torch.sparse.sampled_addmm(a_t, h.contiguous(), g.t(), beta=0.0).values()
            gw = plan.scatter_back(sampled, transpose=True)
        return (g if ctx.needs_input_grad[0] else None), gh, gw, None, None


class _SymmetricAggregate(torch.autograd.Function):
    """:class:`_SparseAggregate` for a :func:`mark_undirected` weight: the same forward product, and the
    gradient per undirected pair ``{i, j}`` from sampled products over the upper triangle:
    ``du_ij = dw_(j -> i) + dw_(i -> j) = h_i . g_j + g_i . h_j``, with no scatter of ``E`` values back
    into ``M`` (at 10^6 nodes on one core ~0.15 s per layer); the values come out in ``pairs``' order,
    ``values``' own."""

    @staticmethod
    def forward(ctx, base: Tensor | None, h: Tensor, values: Tensor, w: Tensor, plan: _Plan,  # type: ignore[override]
                pairs: Tensor) -> Tensor:
        ctx.save_for_backward(h, w, pairs)
        ctx.plan = plan
        out = torch.sparse.mm(plan.matrix(w, symmetric=True), h)
        return out if base is None else out.add_(base)  # in place: out is this product's own fresh tensor

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        h, w, pairs = ctx.saved_tensors
        plan: _Plan = ctx.plan
        gh = torch.sparse.mm(plan.matrix(w, transpose=True), g) if ctx.needs_input_grad[1] else None
        gu = None
        if ctx.needs_input_grad[2]:
            # h_i . g_j, then g_i . h_j added by the second product (beta = 1 onto the first's values); one
            # product of [h | g] with [g | h] reads the same rows but allocates two [N, 2F] copies (measured at
            # 10^6 nodes: no faster, 84 MiB more peak memory)
            first = torch.sparse.sampled_addmm(_upper_matrix(pairs, plan.n, h.dtype), h, g.t(), beta=0.0)
            gu = torch.sparse.sampled_addmm(first, g, h.t()).values()
        return (g if ctx.needs_input_grad[0] else None), gh, gu, None, None, None


def _upper_matrix(pairs: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """The ``[n, n]`` CSR pattern with one entry per pair ``(i, j)``, ``i < j`` (rows ``i``), in
    ``pairs``' order (sorted by ``(i, j)``: ``GraphData.undirected``); built once per pairs tensor."""
    def build() -> tuple[Tensor, Tensor]:
        small = n < 2**31 and pairs.size(1) < 2**31
        idx = torch.int32 if small else torch.long
        crow = pairs.new_zeros(n + 1, dtype=idx)  # from pairs: a graph op (opcount), built once per graph
        crow[1:] = torch.cumsum(torch.bincount(pairs[0], minlength=n), 0)
        return crow, pairs[1].to(idx)

    crow, col = _per_tensor("upper", pairs, n, build)
    # zeros, not empty: the sampled product scales them by beta = 0, and 0 * NaN is NaN; made every call
    # (one fill of M values), so a step dispatches the same ops whatever ran before it (opcount)
    values = torch.zeros(col.numel(), dtype=dtype, device=col.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


def weighted_aggregate(h: Tensor, edge_index: Tensor, weight: Tensor | None, base: Tensor | None = None,
                       symmetric: bool = False) -> Tensor:
    """``base_i + sum_{(j -> i)} w_ji h_j`` for ``h [N, F]`` (``weight [E]``) or ``[N, H, F]``
    (``weight [E, H]`` or ``[E]``); no ``base``: the sum alone. CSR products (``_SparseAggregate``,
    GAT's heads in one product over split nodes): O(E F) time, O(N F + E H) memory. ``symmetric``:
    ``weight`` is symmetric (:func:`mark_symmetric`; None, all ones, always is)."""
    e = edge_index.size(1)
    if weight is not None and (weight.size(0) != e or weight.dim() > h.dim() - 1):
        raise ValueError(f"edge weights {tuple(weight.shape)} do not fit {e} edges and features {tuple(h.shape)}")
    if e == 0:
        return h.new_zeros(h.shape) if base is None else base
    w = weight if weight is not None else h.new_ones(e)
    symmetric = symmetric or weight is None
    if h.dim() == 2:
        plan = _plan(edge_index, h.size(0))
        und = _undirected_of(weight, symmetric and plan.symmetric)
        if und is not None:
            return _SymmetricAggregate.apply(base, h, und[0], w.detach(), plan, und[1])
        return _SparseAggregate.apply(base, h, w, plan, symmetric)
    # [N, H, C]: all heads in one product with the [N H, N H] matrix A_H whose row (i, k) holds head k's
    # weights of node i's edges (the same sums per row as H separate products; a constant kernel count
    # whatever the head count). Rows, columns and values in the [N, H] / [E, H] layouts' own order:
    # reshapes of contiguous tensors, no copies.
    n, heads, c = h.shape
    w_h = (w if w.dim() == 2 else w.unsqueeze(1).expand(e, heads)).reshape(-1)  # [E H], edge-major
    out = _SparseAggregate.apply(None if base is None else base.reshape(n * heads, c), h.reshape(n * heads, c), w_h,
                                 _head_plan(edge_index, n, heads), symmetric and w.dim() == 1)
    return out.view(n, heads, c)


def _aggregate(h: Tensor, edge_index: Tensor, weight: Tensor | None) -> Tensor:
    """``out_i = sum_{(j -> i)} w_ji h_j`` (``h [N, F]`` or ``[N, H, F]``), O(E F)."""
    return weighted_aggregate(h, edge_index, weight, None, is_symmetric(weight))


def segment_softmax(logits: Tensor, index: Tensor, n: int) -> Tensor:
    """Softmax of ``logits [E, H]`` over the entries sharing ``index`` (the target node). The per-node
    peak subtracted for stability is a constant (detached, as PyG's ``softmax``): the softmax does not
    depend on it, so its gradient is zero and autograd need not run the max's backward."""
    shape = (n, *logits.shape[1:])
    idx = index.view(-1, *([1] * (logits.dim() - 1))).expand_as(logits)
    peak = torch.full(shape, float("-inf"), dtype=logits.dtype, device=logits.device)
    peak = peak.scatter_reduce(0, idx, logits.detach(), reduce="amax", include_self=True)
    e = (logits - peak.index_select(0, index)).exp()
    total = torch.zeros(shape, dtype=logits.dtype, device=logits.device).index_add_(0, index, e)
    return e / (total.index_select(0, index) + 1e-16)


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
        und = _undirected_of(edge_weight, symmetric and _plan(edge_index, n).symmetric)
        if und is not None:  # the same sum; its gradient per undirected pair
            deg = _SymmetricDegree.apply(und[0], w.detach(), src, und[1], n)
        else:
            deg = torch.ones(n, dtype=h.dtype, device=h.device).index_add_(0, src if symmetric else dst, w)
        dinv = deg.rsqrt().unsqueeze(-1)
        # D^-1/2 (I + A_w) D^-1/2 h as dinv * ((I + A_w)(dinv * h)): the normalisation scales rows, so no
        # per-edge norm (two random gathers of E values and their scatters back) is built
        hs = dinv * h
        # the bias added in place: mul's backward keeps its inputs, not its output (one [N, F] tensor less)
        return (dinv * weighted_aggregate(hs, edge_index, edge_weight, base=hs, symmetric=symmetric)).add_(self.bias)


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
        total = _aggregate(x, edge_index, edge_weight)
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
