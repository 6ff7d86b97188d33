"""Counted ATen operations per step (codesign/dispatch/opcount.py), the launch term and the regime label."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from codesign.cli import main
from codesign.dispatch.opcount import TABLE_PATH, CountKey, count_ops, count_phase, table_key
from costmodels import GNNSpec, graph_stats, list_profiles, load_profile
from costmodels.analytical import price_workload
from costmodels.errors import ProfileError
from costmodels.launch import REGIMES, launch_time_s, regime
from costmodels.profiles import DeviceProfile
from costmodels.workloads import gnn_workload


def test_one_layer_step_matches_hand_count():
    """``y = x Wᵀ`` (no bias), ``loss = y.sum()``, plain SGD. By hand:
    forward  t(W) [view], mm, sum                      -> 2 kernels, 3 ops
    backward ones_like (seed grad), expand [view] (sum), t, t [views] + mm (dW only: x needs no grad),
             t [view] (through Wᵀ), detach [view] (AccumulateGrad keeps the new grad)
                                                       -> 2 kernels, 7 ops
    SGD      add_ (W -= lr·g)                          -> 1 kernel,  1 op
    total    5 kernels, 11 ops (zero_grad sets grads to None: no op)."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3, bias=False)
    x = torch.randn(5, 4)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)

    def step() -> None:
        opt.zero_grad()
        layer(x).sum().backward()
        opt.step()
    step()  # the first step allocates the grad; count a steady one
    c = count_ops(step)
    assert c.by_op == {"t": 4, "mm": 2, "sum": 1, "ones_like": 1, "expand": 1, "detach": 1, "add_": 1}
    assert (c.kernels, c.ops) == (5, 11)


def test_counts_do_not_depend_on_graph_size():
    key = CountKey("gcn", 2, 8, 1, "cuda")
    small = count_phase(key, "train")
    big = count_phase(key, "train", "sbm:n=1800,avg_degree=9,features=20,classes=5,seed=3")
    assert (small.ops, small.kernels) == (big.ops, big.kernels)
    assert small.kernels > 50  # a 2-layer GCN step launches far more than its ~15 modelled operators


def test_committed_table_matches_a_fresh_count():
    """Fails when the step code changes without ``python -m codesign.dispatch.opcount --write``."""
    table = json.loads(TABLE_PATH.read_text())["counts"]
    key = CountKey("gcn", 2, 8, 1, "cuda")
    fresh = count_phase(key, "train")
    assert table[table_key(key, "train")] == {"ops": fresh.ops, "kernels": fresh.kernels}


def test_launch_term_grows_with_counted_ops():
    dev = load_profile("gtx-1080-ti")
    wl = gnn_workload(GNNSpec("gcn"), graph_stats("cora"), training=True)
    lat = [float(price_workload(replace(wl, kernel_launches=float(k), host_ops=float(1.5 * k)), dev,
                                training=True).latency_s) for k in (50, 100, 200)]
    assert lat[0] < lat[1] < lat[2]
    step = max(dev.kernel_overhead_s, 1.5 * dev.host_overhead_s) * 100  # 100 more kernels, 150 more ops
    assert lat[2] - lat[1] == pytest.approx(step, rel=1e-9)
    # host cost per op and device launch latency: the larger one sets the term
    assert float(launch_time_s(10.0, 10.0, dev)) == pytest.approx(10 * max(5e-6, 10e-6))


def test_fallback_is_the_per_operator_estimate():
    """Without a count: kernels = ops = Σ of the operators' own launch estimates (launch.py fallback)."""
    dev = load_profile("h100")
    wl = gnn_workload(GNNSpec("gcn"), graph_stats("cora"), training=False)
    cost = price_workload(wl, dev, training=False)
    from costmodels import ExecContext
    kernels = sum(op.forward(ExecContext()).kernels for op in wl.ops)  # each operator's own estimate
    assert kernels > len(wl.ops)  # aggregation and normalisation take several host ops each
    assert float(cost.launch_s) == pytest.approx(kernels * max(dev.kernel_overhead_s, dev.host_overhead_s))


def test_regime_labels():
    assert regime(3.0, 1.0, 2.0) == "compute"
    assert regime(1.0, 3.0, 2.0) == "bandwidth"
    assert regime(1.0, 2.0, 3.0) == "launch"
    assert regime([1.0, 3.0], [2.0, 1.0], [0.5, 0.5]) == ["bandwidth", "compute"]


def test_estimate_says_the_regime_per_device(capsys):
    names = [n for n in list_profiles() if "/" not in n]
    assert main(["estimate", "--model", "gcn", "--dataset", "cora", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["device"] for r in rows} == set(names)
    assert all(r["regime"] in REGIMES for r in rows)
    by = {(r["device"], r["phase"]): r for r in rows}
    assert by[("gtx-1080-ti", "train_epoch")]["regime"] == "launch"  # Cora is tiny for any GPU
    total = by[("gtx-1080-ti", "train_epoch")]
    assert total["launch_s"] > total["compute_s"] + total["bandwidth_s"]


def test_host_overhead_needs_its_source():
    prof = load_profile("gtx-1080-ti")
    eff = dict(prof.sections["efficiency"])
    eff.pop("host_overhead_source")
    raw = {"name": prof.name, "display_name": prof.display_name, "kind": prof.kind, "source": prof.source,
           **{k: dict(v) for k, v in prof.sections.items()}, "efficiency": eff}
    with pytest.raises(ProfileError, match="host_overhead_source"):
        DeviceProfile.from_dict(raw)


def test_search_summary_carries_the_regime():
    import optuna

    from codesign.dispatch.regime import graph_regimes
    from search.export import CONTEXT_ATTR, summary

    reg = graph_regimes("gcn", "cora", "h100")
    assert reg == {"train_epoch": "launch", "search_epoch": "launch", "inference": "launch"}
    assert graph_regimes("gcn", "pubmed", "cloud-cpu-2core")["train_epoch"] in ("bandwidth", "compute")
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr(CONTEXT_ATTR, {"regime": reg, "device": "h100"})
    assert summary(study)["regime"] == reg


def test_graph_ops_are_left_out_of_a_step_by_hand_count():
    """``h = x[ei[0]]`` then ``out = zeros.index_add_(0, ei[1], h)``: the two selects of the edge list are
    graph ops (integer results of the graph alone: ``record.graph_only``), the gather, the zeros and
    the scatter are not; an argsort of float scores is not a graph op either (a float computation made it)."""
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    x = torch.randn(3, 4)

    def step() -> None:
        h = x[ei[0]]
        torch.zeros(3, 4).index_add_(0, ei[1], h)
        x.sum(1).argsort()[ei[0]]

    c = count_ops(step)
    assert "select" not in c.by_op  # ei[0], ei[0], ei[1]
    assert c.by_op == {"index": 2, "zeros": 1, "index_add_": 1, "sum": 1, "sort": 1}  # argsort dispatches sort
    assert (c.kernels, c.ops) == (6, 6)


def test_gat_step_does_not_grow_with_its_heads():
    """The built-in GAT aggregates every head in one product (``aggregate._head_plan``): same ops at 1 and 8 heads."""
    one, eight = (count_phase(CountKey("gat", 2, h, 1, "cuda"), "train") for h in (1, 8))
    assert (one.ops, one.kernels) == (eight.ops, eight.kernels)


def test_built_in_and_traced_models_count_through_the_one_recorder(monkeypatch):
    """Issue 23: a built-in GCN's counted step and a traced PyG GCN (its workload and its counted steps)
    go through the same dispatch recorder, ``codesign.dispatch.record.DispatchRecorder``."""
    pytest.importorskip("torch_geometric")
    from torch_geometric.nn.models import GCN

    from codesign.dispatch import record
    from codesign.dispatch.byo import price_model

    seen: list[str] = []
    dispatch = record.DispatchRecorder.__torch_dispatch__

    def spy(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        seen.append(type(self).__name__)
        return dispatch(self, func, types, args, kwargs)

    monkeypatch.setattr(record.DispatchRecorder, "__torch_dispatch__", spy)
    built_in = count_phase(CountKey("gcn"), "train")
    assert built_in.ops > 0 and set(seen) == {"DispatchRecorder"} and len(seen) >= built_in.ops
    seen.clear()
    rows = price_model(lambda f, c: GCN(f, 16, 2, c), "sbm:n=200,avg_degree=4,features=8,classes=3", ["h100"])
    assert rows and {"DispatchRecorder", "_Recorder"} == set(seen)  # counted steps and the traced workload
