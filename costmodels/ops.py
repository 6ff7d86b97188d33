"""Operators of a workload and their analytical cost, per pass.

Every operator is a frozen record of shapes and densities with four pure methods:

* ``forward(ctx)`` / ``backward(ctx)`` -> :class:`OpCost` (FLOPs, MACs, DRAM bytes, kernel launches)
* ``saved_bytes(ctx)``  activations autograd keeps for backward            [bytes]
* ``output_bytes(ctx)`` size of the result tensor (for inference peak memory) [bytes]
* ``workspace_bytes(ctx)`` (optional) transient memory while the op runs, beyond what it saves [bytes]

Numeric fields may be Python numbers or numpy arrays (e.g. a whole grid of graph densities): the
formulas use only arithmetic and ``numpy`` ufuncs, so one call prices a whole grid (vectorised).

Conventions, named in every output:

* ``flops``: the torch ``FlopCounterMode`` convention - a multiply-add is 2 FLOPs; for GEMM and
  conv the counts equal ``FlopCounterMode`` exactly (bias adds are separate elementwise ops, as torch
  does not count them). Ops torch counts as 0 (aggregation, softmax, norms, elementwise) are counted
  here as the arithmetic they perform (documented per op), because that is the work the device does.
  Weight sparsity reduces ``flops`` only as far as the device exploits it (``ctx.exploited``).
* ``macs``: the papers' MAC-like count - GEMM/conv multiply-accumulates at the *algorithmic*
  weight density (sparsity fully exploited) plus sparse-aggregation MACs ``nnz(A) * F`` over the
  graph's directed edges *without* the added self-loops (GEBT Table 2 count); elementwise,
  normalisation and softmax ops count 0.
* ``dram_bytes``: bytes moved to/from DRAM under a simple cache model (per op docstrings): an operand
  that fits in the on-chip buffer ``S = ctx.onchip_bytes`` is read once; otherwise GEMM re-reads its
  activation once per weight tile of ``S/2`` bytes, and aggregation gathers ``nnz * F`` rows.

Symbols: ``b`` = bytes per value of the dtype, ``i`` = bytes per index (int64 edge_index: 8),
``d`` = weight density (1 - weight sparsity), ``d_e`` = density the device exploits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import Array, ExecContext

OP_CLASSES = ("gemm", "conv", "aggregation", "elementwise")


# Serial steps: element-by-element work that neither vectorises nor streams, priced per step by the
# profile's ``serial_step_ns`` (0 where it lists none). One step = one comparison of a
# comparison sort; a random draw (a dropout mask value, torch's CPU Bernoulli) = 3 steps
# (measured on the development machine: stable torch.sort 7.6 ns per n*log2(n), dropout 23 ns per value).
RNG_STEPS_PER_DRAW = 3.0
# A top-k mask by selection (``torch.kthvalue``, then the values above the threshold; what
# ``codesign.graphs.masks.topk_mask`` runs): ~2.5 steps per value (measured 2026-12-04 on the
# development machine, one thread: kthvalue 17-19 ns per value at n = 5e3..1e6, stable sort 7.2-8.6 ns
# per n*log2(n) comparison; the masks sorted every value, n*log2(n) steps, until issue 22).
SELECT_STEPS_PER_VALUE = 2.5


@dataclass(frozen=True)
class OpCost:
    """Cost of one operator in one pass. ``kernels`` = launches / host ops (per-kernel overhead
    applies); ``serial_steps`` = serial work (per-step time applies, see ``RNG_STEPS_PER_DRAW``)."""

    name: str
    op_class: str
    phase: str
    flops: Array
    macs: Array
    dram_bytes: Array
    kernels: float
    serial_steps: Array = 0.0


def _ceil_div(a: Array, b: Array) -> Array:
    return np.ceil(np.maximum(a, 0.0) / np.maximum(b, 1.0))


def _reread(matrix_bytes: Array, onchip: float) -> Array:
    """How often the streamed operand is re-read: once per on-chip tile of the other operand."""
    if onchip <= 0:
        return np.maximum(1.0, 0.0 * matrix_bytes + 1.0)
    return np.maximum(1.0, _ceil_div(matrix_bytes, onchip / 2.0))


@dataclass(frozen=True)
class Gemm:
    """Dense combination ``Y[M, N] = X[M, K] @ (W ⊙ mask)[K, N]`` (torch ``mm``; bias separate).

    forward  flops = 2·M·K·N·d_e                 macs = M·K·N·d
    backward flops = 2·M·K·N·d_e (dX, if ``input_grad``) + 2·M·K·N·d_e (dW, if ``trainable``)
    bytes (forward) = X·r + W + Y with X = M·K·b, W = stored weight bytes, Y = M·N·b and
    r = ⌈W / (S/2)⌉ re-reads of X when the weight tile does not fit on chip.
    Input features (``input_resident``) on a device with sparse feature compute: the forward and
    ``dW`` FLOPs scale by their density ``d_x`` and X's bytes are the CSR operand's
    (:meth:`ExecContext.feature_mac_scale`, :meth:`ExecContext.feature_read_scale`); ``macs`` stay
    the papers' count. That credit is the software's (codesign's built-ins multiply sparse features as
    CSR); a product the model runs dense (``sparse_compute=False``: a traced ``aten.mm`` of strided
    features) gets none, only the storage credit of a device that stores features sparse.
    """

    name: str
    m: Array
    k: Array
    n: Array
    weight_density: Array = 1.0
    input_grad: bool = True
    trainable: bool = True
    op_class: str = "gemm"
    input_resident: bool = False  # X is a resident tensor (the input features): autograd keeps a reference
    weight_pattern: str = "unstructured"  # what the weight mask conforms to (ExecContext: 2:4 credit)
    input_density: Array = 1.0  # non-zero fraction of X when it is the resident input (sparse feature storage)
    sparse_compute: bool = True  # may run sparse-dense where the device computes with sparse input features

    def param_count(self) -> Array:
        return self.k * self.n

    def _mac(self) -> Array:
        return self.m * self.k * self.n

    def _x_bytes(self, ctx: ExecContext) -> Array:
        if not self.input_resident:
            return self.m * self.k * ctx.dtype_bytes
        read = ctx.feature_read_scale if self.sparse_compute else ctx.feature_scale
        return self.m * self.k * ctx.dtype_bytes * read(self.input_density)

    def _x_macs(self, ctx: ExecContext) -> Array:
        """Fraction of the MACs with X that run: below 1 only for sparse input features run sparse."""
        return ctx.feature_mac_scale(self.input_density) if self.input_resident and self.sparse_compute else 1.0

    def forward(self, ctx: ExecContext) -> OpCost:
        b = ctx.dtype_bytes
        w = ctx.weight_bytes(self.param_count(), self.weight_density, self.weight_pattern)
        x, y = self._x_bytes(ctx), self.m * self.n * b
        traffic = x * _reread(w, ctx.onchip_bytes) + w + y
        flops = 2.0 * self._mac() * ctx.exploited(self.weight_density, self.weight_pattern) * self._x_macs(ctx)
        return OpCost(self.name, self.op_class, "forward", flops, self._mac() * self.weight_density, traffic, 1)

    def backward(self, ctx: ExecContext) -> OpCost:
        b = ctx.dtype_bytes
        w = ctx.weight_bytes(self.param_count(), self.weight_density, self.weight_pattern)
        x, y = self._x_bytes(ctx), self.m * self.n * b
        d, pattern = self.weight_density, self.weight_pattern
        one = 2.0 * self._mac()
        flops = 0.0 * one * d
        traffic = 0.0 * one * d
        kernels = 0
        if self.input_grad:  # dX = dY @ Wᵀ: read dY, W, write dX
            flops = flops + one * ctx.exploited(d, pattern, "input_grad")
            traffic = traffic + y * _reread(w, ctx.onchip_bytes) + w + x
            kernels += 1
        if self.trainable:  # dW = Xᵀ @ dY: read X, dY, write dW
            flops = flops + one * ctx.exploited(d, pattern, "weight_grad") * self._x_macs(ctx)
            traffic = traffic + (x + y) * _reread(w, ctx.onchip_bytes) + w
            kernels += 1
        return OpCost(self.name, self.op_class, "backward", flops, 0.0 * flops, traffic, kernels)

    def saved_bytes(self, ctx: ExecContext) -> Array:
        if self.input_resident:  # counted once, as the workload's input
            return 0.0 * self.m
        return self.m * self.k * ctx.dtype_bytes if self.trainable else 0.0 * self.m

    def output_bytes(self, ctx: ExecContext) -> Array:
        return self.m * self.n * ctx.dtype_bytes


@dataclass(frozen=True)
class Conv2d:
    """``Y[B, C_out, H_out, W_out] = conv(X[B, C_in, H_in, W_in], W[C_out, C_in/g, kh, kw])``.

    forward flops = 2·B·C_out·H_out·W_out·(C_in/g)·kh·kw·d_e (= FlopCounterMode), macs = half at d.
    backward: the same count for dX (if ``input_grad``) and for dW (if ``trainable``).
    bytes: X·r + W + Y (r as for :class:`Gemm`).
    """

    name: str
    batch: Array
    c_in: Array
    c_out: Array
    h_in: Array
    w_in: Array
    h_out: Array
    w_out: Array
    kernel: tuple[int, int] = (3, 3)
    groups: int = 1
    weight_density: Array = 1.0
    input_grad: bool = True
    trainable: bool = True
    op_class: str = "conv"
    weight_pattern: str = "unstructured"

    def param_count(self) -> Array:
        return self.c_out * (self.c_in / self.groups) * self.kernel[0] * self.kernel[1]

    def _mac(self) -> Array:
        return self.batch * self.h_out * self.w_out * self.param_count()

    def _bytes(self, ctx: ExecContext) -> tuple[Array, Array, Array]:
        b = ctx.dtype_bytes
        x = self.batch * self.c_in * self.h_in * self.w_in * b
        y = self.batch * self.c_out * self.h_out * self.w_out * b
        return x, ctx.weight_bytes(self.param_count(), self.weight_density, self.weight_pattern), y

    def forward(self, ctx: ExecContext) -> OpCost:
        x, w, y = self._bytes(ctx)
        flops = 2.0 * self._mac() * ctx.exploited(self.weight_density, self.weight_pattern)
        traffic = x * _reread(w, ctx.onchip_bytes) + w + y
        return OpCost(self.name, self.op_class, "forward", flops, self._mac() * self.weight_density, traffic, 1)

    def backward(self, ctx: ExecContext) -> OpCost:
        x, w, y = self._bytes(ctx)
        d, pattern = self.weight_density, self.weight_pattern
        one = 2.0 * self._mac()
        n = int(self.input_grad) + int(self.trainable)
        flops = 0.0 * one * d
        traffic = 0.0 * one * d
        if self.input_grad:
            flops = flops + one * ctx.exploited(d, pattern, "input_grad")
            traffic = traffic + y * _reread(w, ctx.onchip_bytes) + w + x
        if self.trainable:
            flops = flops + one * ctx.exploited(d, pattern, "weight_grad")
            traffic = traffic + (x + y) * _reread(w, ctx.onchip_bytes) + w
        return OpCost(self.name, self.op_class, "backward", flops, 0.0 * flops, traffic, n)

    def saved_bytes(self, ctx: ExecContext) -> Array:
        return self._bytes(ctx)[0] if self.trainable else 0.0 * self.batch

    def output_bytes(self, ctx: ExecContext) -> Array:
        return self._bytes(ctx)[2]


@dataclass(frozen=True)
class Aggregate:
    """Sparse aggregation ``out[i] = ⊕_{j→i} w_ji · h[j]`` over ``nnz = E + L`` messages.

    ``E`` = directed edges kept (already scaled by graph density), ``L`` = added self-loops,
    ``F`` = feature width (× heads for GAT). ``weighted``: messages scaled by an edge value;
    ``reduce``: ``sum``, ``mean`` or ``max`` (max or min: one comparison per message element; its
    backward compares each element with the result again and routes the gradient: one more per element).

    forward flops = 2·nnz·F if weighted else nnz·F (one add per message element), + N·F for mean;
    macs = E·F (self-loops excluded: the GEBT count).
    bytes: gather ``min(nnz·F, N·F)·b`` (the whole ``h`` is read once when ``N·F·b <= S``, else one
    row per message) + indices ``2·nnz·i`` + edge values ``nnz·b`` + ``5·N·F·b`` for the dense
    ``N x F`` passes of ``out = base + A h`` (base and product written, both read, sum written).
    Host ops (``kernels``): 4 per sparse-dense product (``products``: one per GAT head) + 1 forward;
    backward 2 per product for ``dh`` and 3 for the edge-value gradient.
    backward: the transposed scatter for ``dh`` (if ``input_grad``: same flops and bytes) and, for a
    trainable graph, ``d w_ji = <h[j], dout[i]>``: 2·nnz·F flops gathering both rows.
    """

    name: str
    num_nodes: Array
    num_edges: Array
    self_loops: Array
    features: Array
    weighted: bool = True
    reduce: str = "sum"
    trainable_graph: bool = False
    input_grad: bool = True
    op_class: str = "aggregation"
    products: int = 1  # sparse-dense products run (the training code runs one per GAT head)
    input_density: Array = 1.0  # non-zero fraction of h when it is the input features (sparse feature storage)

    def param_count(self) -> Array:
        return 0.0

    def _nnz(self) -> Array:
        return self.num_edges + self.self_loops

    def _gather(self, ctx: ExecContext, rows: Array) -> Array:
        scale = ctx.feature_scale(self.input_density)  # 1 unless h is sparse-stored input features
        table = self.num_nodes * self.features * ctx.dtype_bytes * scale
        per_message = rows * self.features * ctx.dtype_bytes * scale
        if ctx.onchip_bytes <= 0:
            return per_message
        return np.where(table <= ctx.onchip_bytes, np.minimum(table, per_message), per_message)

    def forward(self, ctx: ExecContext) -> OpCost:
        nnz, b = self._nnz(), ctx.dtype_bytes
        flops = (2.0 if self.weighted else 1.0) * nnz * self.features
        mean_bytes = 0.0
        if self.reduce == "mean":  # the division by the in-degree: read and write N x F
            flops = flops + self.num_nodes * self.features
            mean_bytes = 2.0 * self.num_nodes * self.features * b
        traffic = (
            self._gather(ctx, nnz)
            + 2.0 * nnz * ctx.index_bytes
            + (nnz * b if self.weighted else 0.0)
            + 5.0 * self.num_nodes * self.features * b  # base + product, their sum: write, write, read 2, write
            + mean_bytes
        )
        # host ops: per product the CSR values gather, CSR tensor, sparse mm and the add; one zero base
        return OpCost(self.name, self.op_class, "forward", flops, self.num_edges * self.features, traffic,
                      4 * self.products + 1)

    def backward(self, ctx: ExecContext) -> OpCost:
        fwd = self.forward(ctx)
        flops = 0.0 * fwd.flops
        traffic = 0.0 * fwd.flops
        kernels = 0
        if self.input_grad:  # dh = A^T g: CSR tensor + sparse mm per product
            flops, traffic, kernels = flops + fwd.flops, traffic + fwd.dram_bytes, kernels + 2 * self.products
            if self.reduce == "max":  # which element won: compared with the result again
                flops = flops + self._nnz() * self.features
        if self.trainable_graph and self.weighted:  # sampled dense-dense product + scatter back, per product
            nnz = self._nnz()
            flops = flops + 2.0 * nnz * self.features
            traffic = traffic + 2.0 * self._gather(ctx, nnz) + nnz * (2.0 * ctx.index_bytes + ctx.dtype_bytes)
            kernels += 3 * self.products
        return OpCost(self.name, self.op_class, "backward", flops, 0.0 * flops, traffic, kernels)

    def saved_bytes(self, ctx: ExecContext) -> Array:
        if self.trainable_graph:
            return self.num_nodes * self.features * ctx.dtype_bytes
        return 0.0 * self.num_nodes

    def workspace_bytes(self, ctx: ExecContext) -> Array:
        """Transient memory while it runs: the sparse-dense product, one ``N x F`` tensor (a base is added
        in place: ``codesign.graphs.aggregate``), and for a mean the quotient beside it (SAGE's ``total /
        count``), a second. Measured with ``codesign profile`` (window peak RSS above the warm runtime,
        set-up memory handed back; 2026-12-05, dense, 1 thread), whole-epoch memory predicted / measured:
        GIN Cora / CiteSeer +1% / +5%, SAGE about +1% / +3%. Three for every reduce (a zero base, the
        product and their sum, as an earlier aggregation computed them) over-predicted GIN by 69-72%."""
        return (2.0 if self.reduce == "mean" else 1.0) * self.num_nodes * self.features * ctx.dtype_bytes

    def output_bytes(self, ctx: ExecContext) -> Array:
        return self.num_nodes * self.features * ctx.dtype_bytes


@dataclass(frozen=True)
class EdgeAttention:
    """GAT edge attention for ``H`` heads of width ``F`` over ``nnz`` messages (PyG GATConv).

    forward flops = 4·N·H·F (node scores α_src, α_dst: two dot products per node and head)
                  + 7·nnz·H (per edge and head: add, leaky-ReLU, max-shift, exp, sum, divide,
                    edge-value scale); macs = 2·N·H·F.  backward flops = 2 × forward (none: ``needs_backward`` False).
    bytes: node scores 2·N·H·b written and gathered per edge (2·nnz·H·b), the coefficient array
    nnz·H·b written, read and written again by the softmax passes (3·nnz·H·b), indices 2·nnz·i.
    """

    name: str
    num_nodes: Array
    nnz: Array
    heads: Array
    features: Array
    op_class: str = "aggregation"
    needs_backward: bool = True  # False: nothing before it needs a gradient (a search's edge-value step, layer 1)

    def param_count(self) -> Array:
        return 2.0 * self.heads * self.features

    def forward(self, ctx: ExecContext) -> OpCost:
        b = ctx.dtype_bytes
        node = self.num_nodes * self.heads * self.features
        flops = 4.0 * node + 7.0 * self.nnz * self.heads
        traffic = node * b + 2.0 * self.num_nodes * self.heads * b + 5.0 * self.nnz * self.heads * b
        traffic = traffic + 2.0 * self.nnz * ctx.index_bytes
        # host ops: node scores (2 mul + 2 sum), gathers + add + leaky ReLU (4), segment softmax (10)
        return OpCost(self.name, self.op_class, "forward", flops, 2.0 * node, traffic, 18)

    def backward(self, ctx: ExecContext) -> OpCost:
        fwd = self.forward(ctx)
        if not self.needs_backward:
            zero = 0.0 * fwd.flops
            return OpCost(self.name, self.op_class, "backward", zero, zero, zero, 0)
        return OpCost(self.name, self.op_class, "backward", 2.0 * fwd.flops, 0.0 * fwd.flops, fwd.dram_bytes, 18)

    def saved_bytes(self, ctx: ExecContext) -> Array:
        # per edge and head: the leaky ReLU's input, the exponentials, the softmax denominators gathered per
        # edge, and the coefficients the aggregation keeps for its backward (PyG's GATConv and the built-in);
        # without a backward only the coefficients, which the product with the edge weights keeps for theirs
        return (4.0 if self.needs_backward else 1.0) * self.nnz * self.heads * ctx.dtype_bytes

    def output_bytes(self, ctx: ExecContext) -> Array:
        return self.nnz * self.heads * ctx.dtype_bytes


@dataclass(frozen=True)
class Elementwise:
    """A pointwise or reduction op over ``numel`` values (ReLU, dropout, bias, norm, softmax, ...).

    forward flops = numel · ``flops_per_elem``; backward = numel · ``backward_flops_per_elem``.
    bytes = numel · b · (``reads`` + ``writes``) forward, numel · b · (reads + 1) backward.
    What autograd keeps per value: ``saved_values`` values of the dtype (ReLU: its output, 1) and
    ``saved_masks`` dropout masks (``ExecContext.mask_bytes`` each).
    """

    name: str
    numel: Array
    flops_per_elem: float = 1.0
    backward_flops_per_elem: float = 1.0
    reads: float = 1.0
    writes: float = 1.0
    saved_values: float = 0.0
    saved_masks: float = 0.0
    needs_backward: bool = True
    params: Array = 0.0
    op_class: str = "elementwise"
    kernels: float = 1.0  # host ops it takes per pass (e.g. GCN normalisation: 8)
    serial_per_elem: float = 0.0  # serial steps per value, forward (dropout: one draw; top-k: a selection)

    def param_count(self) -> Array:
        return self.params

    def forward(self, ctx: ExecContext) -> OpCost:
        flops = self.numel * self.flops_per_elem
        traffic = self.numel * ctx.dtype_bytes * (self.reads + self.writes)
        return OpCost(self.name, self.op_class, "forward", flops, 0.0 * flops, traffic, self.kernels,
                      self.numel * self.serial_per_elem)

    def backward(self, ctx: ExecContext) -> OpCost:
        if not self.needs_backward:
            zero = 0.0 * self.numel
            return OpCost(self.name, self.op_class, "backward", zero, zero, zero, 0)
        flops = self.numel * self.backward_flops_per_elem
        traffic = self.numel * ctx.dtype_bytes * (self.reads + 1.0)
        return OpCost(self.name, self.op_class, "backward", flops, 0.0 * flops, traffic, self.kernels)

    def saved_bytes(self, ctx: ExecContext) -> Array:
        return self.numel * (self.saved_values * ctx.dtype_bytes + self.saved_masks * ctx.mask_bytes)

    def output_bytes(self, ctx: ExecContext) -> Array:
        return self.numel * ctx.dtype_bytes * self.writes


Op = Gemm | Conv2d | Aggregate | EdgeAttention | Elementwise


def optimizer_cost(name: str, params: Array, optimizer: str, ctx: ExecContext) -> OpCost:
    """One optimizer step over ``params`` stored parameters.

    Adam: 15 FLOPs per parameter (weight decay 2, first moment 3, second moment 4, denominator 3,
    update 3); reads p, g, m, v and writes p, m, v: 7·P·b bytes.
    SGD with momentum: 6 FLOPs (weight decay 2, momentum 2, update 2); 5·P·b bytes.
    """
    per = {"adam": (15.0, 7.0), "sgd": (6.0, 5.0), "none": (0.0, 0.0)}
    if optimizer not in per:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    f, rw = per[optimizer]
    return OpCost(name, "elementwise", "optimizer", params * f, 0.0 * params, params * ctx.dtype_bytes * rw, 2)


def optimizer_state_values(optimizer: str) -> float:
    """Optimizer state kept per parameter: Adam 2 (m, v), SGD with momentum 1."""
    return {"adam": 2.0, "sgd": 1.0, "none": 0.0}[optimizer]
