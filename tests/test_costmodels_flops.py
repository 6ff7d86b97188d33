"""The analytical FLOP counts against torch's FlopCounterMode, hand counts and the papers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from costmodels import ExecContext, GNNSpec, graph_stats, price_gnn_run, price_workload
from costmodels.cnn import conv2d, forward_flops_eb, vgg_workload
from costmodels.ops import Aggregate, Gemm
from costmodels.workloads import Workload

CTX = ExecContext()


def torch_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 40), input_grad=st.booleans())
def test_gemm_forward_backward_equals_flop_counter(m, k, n, input_grad):
    x = torch.randn(m, k, requires_grad=input_grad)
    w = torch.randn(k, n, requires_grad=True)
    expected = torch_flops(lambda: (x @ w).sum().backward())
    op = Gemm("g", m, k, n, input_grad=input_grad)
    assert op.forward(CTX).flops + op.backward(CTX).flops == expected


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    batch=st.integers(1, 3), c_in=st.integers(1, 6), c_out=st.integers(1, 6), size=st.integers(5, 12),
    kernel=st.sampled_from([1, 3, 5]), stride=st.sampled_from([1, 2]), padding=st.integers(0, 2),
    input_grad=st.booleans(),
)
def test_conv2d_forward_backward_equals_flop_counter(batch, c_in, c_out, size, kernel, stride, padding, input_grad):
    x = torch.randn(batch, c_in, size, size, requires_grad=input_grad)
    w = torch.randn(c_out, c_in, kernel, kernel, requires_grad=True)
    fwd = torch_flops(lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=padding))
    total = torch_flops(lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=padding).sum().backward())
    op = conv2d("c", batch, c_in, c_out, size, size, kernel=kernel, stride=stride, padding=padding,
                input_grad=input_grad)
    assert op.forward(CTX).flops == fwd
    assert op.forward(CTX).flops + op.backward(CTX).flops == total


def test_aggregation_flops_match_hand_count():
    # 4 nodes, undirected path 0-1-2-3 => 6 directed edges, + 4 self-loops = 10 messages, F = 5.
    op = Aggregate("a", num_nodes=4, num_edges=6, self_loops=4, features=5, weighted=True)
    fwd = op.forward(CTX)
    assert fwd.flops == 2 * 10 * 5          # one multiply and one add per message element
    assert fwd.macs == 6 * 5                # paper convention: edges without self-loops
    unweighted = Aggregate("a", 4, 6, 0, 5, weighted=False, reduce="mean")
    assert unweighted.forward(CTX).flops == 6 * 5 + 4 * 5  # adds + one divide per output element
    trainable = Aggregate("a", 4, 6, 4, 5, trainable_graph=True, input_grad=True)
    assert trainable.backward(CTX).flops == 2 * 10 * 5 + 2 * 10 * 5  # dh scatter + per-edge dot products
    # bytes: gather 10 rows of 5 fp32 + 2 int64 indices and 1 value per message + the dense passes of
    # base + A h (base and product written, both read, the 4x5 sum written: 5 x 4x5 values)
    assert fwd.dram_bytes == 10 * 5 * 4 + 10 * 2 * 8 + 10 * 4 + 5 * 4 * 5 * 4


def test_gcn_gemm_flops_equal_flop_counter_on_pyg_model():
    from torch_geometric.nn import GCNConv

    torch.manual_seed(0)
    n, f, h, c = 30, 12, 8, 3
    edge_index = torch.randint(0, n, (2, 80))
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    edge_index = torch.unique(torch.cat([edge_index, edge_index.flip(0)], 1), dim=1)
    x = torch.randn(n, f)
    conv1, conv2 = GCNConv(f, h), GCNConv(h, c)
    counted = torch_flops(lambda: conv2(torch.relu(conv1(x, edge_index)), edge_index).sum().backward())
    from costmodels import GraphStats, gnn_workload

    wl = gnn_workload(GNNSpec("gcn", hidden=h), GraphStats("t", n, edge_index.size(1), f, c))
    gemm = [op for op in wl.ops if isinstance(op, Gemm)]
    ours = sum(op.forward(CTX).flops + op.backward(CTX).flops for op in gemm)
    assert ours == counted  # torch counts the GEMMs only (scatter = 0): ours agree exactly on them


def test_gcn_cora_paper_convention_within_1_percent_of_gebt_table2():
    run = price_gnn_run(GNNSpec("gcn"), graph_stats("cora"), [], aggregation_order="aggregate-first")
    assert abs(run.infer.macs - 77.95e6) / 77.95e6 < 0.01
    citeseer = price_gnn_run(GNNSpec("gcn"), graph_stats("citeseer"), [], aggregation_order="aggregate-first")
    assert abs(citeseer.infer.macs - 231.6e6) / 231.6e6 < 0.01


def test_vgg16_cifar100_forward_flops_match_eb_paper():
    assert abs(forward_flops_eb(vgg_workload(16, 100)) - 0.6274e9) / 0.6274e9 < 0.01


def test_training_is_sum_of_phases():
    spec, g = GNNSpec("gcn"), graph_stats("cora")
    from costmodels import PhaseSpec

    one = price_gnn_run(spec, g, [PhaseSpec("a", 1, 0.5, 0.5)])
    three = price_gnn_run(spec, g, [PhaseSpec("a", 2, 0.5, 0.5), PhaseSpec("b", 1, 0.5, 0.5)])
    assert three.train.flops == pytest.approx(3 * one.train.flops)
    assert three.train.memory_bytes == one.train.memory_bytes  # a peak, not a sum


def test_per_layer_graphs_price_one_edge_vector_and_mask_per_layer():
    from costmodels import PhaseSpec
    from costmodels.workloads import mask_update_ops

    spec, g = GNNSpec("gcn"), graph_stats("cora")
    search = [PhaseSpec("search", 1, trainable_graph=True, mask_update=True, graph_copies=c) for c in (1, 2)]
    one, two = (price_gnn_run(spec, g, [s]) for s in search)
    ctx, extra = ExecContext(), g.num_edges / 2  # one more vector of undirected edge values
    mask_ops = sum(op.forward(ctx).flops + op.backward(ctx).flops
                   for op in mask_update_ops(spec, g)[:2])  # its top-k and ADMM terms (fwd + bwd)
    assert two.train.flops - one.train.flops == pytest.approx(mask_ops + 15 * extra)  # + its Adam step
    # its values, gradients and two Adam moments, fp32
    assert two.train.memory_bytes - one.train.memory_bytes == pytest.approx(4 * 4 * extra)
    assert two.infer.flops == one.infer.flops


def test_weight_sparsity_counts_only_where_the_device_exploits_it():
    from costmodels import load_profile

    spec, g = GNNSpec("gcn", hidden=64), graph_stats("cora")
    cost = {name: price_gnn_run(spec, g, [], infer_weight_density=0.1, device=load_profile(name)).infer
            for name in ("v100", "h100", "gcn-accelerator")}
    dense = price_gnn_run(spec, g, [], device=load_profile("v100")).infer
    assert cost["v100"].flops == dense.flops                # no sparsity support: same work
    assert cost["v100"].memory_bytes == dense.memory_bytes  # and dense storage
    assert cost["h100"].flops == dense.flops                # fp32, and an unstructured mask: no 2:4 credit
    assert cost["gcn-accelerator"].flops < cost["h100"].flops  # unstructured: all of it
    assert cost["v100"].macs == cost["h100"].macs           # the paper count is device-independent


def _gemm_flops(device: str, dtype: str, pattern: str, d: float = 0.5, training: bool = False) -> float:
    from costmodels import load_profile, price_workload
    from costmodels.ops import Gemm
    from costmodels.workloads import Workload

    wl = Workload("one-gemm", (Gemm("lin", 100.0, 64.0, 32.0, d, True, True, weight_pattern=pattern),))
    return float(price_workload(wl, load_profile(device), training=training, dtype=dtype, optimizer="none").flops)


def test_2_4_credit_only_in_the_sparse_tensor_core_dtypes_and_only_for_2_4_masks():
    dense = 2.0 * 100 * 64 * 32
    assert _gemm_flops("h100", "fp32", "2:4") == dense          # fp32 runs on CUDA cores: no credit
    assert _gemm_flops("h100", "fp16", "2:4") == dense / 2      # a 2:4 mask in fp16: half the MACs
    assert _gemm_flops("h100", "bf16", "2:4", d=0.25) == dense / 2  # sparser than 2:4: still half
    assert _gemm_flops("h100", "fp16", "unstructured") == dense  # not 2:4: dense
    assert _gemm_flops("a100-80gb", "tf32", "2:4") == dense / 2
    assert _gemm_flops("v100", "fp16", "2:4") == dense          # no sparse tensor cores
    assert _gemm_flops("gcn-accelerator", "fp32", "unstructured", d=0.25) == dense / 4


def test_2_4_credit_is_forward_only_in_training():
    dense = 2.0 * 100 * 64 * 32  # per GEMM: forward, dX, dW
    assert _gemm_flops("h100", "fp16", "2:4", training=True) == dense / 2 + 2 * dense
    # an accelerator that skips zero weights skips them in dX and in dW (only kept weights' gradients)
    assert _gemm_flops("gcn-accelerator", "fp32", "unstructured", d=0.25, training=True) == 3 * dense / 4


def test_price_workload_vectorises_over_a_grid():
    import numpy as np

    dens = np.linspace(0.1, 1.0, 7)
    from costmodels import gnn_workload

    wl = gnn_workload(GNNSpec("gat"), graph_stats("cora"), graph_density=dens, weight_density=dens)
    grid = price_workload(wl, None, training=True)
    for i, d in enumerate(dens):
        point = price_workload(gnn_workload(GNNSpec("gat"), graph_stats("cora"), graph_density=d,
                                            weight_density=d), None, training=True)
        assert grid.flops[i] == pytest.approx(point.flops)
        assert grid.memory_bytes[i] == pytest.approx(point.memory_bytes)
    assert isinstance(Workload, type)


def test_memory_breakdown_components():
    from costmodels import gnn_workload
    from costmodels.analytical import memory_breakdown, memory_bytes

    g = graph_stats("cora")
    wl = gnn_workload(GNNSpec("gcn"), g, trainable_graph=True)
    parts = memory_breakdown(wl, CTX, training=True, optimizer="adam")
    params = (1433 * 16 + 16 * 7 + 16 + 7) * 4
    assert parts["parameters"] == params
    assert parts["optimizer_state"] == 2 * (params + g.num_edges / 2 * 4)  # Adam m, v (+ edge values)
    assert parts["graph"] == (g.num_edges + g.num_nodes) * (2 * 8 + 4)   # int64 pairs + one value each
    assert parts["inputs"] == g.num_nodes * 1433 * 4
    assert sum(parts.values()) == memory_bytes(wl, CTX, training=True)
    sgd = memory_breakdown(wl, CTX, training=True, optimizer="sgd")
    assert sgd["optimizer_state"] == parts["optimizer_state"] / 2


def test_saved_activations_follow_the_dtype_and_the_devices_dropout_mask():
    """ReLU keeps its output in the run's dtype; a CPU keeps dropout's noise in the input's dtype (torch's
    aten::_dropout), a GPU's fused dropout a bool mask; GAT keeps four values per edge and head."""
    from costmodels import gnn_workload, load_profile
    from costmodels.analytical import context_for

    g = graph_stats("cora")
    ops = {op.name: op for op in gnn_workload(GNNSpec("gat"), g).ops}
    relu, dropout, attention = ops["conv1.relu"], ops["conv1.dropout"], ops["conv1.attention"]
    cpu, gpu = load_profile("cloud-cpu-2core"), load_profile("h100")
    for dtype, b in (("fp32", 4), ("fp16", 2)):
        on_cpu, on_gpu = context_for(cpu, dtype), context_for(gpu, dtype)
        assert relu.saved_bytes(on_cpu) == relu.saved_bytes(on_gpu) == relu.numel * b
        assert dropout.saved_bytes(on_cpu) == dropout.numel * b and dropout.saved_bytes(on_gpu) == dropout.numel
        assert attention.saved_bytes(on_gpu) == 4 * (g.num_edges + g.num_nodes) * 8 * b  # E + N edges, 8 heads

def test_sparse_feature_storage_reads_the_features_at_their_measured_density():
    """Accelerators with sparse feature storage read Cora's features (1.27% non-zero) as values +
    32-bit indices: the first GEMM's X bytes are n·F·4·(2·d_x) instead of n·F·4 in fp32."""
    from dataclasses import replace

    from costmodels import breakdown, gnn_workload, load_profile

    g = graph_stats("cora")
    assert g.feature_density == pytest.approx(0.012683)
    dense_g = replace(g, feature_density=1.0)
    n, f = g.num_nodes, g.num_features

    def first_gemm_bytes(stats, device):
        wl = gnn_workload(GNNSpec("gcn"), stats, training=False)
        return next(r["dram_bytes"] for r in breakdown(wl, load_profile(device), training=False)
                    if r["op"] == "conv1.linear")

    saved = first_gemm_bytes(dense_g, "hygcn") - first_gemm_bytes(g, "hygcn")
    assert saved == pytest.approx(n * f * 4 * (1 - 2 * g.feature_density), rel=1e-9)
    assert first_gemm_bytes(dense_g, "v100") == first_gemm_bytes(g, "v100")  # a GPU reads them dense
    sparse_e = price_gnn_run(GNNSpec("gcn"), g, [], device=load_profile("gcn-accelerator")).infer.energy_j
    dense_e = price_gnn_run(GNNSpec("gcn"), dense_g, [], device=load_profile("gcn-accelerator")).infer.energy_j
    assert sparse_e < 0.8 * dense_e


def test_sparse_feature_compute_prices_the_first_product_on_the_nonzeros():
    """The CPU profiles multiply features of at most 10% non-zeros as CSR (what codesign's CPU training
    does): the first layer's forward and dW FLOPs scale by d_x, its X bytes are the CSR operand's, the
    papers' MACs and the stored input bytes stay dense; above 10% nothing changes."""
    d_x = 0.0127
    gemm = Gemm("conv1.linear", 2708, 1433, 16, input_grad=False, input_resident=True, input_density=d_x)
    cpu, plain = ExecContext(sparse_feature_compute=True), ExecContext()
    mac = 2708 * 1433 * 16
    assert gemm.forward(cpu).flops == pytest.approx(2 * mac * d_x)
    assert gemm.backward(cpu).flops == pytest.approx(2 * mac * d_x)  # dW = X^T dY with X^T as CSR
    assert gemm.forward(plain).flops == 2 * mac and gemm.forward(cpu).macs == gemm.forward(plain).macs
    x_bytes = 2708 * 1433 * 4
    assert gemm.forward(plain).dram_bytes - gemm.forward(cpu).dram_bytes == pytest.approx(x_bytes * (1 - 2 * d_x))
    assert cpu.feature_scale(d_x) == 1.0  # the dense copy is kept: stored input bytes do not drop
    dense_enough = Gemm("conv1.linear", 2708, 1433, 16, input_grad=False, input_resident=True, input_density=0.2)
    assert dense_enough.forward(cpu).flops == dense_enough.forward(plain).flops
    hidden = Gemm("conv2.linear", 2708, 16, 7, input_density=d_x)  # not the input features: no credit
    assert hidden.forward(cpu).flops == hidden.forward(plain).flops
    import numpy as np

    grid = Gemm("conv1.linear", 2708, 1433, 16, input_grad=False, input_resident=True,
                input_density=np.array([d_x, 0.5]))
    assert np.allclose(grid.forward(cpu).flops, [2 * mac * d_x, 2 * mac])


def test_cpu_profiles_price_sparse_features_and_gpus_do_not():
    from costmodels import load_profile

    assert load_profile("cloud-cpu-2core").sparse_feature_compute
    assert load_profile("calibrated/cloud-cpu-2core").sparse_feature_compute
    assert not load_profile("h100").sparse_feature_compute  # CUDA training multiplies the features dense
