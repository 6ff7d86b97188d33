"""ATen operators that stand for several cost-model ops, or whose price needs their arguments, for the tracer
(:mod:`codesign.dispatch.workload`): ``compound_ops(name, args, out, info, grad)`` returns their ops.

* ``_trilinear`` (``nn.Bilinear``: ``y[b, o] = x1[b] W[o] x2[b]``): one product over every combination of the
  broadcast dimensions, ``B·O·I·J`` multiply-adds, priced as the GEMM ``[B, I·J] @ [I·J, O]`` (the weight's).
* ``_euclidean_dist`` (``torch.cdist``'s matrix path: ``|x|^2 + |y|^2 - 2 x y^T`` with two appended columns): the
  rows' squared norms (2 FLOPs per value) and the product ``[P, M + 2] @ [M + 2, R]``; ``_cdist_forward`` /
  ``_pdist_forward`` (the direct path): 3 FLOPs per pair and coordinate (difference, power, sum), one root or
  power per pair.
* ``grid_sampler_2d`` / ``grid_sampler_3d`` (``F.grid_sample``): per output value the interpolation's corners
  read and blended (nearest 0 FLOPs / 1 read, bilinear 7 / 4, bicubic 31 / 16, trilinear 15 / 8: the
  ``aten_ops.VALUE_FLOPS`` blends) plus the grid read once.
* ``_fft_r2c`` / ``_fft_c2r`` / ``_fft_c2c`` (``torch.fft``): ``5 N log2 N`` real FLOPs per complex transform of
  ``N`` points (the radix-2 count FFT benchmarks use), half that with a real input or output; ``N`` is the
  product of the transformed sizes. The backward is a transform of the same size.
* ``_native_multi_head_attention`` / ``_transformer_encoder_layer_fwd``: PyTorch's fused fast path of
  ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` (eval mode, gradients off, as a model does
  under ``torch.no_grad()``), priced as the ops its math path dispatches: the q/k/v and output projections
  (the weights'), the scores and values products with their softmax, and for the encoder layer the two
  residual adds, two layer norms and the feed-forward block.
* In-place random fills (``normal_``, ``uniform_``, ``exponential_``: Gumbel noise, ...) and ``multinomial``: a
  random draw per value written or sample drawn (``ops.RNG_STEPS_PER_DRAW`` serial steps, as dropout's).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from costmodels import Elementwise, Gemm
from costmodels.ops import RNG_STEPS_PER_DRAW

from .aten_ops import NoParamGemm, value_count, weight_sparsity

TRILINEAR = {"_trilinear"}
DISTANCES = {"_euclidean_dist", "_cdist_forward", "_pdist_forward"}
GRID_SAMPLERS = {"grid_sampler_2d", "grid_sampler_3d"}
FFTS = {"_fft_r2c", "_fft_c2r", "_fft_c2c"}
FAST_ATTENTION = {"_native_multi_head_attention", "_transformer_encoder_layer_fwd"}
# in-place random fills (gumbel noise's exponential_, init's normal_/uniform_) and sampling from probabilities
RANDOM_FILLS = {"normal_", "uniform_", "exponential_", "random_", "cauchy_", "log_normal_", "geometric_"}
SAMPLERS = {"multinomial"}
COMPOUNDS = TRILINEAR | DISTANCES | GRID_SAMPLERS | FFTS | FAST_ATTENTION | RANDOM_FILLS | SAMPLERS

# grid_sample's interpolation_mode argument -> (FLOPs, corner reads) per output value, by sampled rank
_GRID_BLEND = {2: {0: (7.0, 4.0), 1: (0.0, 1.0), 2: (31.0, 16.0)}, 3: {0: (15.0, 8.0), 1: (0.0, 1.0)}}

Info = Callable[[Any], Any]  # tensor -> the tracer's _Info of it (``grad``, ``param``)


def compound_ops(name: str, args: tuple, out: list[torch.Tensor], info: Info, grad: bool) -> list[Any]:
    """The cost-model ops of one call of ``name`` (a member of :data:`COMPOUNDS`)."""
    if name in TRILINEAR:
        return [_trilinear(args, info)]
    if name in DISTANCES:
        return _distances(name, args, out[0], info, grad)
    if name in GRID_SAMPLERS:
        return [_grid_sample(name, args, out[0], grad)]
    if name in FFTS:
        return [_fft(name, args, out[0], grad)]
    if name in RANDOM_FILLS:  # a draw per value written (serial work, as ops.py prices dropout's draws)
        return [Elementwise(f"aten.{name}", float(out[0].numel()), 1.0, 0.0, reads=0.0, writes=1.0,
                            needs_backward=False, serial_per_elem=RNG_STEPS_PER_DRAW)]
    if name in SAMPLERS:  # multinomial(probs [.., K], n): a running sum and a search over each row, a draw per sample
        probs = float(max(args[0].numel(), 1))
        per_value = float(out[0].numel()) / probs  # samples drawn per probability read
        return [Elementwise(f"aten.{name}", probs, 2.0, 0.0, reads=1.0, writes=per_value, needs_backward=False,
                            serial_per_elem=per_value * RNG_STEPS_PER_DRAW)]
    return _fast_attention(name, args, info)


def _trilinear(args: tuple, info: Info) -> Any:
    """``_trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim)``: every input unsqueezed at its
    expand dims, broadcast together, multiplied and summed over ``sumdim``."""
    inputs, expands, sumdim = args[:3], args[3:6], list(args[6])
    shapes = []
    for t, dims in zip(inputs, expands):
        shape = list(t.shape)
        for d in sorted(dims):
            shape.insert(d, 1)
        shapes.append(shape)
    full = [max(s[d] for s in shapes) for d in range(len(shapes[0]))]
    total = float(math.prod(full))  # multiply-adds: one per combination of every dimension
    summed = float(math.prod(full[d] for d in sumdim))
    rows = total / max(summed, 1.0)  # output values
    weight = next((t for t in inputs if info(t).param), None)
    x_grad = any(info(t).grad and not info(t).param for t in inputs)
    if weight is None:
        return NoParamGemm("aten._trilinear", rows, summed, 1.0, 1.0, x_grad, False)
    n = float(weight.size(0))  # nn.Bilinear's weight [O, I, J]: O outputs per row
    d, pattern = weight_sparsity(weight.reshape(weight.size(0), -1))
    return Gemm("aten._trilinear", rows / n, summed, n, d, x_grad, info(weight).grad, weight_pattern=pattern)


def _distances(name: str, args: tuple, y: torch.Tensor, info: Info, grad: bool) -> list[Any]:
    x1 = args[0]
    m = float(x1.size(-1))
    if name == "_euclidean_dist":  # [.., P, M] and [.., R, M] -> [.., P, R] by one product with 2 extra columns
        x2 = args[1]
        rows = float(x1.numel() // max(x1.size(-1), 1))
        norms = [Elementwise("aten._euclidean_dist.norms", float(t.numel()), 2.0, 2.0, writes=1.0 / m,
                             needs_backward=info(t).grad) for t in (x1, x2)]  # square and sum each row
        return norms + [NoParamGemm("aten._euclidean_dist", rows, m + 2.0, float(x2.size(-2)), 1.0,
                                    info(x1).grad, info(x2).grad),
                Elementwise("aten._euclidean_dist.sqrt", float(y.numel()), 2.0, 2.0, reads=0.0, writes=1.0,
                            needs_backward=grad)]
    pairs = float(y.numel())
    reads = sum(value_count(a) for a in args if isinstance(a, torch.Tensor)) / max(pairs * m, 1.0)
    return [Elementwise(f"aten.{name}", pairs * m, 3.0, 3.0, reads=reads, writes=0.0, needs_backward=grad),
            Elementwise(f"aten.{name}.root", pairs, 1.0, 1.0, reads=0.0, writes=1.0, needs_backward=grad)]


def _grid_sample(name: str, args: tuple, y: torch.Tensor, grad: bool) -> Any:
    """``grid_sampler_*(input, grid, interpolation_mode, padding_mode, align_corners, ...)``."""
    grid = args[1]
    rank = 3 if name.endswith("3d") else 2
    flops, corners = _GRID_BLEND[rank].get(int(args[2]), _GRID_BLEND[rank][0])
    numel = max(float(y.numel()), 1.0)
    reads = corners + value_count(grid) / numel  # the corners of every value, the grid once
    unnormalise = 2.0 * grid.numel() / numel  # a multiply-add per grid coordinate
    return Elementwise(f"aten.{name}", numel, flops + unnormalise, flops + unnormalise, reads=reads, writes=1.0,
                       needs_backward=grad)


def _fft(name: str, args: tuple, y: torch.Tensor, grad: bool) -> Any:
    """``_fft_r2c(x, dim, norm, onesided)``, ``_fft_c2r(x, dim, norm, last_dim_size)``, ``_fft_c2c(x, dim, norm,
    forward)``: ``N`` = the product of the transformed sizes of the real (r2c: input; c2r: output) or complex
    signal; ``numel / N`` transforms."""
    x = args[0]
    signal = y if name == "_fft_c2r" else x
    dims = [int(d) % max(signal.dim(), 1) for d in args[1]]
    n = float(math.prod(int(signal.size(d)) for d in dims)) if dims else 1.0
    per_point = (5.0 if name == "_fft_c2c" else 2.5) * math.log2(max(n, 2.0))
    numel = max(float(signal.numel()), 1.0)
    return Elementwise(f"aten.{name}", numel, per_point, per_point, reads=value_count(x) / numel,
                       writes=value_count(y) / numel, needs_backward=grad)


def _projection(name: str, rows: float, weight: torch.Tensor, param: bool) -> list[Any]:
    """``x [rows, in] @ W^T`` and its bias add (``weight [out, in]``; ``param``: a stored parameter)."""
    out, k = float(weight.size(0)), float(weight.size(1))
    if param:
        d, pattern = weight_sparsity(weight)
        product: Any = Gemm(name, rows, k, out, d, False, False, weight_pattern=pattern)
    else:
        product = NoParamGemm(name, rows, k, out, 1.0, False, False)
    return [product, Elementwise(f"{name}.bias", rows * out, 1.0, 1.0, reads=1.0, writes=0.0, needs_backward=False)]


def attention_math(name: str, rows: float, d: float, keys: float, dv: float, q_grad: bool = False,
                   k_grad: bool = False, v_grad: bool = False, grad: bool = False) -> list[Any]:
    """``softmax(q k^T / sqrt(d)) v`` as its math path, for ``rows`` query rows (over batch and heads) against
    ``keys`` keys: the scores product, a softmax over the scores (scale and softmax: 2 FLOPs each) and the values
    product (MACs as FlopCounterMode counts them; bytes as if the scores went through memory, which a flash
    kernel avoids: an upper bound on its traffic). ``grad``: the result needs a gradient."""
    return [NoParamGemm(f"{name}.scores", rows, d, keys, 1.0, q_grad, k_grad),
            Elementwise(f"{name}.softmax", rows * keys, 2.0, 2.0, saved_values=1.0 if grad else 0.0,
                        needs_backward=grad),
            NoParamGemm(f"{name}.values", rows, keys, dv, 1.0, grad, v_grad)]


def _sequences(q: torch.Tensor, k: torch.Tensor) -> Counter[tuple[int, int]]:
    """(query length, key length) -> how many sequences: a nested tensor's own lengths (the encoder's fast path
    with a padding mask packs each sequence without its padding), else the batch of ``[B, T, E]`` / ``[T, E]``."""
    if q.is_nested:
        return Counter(zip((int(c.size(0)) for c in q.unbind()), (int(c.size(0)) for c in k.unbind())))
    batch = q.numel() // max(q.size(-2) * q.size(-1), 1) if q.dim() > 2 else 1
    return Counter({(int(q.size(-2)), int(k.size(-2))): int(batch)})


def _attention_block(prefix: str, q: torch.Tensor, k: torch.Tensor, heads: int, qkv_weight: torch.Tensor,
                     proj_weight: torch.Tensor, info: Info) -> list[Any]:
    """Projections, ``softmax(q k^T / sqrt(d)) v`` per head and the output projection (no autograd)."""
    e = int(qkv_weight.size(1))
    tq, tk = float(q.numel() // max(e, 1)), float(k.numel() // max(e, 1))  # rows over the batch
    d = float(e // max(heads, 1))
    ops: list[Any] = []
    for part, rows in zip("qkv", (tq, tk, tk)):
        w = qkv_weight[{"q": slice(0, e), "k": slice(e, 2 * e), "v": slice(2 * e, 3 * e)}[part]]
        ops += _projection(f"aten.{prefix}.{part}_proj", rows, w, info(qkv_weight).param)
    for (lq, lk), count in sorted(_sequences(q, k).items()):  # one group per pair of lengths
        ops += attention_math(f"aten.{prefix}", float(count * heads * lq), d, float(lk), d)
    return ops + _projection(f"aten.{prefix}.out_proj", tq, proj_weight, info(proj_weight).param)


def _fast_attention(name: str, args: tuple, info: Info) -> list[Any]:
    if name == "_native_multi_head_attention":  # (query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
        q, k, heads = args[0], args[1], int(args[4])  # proj_weight, proj_bias, ...)
        return _attention_block("_native_multi_head_attention", q, k, heads, args[5], args[7], info)
    # (src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps,
    #  norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ...)
    src, heads, prefix = args[0], int(args[2]), "_transformer_encoder_layer_fwd"
    values = float(src.numel())
    rows = values / max(float(src.size(-1)), 1.0)
    ffn_1, ffn_2 = args[14], args[16]

    def pointwise(part: str, n: float, flops: float = 1.0, reads: float = 2.0) -> Elementwise:
        return Elementwise(f"aten.{prefix}.{part}", n, flops, flops, reads=reads, writes=1.0, needs_backward=False)

    hidden = rows * float(ffn_1.size(0))
    return (_attention_block(prefix, src, src, heads, args[3], args[5], info)
            + [pointwise("residual_1", values), pointwise("norm_1", values, reads=1.0)]
            + _projection(f"aten.{prefix}.ffn_1", rows, ffn_1, info(ffn_1).param)
            + [pointwise("activation", hidden, reads=1.0)]
            + _projection(f"aten.{prefix}.ffn_2", rows, ffn_2, info(ffn_2).param)
            + [pointwise("residual_2", values), pointwise("norm_2", values, reads=1.0)])
