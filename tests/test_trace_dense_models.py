"""The tracer on plain-torch models (no graph): attention, interpolation and activations without torch's
pointwise tag are priced, not unknown, and their MACs agree with ``torch.utils.flop_counter``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from codesign.dispatch.workload import trace_workload
from costmodels import breakdown, price_workload


def _traced_macs(net: nn.Module, x: torch.Tensor) -> tuple[float, dict]:
    traced = trace_workload(lambda: net(x), [p for p in net.parameters()], "model")
    return float(price_workload(traced.workload, training=False).macs), traced.unknown


def _reference_macs(net: nn.Module, x: torch.Tensor) -> float:
    """FlopCounterMode's count (2 per MAC) on attention's math path (it does not count the fused CPU kernel)."""
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        net(x)
    return counter.get_total_flops() / 2


class Attention(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.qkv = nn.Linear(32, 96)
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)

    def forward(self, x):
        if self.kind == "sdpa":
            q, k, v = self.qkv(x).view(x.size(0), x.size(1), 3, 4, 8).permute(2, 0, 3, 1, 4)
            return F.scaled_dot_product_attention(q, k, v)
        if self.kind == "mha":
            return self.mha(x, x, x, need_weights=False)[0]
        return self.layer(x)


@pytest.mark.parametrize("kind", ["sdpa", "mha", "encoder"])
def test_fused_attention_is_two_products_and_a_softmax(kind):
    """F.scaled_dot_product_attention runs one fused kernel on the CPU
    (``aten._scaled_dot_product_flash_attention_for_cpu``); it was unknown, so attention's Q K^T and A V
    (2 B H T^2 d MACs) were missing from every transformer's price."""
    torch.manual_seed(0)
    net, x = Attention(kind).eval(), torch.randn(2, 16, 32)
    macs, unknown = _traced_macs(net, x)
    assert unknown == {}
    assert macs == _reference_macs(net, x)
    traced = trace_workload(lambda: net(x), list(net.parameters()), "model")
    names = [r["op"] for r in breakdown(traced.workload, training=False)]
    assert any(n.endswith(".scores") for n in names) and any(n.endswith(".values") for n in names)


def test_interpolation_and_hardswish_are_priced_per_value():
    """``upsample_*`` and ``hardswish`` carry no pointwise tag: they were unknown (traffic only). Nearest
    copies (0 FLOPs), bilinear blends four values (7 FLOPs per output), hardswish 5 per value."""
    x = torch.randn(1, 4, 8, 8)
    flops = {}
    for name, fn in (("nearest", lambda t: F.interpolate(t, scale_factor=2, mode="nearest")),
                     ("bilinear", lambda t: F.interpolate(t, scale_factor=2, mode="bilinear")),
                     ("hardswish", F.hardswish)):
        traced = trace_workload(lambda f=fn: f(x), [], name)
        assert traced.unknown == {}
        flops[name] = float(price_workload(traced.workload, training=False).flops)
    assert flops == {"nearest": 0.0, "bilinear": 7.0 * 4 * 16 * 16, "hardswish": 5.0 * x.numel()}


def test_an_embedding_lookup_reads_the_looked_up_rows_not_the_whole_table():
    """``aten.embedding`` was priced as a copy of all its inputs: a lookup of 32 rows of a 50,000 x 64 table
    read the whole 12.8 MB table (and ``embedding_bag`` was unknown, priced the same). A lookup reads the
    rows it looks up and their int64 indices, and writes its output; a bag sums its rows (1 FLOP each)."""
    idx = torch.randint(0, 50_000, (4, 8))
    rows = 4 * 8 * 64
    for net, flops, written in ((nn.Embedding(50_000, 64), 0.0, rows), (nn.EmbeddingBag(50_000, 64), rows, 4 * 64)):
        traced = trace_workload(lambda n=net: n(idx), list(net.parameters()), "lookup")
        assert traced.unknown == {}
        op = next(r for r in breakdown(traced.workload, training=False) if "embedding" in r["op"])
        assert op["flops"] == flops
        assert op["dram_bytes"] == 4 * rows + 8 * idx.numel() + 4 * written


def test_products_with_a_vector_are_priced_as_products_not_unknown():
    """``h @ self.att`` with a 1-D parameter (a hand-written attention vector) dispatches ``aten.mv``; ``mv``,
    ``dot``, ``addmv``, ``addr`` and ``addbmm`` were unknown, so their multiply-adds were priced as traffic
    (0 MACs). Each is now a product with its hand-counted MACs, the 1-D weight a weight (it gets dW)."""

    class Att(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.att, self.w = nn.Parameter(torch.randn(16)), nn.Parameter(torch.randn(8, 16))

        def forward(self, h):
            return (h @ self.att).sum() + (self.w @ h[0]).sum()

    h, net = torch.randn(50, 16), Att()
    traced = trace_workload(lambda: net(h), list(net.parameters()), "att")
    assert traced.unknown == {}
    assert float(price_workload(traced.workload, training=False).macs) == 50 * 16 + 8 * 16
    rows = breakdown(traced.workload, training=True)
    assert sum(r["flops"] for r in rows if r["class"] == "gemm" and r["pass"] == "backward") == 2 * (50 * 16 + 8 * 16)
    for fn, macs in ((lambda: torch.dot(h[0], h[1]), 16), (lambda: torch.addmv(torch.randn(50), h, h[0]), 50 * 16),
                     (lambda: torch.addr(torch.randn(50, 16), h[:, 0], h[0]), 50 * 16),
                     (lambda: torch.addbmm(torch.randn(5, 6), torch.randn(3, 5, 4), torch.randn(3, 4, 6)), 360)):
        traced = trace_workload(fn, [], "product")
        assert traced.unknown == {}
        assert float(price_workload(traced.workload, training=False).macs) == macs


def test_an_lstm_is_priced_as_its_products_gates_and_cell_not_unknown():
    """``nn.LSTM`` on the CPU runs one fused ``aten.mkldnn_rnn_layer`` per layer and direction; it was unknown,
    so an LSTM's multiply-adds were missing (0 MACs: FlopCounterMode does not count it either). Hand count per
    time step and sample: ``4 H (I + H)`` per layer and direction; backward: dW of both products, dX of the
    recurrent one and of the second layer's input."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)  # B = 2, T = 5, I = 16; H = 32
    for bidirectional, dirs in ((False, 1), (True, 2)):
        net = nn.LSTM(16, 32, num_layers=2, batch_first=True, bidirectional=bidirectional)
        traced = trace_workload(lambda n=net: n(x), list(net.parameters()), "lstm")
        assert traced.unknown == {}
        macs = 10 * 4 * 32 * (16 + 32) * dirs + 10 * 4 * 32 * (32 * dirs + 32) * dirs
        assert float(price_workload(traced.workload, training=False).macs) == macs
        rows = breakdown(traced.workload, training=True)
        dx_first_input = 2 * 10 * 4 * 32 * 16 * dirs  # layer 1's input needs no dX
        backward = sum(r["flops"] for r in rows if r["class"] == "gemm" and r["pass"] == "backward")
        assert backward == 2 * 2 * macs - dx_first_input


def test_pooling_padding_shuffles_losses_and_gru_views_are_priced_not_unknown():
    """3-D and adaptive max pooling, reflection/replication padding, pixel shuffle, the MSE/BCE losses, PReLU
    and GLU were unknown (their values priced as traffic, 0 FLOPs), and nn.GRU's ``unsafe_split`` and
    ``transpose_`` (views) were listed as unknown kernels. Reductions cost 1 FLOP per input value, moves 0,
    prelu 1 and glu 2 per output value; views nothing."""
    x5, x4 = torch.randn(1, 4, 8, 8, 8), torch.randn(2, 8, 6, 6)
    cases = [(lambda: F.max_pool3d(x5, 2), x5.numel()), (lambda: F.adaptive_max_pool2d(x4, 2), x4.numel()),
             (lambda: F.avg_pool3d(x5, 2), x5.numel()), (lambda: F.pad(x4, (1, 1, 1, 1), mode="reflect"), 0),
             (lambda: F.pad(x4, (1, 1, 1, 1), mode="replicate"), 0), (lambda: F.pixel_shuffle(x4, 2), 0),
             (lambda: F.mse_loss(x4, x4.flip(0), reduction="sum"), x4.numel()),
             (lambda: F.binary_cross_entropy_with_logits(x4, x4.sigmoid()), x4.numel() + x4.numel()),
             (lambda: F.prelu(x4, torch.full((8,), 0.1)), x4.numel()), (lambda: F.glu(x4, 1), x4.numel())]
    for fn, flops in cases:
        traced = trace_workload(fn, [], "op")
        assert traced.unknown == {}
        assert float(price_workload(traced.workload, training=False).flops) == flops
    gru = nn.GRU(8, 16, batch_first=True)
    traced = trace_workload(lambda: gru(torch.randn(2, 5, 8)), list(gru.parameters()), "gru")
    assert traced.unknown == {}


@pytest.mark.parametrize("kind", ["mha", "encoder"])
def test_the_fused_fast_path_under_no_grad_is_priced_as_its_math_path(kind):
    """In eval mode under ``torch.no_grad()``, ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` run
    one fused op (``_native_multi_head_attention``, ``_transformer_encoder_layer_fwd``). They were unknown (traffic
    only, no MACs); now their projections, attention products and feed-forward block are the math path's."""
    torch.manual_seed(0)
    net, x = Attention(kind).eval(), torch.randn(2, 16, 32)

    def no_grad_forward():
        with torch.no_grad():
            return net(x)

    fast = trace_workload(no_grad_forward, list(net.parameters()), "fast")
    assert set(fast.op_counts) & {"_native_multi_head_attention", "_transformer_encoder_layer_fwd"}  # the fast path ran
    assert fast.unknown == {}
    math_path = trace_workload(lambda: net(x), list(net.parameters()), "math")
    got, want = (price_workload(t.workload, training=False) for t in (fast, math_path))
    assert got.macs == want.macs == _reference_macs(net, x)
    assert got.flops == pytest.approx(float(want.flops), rel=0.02)


def test_bilinear_distances_grid_sampling_and_ffts_are_priced_by_hand_counts():
    """``_trilinear`` (nn.Bilinear), ``cdist``/``pdist``, ``grid_sample`` and ``torch.fft`` were unknown (traffic
    only). Bilinear: B·O·I·J MACs on its weight; cdist's product path: the rows' squared norms and
    [P, M + 2] @ [M + 2, R]; the direct path
    3 FLOPs per pair and coordinate and a root per pair; grid_sample bilinear 7 FLOPs per output value and a
    multiply-add per grid coordinate; FFTs 5 N log2 N per complex transform, half that from or to a real signal."""
    torch.manual_seed(0)
    x1, x2 = torch.randn(32, 16), torch.randn(32, 12)
    bilinear = nn.Bilinear(16, 12, 8, bias=False)
    img, grid = torch.randn(2, 3, 8, 8), torch.rand(2, 4, 4, 2) * 2 - 1
    signal = torch.randn(32, 16)
    spectrum = torch.fft.rfft(signal)
    complex_signal = torch.randn(4, 8, dtype=torch.complex64)
    cases = {
        "bilinear": (lambda: bilinear(x1, x2), list(bilinear.parameters()), "macs", 32 * 8 * 16 * 12),
        "cdist product": (lambda: torch.cdist(x1, x1[:20], compute_mode="use_mm_for_euclid_dist"), [], "flops",
                          2 * 32 * 18 * 20 + 2 * (32 + 20) * 16 + 2 * 32 * 20),  # product, norms, root
        "cdist direct": (lambda: torch.cdist(x1[:5, :4], x1[:3, :4], p=1), [], "flops", 5 * 3 * (4 * 3 + 1)),
        "pdist": (lambda: F.pdist(x1[:6, :4]), [], "flops", 15 * (4 * 3 + 1)),
        "grid_sample": (lambda: F.grid_sample(img, grid, align_corners=False), [], "flops",
                        2 * 3 * 16 * 7 + 2 * grid.numel()),
        "rfft": (lambda: torch.fft.rfft(signal), [], "flops", 32 * 2.5 * 16 * 4),
        "irfft": (lambda: torch.fft.irfft(spectrum, n=16), [], "flops", 32 * 2.5 * 16 * 4),
        "fft": (lambda: torch.fft.fft(complex_signal), [], "flops", 4 * 5 * 8 * 3),
    }
    for name, (fn, params, metric, want) in cases.items():
        traced = trace_workload(fn, params, name)
        assert traced.unknown == {}, name
        assert float(getattr(price_workload(traced.workload, training=False), metric)) == want, name
    trained = trace_workload(lambda: bilinear(x1, x2), list(bilinear.parameters()), "bilinear")
    ops = [r for r in breakdown(trained.workload, training=True) if r["op"] == "aten._trilinear"]
    assert sum(r["flops"] for r in ops) == 2 * 2 * 32 * 8 * 16 * 12  # forward and dW (the inputs need no grad)


def test_the_encoder_fast_path_with_a_padding_mask_prices_each_sequence_without_its_padding():
    """``nn.TransformerEncoder`` in eval under ``torch.no_grad()`` with a padding mask packs the sequences into a
    nested tensor: the tracer crashed on its shape (``NestedTensorImpl doesn't support sizes``). Now each
    sequence is priced at its own length: per token the four projections and the feed-forward block, per
    sequence ``2 H L^2 d`` attention MACs."""
    torch.manual_seed(0)
    e, ff, heads, layers = 16, 32, 4, 2
    net = nn.TransformerEncoder(nn.TransformerEncoderLayer(e, heads, ff, batch_first=True), layers).eval()
    x, pad = torch.randn(2, 10, e), torch.zeros(2, 10, dtype=torch.bool)
    pad[0, 7:] = True  # the first sequence has 7 tokens, the second 10

    def forward():
        with torch.no_grad():
            return net(x, src_key_padding_mask=pad)

    traced = trace_workload(forward, list(net.parameters()), "encoder")
    assert "_transformer_encoder_layer_fwd" in traced.op_counts and traced.unknown == {}
    tokens, per_token = 7 + 10, 4 * e * e + 2 * e * ff
    attention = 2 * heads * (7 * 7 + 10 * 10) * (e // heads)
    assert float(price_workload(traced.workload, training=False).macs) == layers * (tokens * per_token + attention)


def test_random_fills_sampling_and_unpooling_are_priced_not_unknown():
    """Gumbel noise (``exponential_``), ``multinomial`` and ``max_unpool2d`` were unknown (traffic only). A random
    fill draws one value per element (``RNG_STEPS_PER_DRAW`` serial steps, as dropout's draws), sampling a draw
    per sample, and unpooling is a copy."""
    from costmodels.ops import RNG_STEPS_PER_DRAW

    torch.manual_seed(0)
    logits, probs = torch.randn(4, 10), torch.rand(4, 10)
    pooled, where = F.max_pool2d(torch.randn(1, 2, 4, 4), 2, return_indices=True)
    for name, fn in (("exponential_", lambda: F.gumbel_softmax(logits, tau=1.0)),
                     ("multinomial", lambda: torch.multinomial(probs, 3)),
                     ("max_unpool2d", lambda: F.max_unpool2d(pooled, where, 2))):
        traced = trace_workload(fn, [], name)
        assert traced.unknown == {}, name
        op = next(o for o in traced.workload.ops if o.name == f"aten.{name}")
        draws = {"exponential_": logits.numel(), "multinomial": 4 * 3, "max_unpool2d": 0}[name]
        assert op.numel * op.serial_per_elem == draws * RNG_STEPS_PER_DRAW, name
