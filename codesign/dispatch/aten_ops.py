"""Which ATen operator is which cost-model op, for the tracer (:mod:`codesign.dispatch.workload`):
the operator classes (GEMMs, scatters, gathers, reductions, data moves, creations, free views, batch
norms) and the three cost-model ops only a trace needs (a product of two activations, the parameters no
weight carries, an elementwise op fused into the aggregation that consumes it), and a tensor's size in
float32 values (:func:`value_count`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from costmodels import Elementwise, Gemm, OpCost
from costmodels.context import ExecContext

# products; mv/dot/vdot/addmv/addr take vectors (a 1-D weight: `h @ self.att`), addbmm sums a bmm over its batch
GEMMS = {"mm", "addmm", "bmm", "baddbmm", "_sparse_addmm", "_sparse_mm", "_sparse_csr_mm", "_sparse_csr_addmm",
         "mv", "dot", "vdot", "addmv", "addr", "addbmm"}
ADDMMS = {"addmm", "baddbmm", "_sparse_addmm", "_sparse_csr_addmm", "addmv", "addr", "addbmm"}  # (bias, a, b)
SCATTERS = {"scatter_add", "scatter_add_", "scatter_reduce", "scatter_reduce_", "index_add", "index_add_",
             "index_reduce", "index_reduce_", "segment_reduce", "_segment_reduce"}
GATHERS = {"index_select", "index", "gather"}
REDUCTIONS = {"sum", "mean", "amax", "amin", "max", "min", "prod", "_softmax", "_log_softmax", "softmax",
               "log_softmax", "nll_loss_forward", "nll_loss2d_forward", "norm", "linalg_vector_norm", "var",
               "std", "var_mean", "native_layer_norm", "native_batch_norm", "_native_batch_norm_legit",
               "_native_batch_norm_legit_no_training", "argmax", "argmin", "logsumexp", "cumsum", "any", "all",
               "native_group_norm", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d",
               "_adaptive_avg_pool2d", "topk", "sort",
               # pooling of other ranks, max without indices, adaptive max; losses; other reductions
               "max_pool1d", "max_pool2d", "max_pool3d", "max_pool3d_with_indices", "avg_pool1d", "avg_pool3d",
               "adaptive_avg_pool1d", "adaptive_avg_pool3d", "_adaptive_avg_pool3d", "adaptive_max_pool1d",
               "adaptive_max_pool2d", "adaptive_max_pool3d", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
               "binary_cross_entropy", "binary_cross_entropy_with_logits", "std_mean", "median", "nanmedian",
               "mode", "cumprod", "aminmax", "col2im", "kthvalue", "logcumsumexp", "histc", "searchsorted"}
MOVES = {"index", "gather", "index_select",
          "clone", "_to_copy", "copy_", "cat", "stack", "repeat", "contiguous", "fill_", "zero_", "masked_fill",
          "masked_fill_", "where", "index_put", "index_put_", "masked_select", "nonzero", "constant_pad_nd",
          "flip", "roll", "native_dropout", "bernoulli_", "bernoulli", "lift_fresh_copy", "clamp", "clamp_",
          "scatter", "scatter_", "to_sparse", "_to_sparse", "_to_sparse_csr", "_to_dense", "coalesce",
          "_coalesce", "to_dense", "tril", "triu", "unique", "_unique2", "bincount", "repeat_interleave",
          "_convert_indices_from_coo_to_csr", "_convert_indices_from_csr_to_coo",
          "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
          "replication_pad3d", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
          "im2col", "index_copy", "index_copy_", "max_unpool2d", "max_unpool3d",
          # nested tensors (nn.TransformerEncoder's fast path with a padding mask packs each sequence)
          "_nested_tensor_from_mask", "_nested_tensor_from_mask_left_aligned", "to_padded_tensor"}
# sparse A @ dense H with a reduction other than the sum (torch.sparse.mm(A, H, reduce="mean"|"amax"|...):
# PyG's mean/max aggregation on a sparse adjacency); (A, H, reduce) -> (out, argmax positions)
SPARSE_REDUCES = {"_sparse_mm_reduce_impl"}
CREATES = {"zeros", "ones", "empty", "full", "new_zeros", "new_ones", "new_empty", "new_full", "zeros_like",
            "ones_like", "empty_like", "full_like", "arange", "rand", "randn", "randint", "scalar_tensor",
            "empty_strided", "rand_like", "randn_like", "linspace", "eye"}
FREE = {"detach", "t", "view", "_unsafe_view", "expand", "unsqueeze", "squeeze", "permute", "select", "slice",
         "alias", "as_strided", "transpose", "split", "split_with_sizes", "unbind", "lift_fresh", "_reshape_alias",
         "unfold", "reshape", "narrow", "sym_size", "sym_stride", "sym_numel", "_local_scalar_dense", "item",
         "is_nonzero", "size", "stride", "numel", "dim", "set_", "resize_", "chunk", "diagonal", "movedim",
         "expand_as", "view_as", "flatten", "_indices", "_values", "indices", "values", "crow_indices",
         "col_indices", "_nnz", "equal", "is_same_size", "record_stream", "sparse_compressed_tensor",
         "_sparse_compressed_tensor_unsafe", "sparse_csr_tensor", "_sparse_csr_tensor_unsafe", "sparse_coo_tensor",
         "_sparse_coo_tensor_unsafe", "_sparse_coo_tensor_with_dims_and_tensors", "ccol_indices", "row_indices",
         "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk", "transpose_", "t_", "squeeze_", "unsqueeze_",
         "as_strided_", "is_coalesced", "_coalesced_"}
DROPOUT_FLOPS = {"native_dropout": 2.0}
# fused scaled-dot-product attention (query, key, value, ...): F.scaled_dot_product_attention's kernels,
# nn.MultiheadAttention's and nn.TransformerEncoderLayer's path with gradients on
ATTENTIONS = {"_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
              "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
              "_scaled_dot_product_fused_attention_overrideable"}
# FLOPs per output value of ops without torch's pointwise tag: interpolation (nearest copies; linear blends 2
# values per dimension: 2^k products and 2^k - 1 sums in k dimensions; bicubic 16 products and 15 sums) and
# hardswish (x * min(max(x + 3, 0), 6) / 6); prelu (x or a x) 1; glu (a * sigmoid(b)) 2
VALUE_FLOPS = {"upsample_nearest1d": 0.0, "upsample_nearest2d": 0.0, "upsample_nearest3d": 0.0,
               "_upsample_nearest_exact1d": 0.0, "_upsample_nearest_exact2d": 0.0, "_upsample_nearest_exact3d": 0.0,
               "upsample_linear1d": 3.0, "upsample_bilinear2d": 7.0, "_upsample_bilinear2d_aa": 7.0,
               "upsample_trilinear3d": 15.0, "upsample_bicubic2d": 31.0, "hardswish": 5.0, "hardswish_": 5.0,
               "_safe_softmax": 1.0, "_prelu_kernel": 1.0, "glu": 2.0}
# embedding tables (weight [V, D], indices, ...): FLOPs per looked-up value (a bag sums its rows)
LOOKUPS = {"embedding": 0.0, "_embedding_bag": 1.0, "_embedding_bag_forward_only": 1.0}
# a recurrent layer's fused CPU kernel (nn.LSTM on the CPU: one layer and direction over the whole sequence)
RNN_LAYERS = {"mkldnn_rnn_layer"}
# batch norm per value, as costmodels.cnn.batchnorm2d counts it: training (batch statistics: sum, subtract,
# square, sum; normalise: subtract, scale by rsqrt, affine scale and shift) 7 FLOPs and 2 reads, inference
# (running statistics folded into one scale and shift) 2 FLOPs and 1 read; backward 9 FLOPs
BATCH_NORMS = {"native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                "cudnn_batch_norm", "miopen_batch_norm"}


class NoParamGemm(Gemm):
    """A product of two activations (no stored weight): no parameters, no optimizer state."""

    def param_count(self) -> Any:
        return 0.0


@dataclass(frozen=True)
class Parameters(Elementwise):
    """The parameters no GEMM/conv weight carries (biases, attention vectors, ...): costs nothing itself."""

    def forward(self, ctx: ExecContext) -> OpCost:
        return OpCost(self.name, self.op_class, "forward", 0.0, 0.0, 0.0, 0)

    def backward(self, ctx: ExecContext) -> OpCost:
        return OpCost(self.name, self.op_class, "backward", 0.0, 0.0, 0.0, 0)


@dataclass(frozen=True)
class Fused(Elementwise):
    """A per-edge message op (the gather of rows, ``alpha * x_j``, attention scores, the scatter's zeros)
    that an aggregation consumes. Where the model's arithmetic runs in one fused aggregation (an
    accelerator's engine; the device-free ideal) its arithmetic is done (FLOPs counted, forward and
    backward) and so are its random draws (a dropout on attention scores still draws one value per
    score: its serial steps stay), and its result never goes through DRAM. On a device that runs PyTorch
    eager (``ExecContext.eager_messages``) it is the kernel it was: it reads and writes its tensors."""

    def forward(self, ctx: ExecContext) -> OpCost:
        cost = super().forward(ctx)
        if ctx.eager_messages:
            return cost
        return OpCost(self.name, cost.op_class, cost.phase, cost.flops, 0.0, 0.0 * cost.flops, 0,
                      cost.serial_steps)

    def backward(self, ctx: ExecContext) -> OpCost:
        cost = super().backward(ctx)
        if ctx.eager_messages:
            return cost
        return OpCost(self.name, cost.op_class, cost.phase, cost.flops, 0.0, 0.0 * cost.flops, 0)


def value_count(t: torch.Tensor) -> float:
    """Tensor size in float32 values (int64 indices count 2, bool 1/4); stride-0 dims counted once."""
    if t.is_nested:  # its rows' values (it has no shape or strides)
        return float(t.numel()) * t.element_size() / 4.0
    if t.layout != torch.strided:
        return float(t._nnz()) if t.layout == torch.sparse_coo else float(t.values().numel())
    n = 1
    for size, stride in zip(t.shape, t.stride()):
        n *= size if stride != 0 else 1
    return float(n) * t.element_size() / 4.0


def density(t: torch.Tensor) -> float:
    """Non-zero fraction of a tensor's values (at least a tiny positive number: 0 means "not features")."""
    with torch.no_grad():
        return max(float((t.detach() != 0).sum()) / max(t.numel(), 1), 1e-9)


def weight_sparsity(rows: torch.Tensor) -> tuple[float, str]:
    """(density, pattern) of a weight ``[out, in]`` as it is: the fraction of non-zero values (zeros a
    user pruned, e.g. ``torch.nn.utils.prune``, count where the device exploits them) and ``2:4`` when
    every group of 4 consecutive inputs holds at most 2 non-zeros (``graphs.masks.mask_pattern``)."""
    from codesign.graphs.masks import mask_pattern

    with torch.no_grad():
        nonzero = rows.detach() != 0
        d = float(nonzero.sum()) / max(nonzero.numel(), 1)
        if d >= 1.0:
            return 1.0, "unstructured"
        return d, mask_pattern({"w": nonzero.reshape(nonzero.shape[0], -1) if nonzero.dim() > 1 else nonzero})


def lookup_op(name: str, weight: torch.Tensor, indices: torch.Tensor, out: torch.Tensor, grad: bool) -> Elementwise:
    """An embedding lookup of ``weight [V, D]`` at ``indices`` (``embedding``: out ``[..., D]``; ``embedding_bag``:
    the rows of each bag summed, ``LOOKUPS`` FLOPs per looked-up value): it reads the looked-up rows and
    their indices, not the whole table, and writes its output."""
    width = max(int(weight.size(-1)), 1)
    rows = max(float(indices.numel() * width), 1.0)
    index_values = indices.element_size() / 4.0  # int64: 2 float32-sized values per index
    return Elementwise(f"aten.{name}", rows, LOOKUPS[name], 1.0, reads=1.0 + index_values / width,
                       writes=float(out.numel()) / rows, needs_backward=grad)


def rnn_layer_ops(args: tuple, x_grad: bool, ih_param: bool, hh_param: bool, grad: bool) -> list[Any]:
    """``mkldnn_rnn_layer(x [T, B, I], w_ih [G H, I], w_hh [G H, H], b_ih, b_hh, h0, c0, ..., hidden_size H, ...,
    has_biases, ...)`` (G = 4 LSTM gates) as cost-model ops: the input product ``[T B, I] @ [I, G H]``, the
    recurrent product (T steps of ``[B, H] @ [H, G H]``, priced as one ``[T B, H]`` product: the same MACs),
    the gate nonlinearities with their two bias adds (3 FLOPs per gate value; 1 without biases) and the cell
    update ``c = f c + i g``, ``h = o tanh(c)`` (5 FLOPs per hidden value)."""
    x, w_ih, w_hh, hidden, biases = args[0], args[1], args[2], int(args[10]), bool(args[12])
    rows = float(x.numel() // max(x.size(-1), 1))  # T * B
    gates = float(w_ih.size(0))
    ops: list[Any] = []
    for w, param, dx in ((w_ih, ih_param, x_grad), (w_hh, hh_param, grad)):
        d, pattern = weight_sparsity(w) if param else (1.0, "unstructured")
        ops.append((Gemm if param else NoParamGemm)("aten.mkldnn_rnn_layer", rows, float(w.size(1)), gates, d, dx,
                                                    param, weight_pattern=pattern))
    gate_flops, saved = (3.0 if biases else 1.0), (1.0 if grad else 0.0)
    ops.append(Elementwise("aten.mkldnn_rnn_layer.gates", rows * gates, gate_flops, gate_flops, reads=2.0,
                           writes=1.0, saved_values=saved, needs_backward=grad))
    ops.append(Elementwise("aten.mkldnn_rnn_layer.cell", rows * hidden, 5.0, 5.0, reads=2.0, writes=2.0,
                           saved_values=saved, needs_backward=grad))
    return ops
