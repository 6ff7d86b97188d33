"""Property tests: costs are non-negative and never increase when any sparsity increases."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from costmodels import GNNSpec, PhaseSpec, graph_stats, list_profiles, load_profile, price_gnn_run
from costmodels.cnn import vgg_workload
from costmodels.runs import Phase, price_run

DEVICES = [None] + [n for n in list_profiles() if "/" not in n]
FIELDS = ("flops", "macs", "dram_bytes", "memory_bytes", "latency_s", "energy_j")


def run(model, dataset, gd, wd, device, order):
    spec = GNNSpec(model, hidden=16)
    phases = [PhaseSpec("retrain", 3, gd, wd), PhaseSpec("search", 2, 1.0, wd, trainable_graph=True,
                                                            mask_update=True)]
    dev = None if device is None else load_profile(device)
    return price_gnn_run(spec, graph_stats(dataset), phases, infer_graph_density=gd, infer_weight_density=wd,
                         device=dev, aggregation_order=order)


def values(r):
    for part in (r.train, r.infer):
        for f in FIELDS:
            v = getattr(part, f)
            if v is not None:
                yield f, float(v)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    model=st.sampled_from(["gcn", "gat", "gin", "sage"]),
    dataset=st.sampled_from(["cora", "citeseer", "pubmed"]),
    device=st.sampled_from(DEVICES),
    order=st.sampled_from(["transform-first", "aggregate-first"]),
    gs=st.floats(0, 0.99), ws=st.floats(0, 0.99), dg=st.floats(0, 0.5), dw=st.floats(0, 0.5),
)
def test_costs_nonnegative_and_monotone_in_sparsity(model, dataset, device, order, gs, ws, dg, dw):
    base = run(model, dataset, 1 - gs, 1 - ws, device, order)
    sparser_graph = run(model, dataset, 1 - min(gs + dg, 0.999), 1 - ws, device, order)
    sparser_weights = run(model, dataset, 1 - gs, 1 - min(ws + dw, 0.999), device, order)
    for (f, v0), (_, v1), (_, v2) in zip(values(base), values(sparser_graph), values(sparser_weights)):
        assert v0 >= 0, f
        assert v1 <= v0 * (1 + 1e-12), f"{f} grew with graph sparsity"
        assert v2 <= v0 * (1 + 1e-12), f"{f} grew with weight sparsity"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(device=st.sampled_from(DEVICES), ws=st.floats(0, 0.99), dw=st.floats(0, 0.5),
       width=st.sampled_from([0.25, 0.5, 1.0]))
def test_cnn_costs_monotone_in_weight_sparsity(device, ws, dw, width):
    dev = None if device is None else load_profile(device)

    def price(w):
        wl = vgg_workload(11, 10, 1, 28, width=width, batch=32, weight_density=1 - w)
        inf = vgg_workload(11, 10, 1, 28, width=width, batch=32, weight_density=1 - w, training=False)
        return price_run([Phase("t", 1, wl, "sgd", 10)], inf, dev)

    a, b = price(ws), price(min(ws + dw, 0.999))
    for (f, v0), (_, v1) in zip(values(a), values(b)):
        assert v0 >= 0 and v1 <= v0 * (1 + 1e-12), f


def test_the_optimizer_steps_over_stored_values_not_index_bytes():
    """On a device that stores pruned weights compressed, Adam updates the kept values: its work does not
    grow with the index bytes (it did: stored bytes / dtype bytes counted each index as a parameter), and a
    90%-pruned layer, compressed in fp32 and fp16 alike, costs the same optimizer FLOPs in both."""
    from costmodels.analytical import context_for, op_costs, stored_values
    from costmodels.workloads import gnn_workload

    acc = load_profile("gcn-accelerator")
    wl = gnn_workload(GNNSpec("gcn"), graph_stats("cora"), weight_density=0.1)
    dense_params = sum(op.param_count() for op in wl.ops)
    steps = {}
    for dtype in ("fp32", "fp16"):
        ctx = context_for(acc, dtype, True)
        assert float(stored_values(wl, ctx)) < 0.11 * dense_params  # the kept tenth (+ biases)
        steps[dtype] = op_costs(wl, ctx, training=True)[-1].flops
    assert steps["fp32"] == steps["fp16"]
    plain = context_for(load_profile("h100"), "fp32", True)  # stores weights dense: every value is updated
    assert float(stored_values(wl, plain)) == dense_params
