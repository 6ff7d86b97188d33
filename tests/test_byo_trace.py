"""Bring your own model: the torch-dispatch tracer against the built-in workloads, APPNP, unknown ops,
our layers against PyG's, and `codesign estimate --module`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from codesign.byo import price_model, trace_graph_model
from codesign.cli import main
from codesign.graphs.data import load_dataset
from costmodels import GNNSpec, GraphStats, breakdown, gnn_workload, price_workload
from tests.datasets_available import planetoid_present

pyg = pytest.importorskip("torch_geometric.nn")

SBM = "sbm:n=2000,avg_degree=10,features=256,classes=4,seed=1"
TINY = "sbm:n=200,avg_degree=6,features=8,classes=4,seed=3"
GRAPHS = [pytest.param("cora", marks=pytest.mark.skipif(not planetoid_present("Cora"), reason="no Cora")), SBM]


class TwoLayer(nn.Module):
    """The built-in models' architecture from PyG layers: conv, ReLU, dropout 0.5, conv, log-softmax."""

    def __init__(self, conv1: nn.Module, conv2: nn.Module) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv1, conv2

    def forward(self, x, edge_index):
        x = F.dropout(F.relu(self.conv1(x, edge_index)), 0.5, self.training)
        return F.log_softmax(self.conv2(x, edge_index), dim=-1)


def pyg_model(kind: str, f: int, c: int) -> nn.Module:
    if kind == "gcn":
        return TwoLayer(pyg.GCNConv(f, 16), pyg.GCNConv(16, c))
    if kind == "gat":
        return TwoLayer(pyg.GATConv(f, 8, heads=8, dropout=0.5),
                        pyg.GATConv(64, c, heads=1, concat=False, dropout=0.5))
    if kind == "gin":
        return TwoLayer(pyg.GINConv(nn.Linear(f, 16)), pyg.GINConv(nn.Linear(16, c)))
    return TwoLayer(pyg.SAGEConv(f, 16), pyg.SAGEConv(16, c))


@pytest.mark.parametrize("dataset", GRAPHS)
@pytest.mark.parametrize("kind", ["gcn", "gat", "gin", "sage"])
def test_traced_pyg_model_matches_builtin_workload(kind, dataset):
    data = load_dataset(dataset)
    g = GraphStats(data.name, data.num_nodes, data.num_edges, data.num_features, data.num_classes)
    train, infer = trace_graph_model(lambda f, c: pyg_model(kind, f, c), data, kind)
    assert train.unknown == {} and infer.unknown == {}
    spec = GNNSpec(kind, hidden=8 if kind == "gat" else 16)
    for training, traced in ((True, train), (False, infer)):
        ref = price_workload(gnn_workload(spec, g, training=training), training=training)
        got = price_workload(traced.workload, training=training)
        assert got.flops == pytest.approx(float(ref.flops), rel=0.01), (kind, training)
        assert got.dram_bytes == pytest.approx(float(ref.dram_bytes), rel=0.10), (kind, training)
    aggregation = [r for r in breakdown(infer.workload, training=False) if r["class"] == "aggregation"]
    assert sum(float(r["flops"]) for r in aggregation) > 2 * data.num_edges  # message passing is not free


def test_appnp_aggregation_grows_linearly_with_propagation_steps():
    data = load_dataset(TINY)

    class Appnp(nn.Module):
        def __init__(self, f, c, k):
            super().__init__()
            self.lin, self.prop = nn.Linear(f, c), pyg.APPNP(k, 0.1)

        def forward(self, x, edge_index):
            return self.prop(self.lin(x), edge_index)

    def aggregation(k: int) -> tuple[float, float]:
        _, infer = trace_graph_model(lambda f, c: Appnp(f, c, k), data)
        assert infer.unknown == {}
        rows = [r for r in breakdown(infer.workload, training=False) if r["class"] == "aggregation"]
        return sum(float(r["flops"]) for r in rows), sum(float(r["dram_bytes"]) for r in rows)

    (f1, b1), (f2, b2), (f4, b4), (f8, b8) = (aggregation(k) for k in (1, 2, 4, 8))
    step = f2 - f1
    assert step > 0
    assert f4 - f2 == pytest.approx(2 * step) and f8 - f4 == pytest.approx(4 * step)
    assert b8 - b4 == pytest.approx(2 * (b4 - b2))
    # one step aggregates (E + N) messages of width C, counted as the SpMM's multiply-add
    assert step == pytest.approx(2 * (data.num_edges + data.num_nodes) * data.num_classes, rel=0.05)


def test_unknown_operators_are_listed_and_priced_as_traffic():
    data = load_dataset(TINY)

    class Odd(nn.Module):
        def __init__(self, f, c):
            super().__init__()
            self.lin = nn.Linear(f, c)

        def forward(self, x, edge_index):
            return self.lin(x - torch.kthvalue(x, 2, dim=1, keepdim=True).values)

    train, infer = trace_graph_model(Odd, data)
    assert infer.unknown == {"kthvalue": 1}
    row = next(r for r in breakdown(infer.workload, training=False) if r["op"] == "aten.unknown.kthvalue")
    assert float(row["dram_bytes"]) >= data.num_nodes * data.num_features * 4 and float(row["flops"]) == 0.0


def test_gemm_flops_equal_flop_counter_mode():
    from torch.utils.flop_counter import FlopCounterMode

    data = load_dataset(TINY)
    torch.manual_seed(0)
    model = pyg_model("sage", data.num_features, data.num_classes).eval()
    with FlopCounterMode(display=False) as counter:
        model(data.x, data.edge_index)
    _, infer = trace_graph_model(model, data)
    gemm = sum(float(r["flops"]) for r in breakdown(infer.workload, training=False) if r["class"] == "gemm")
    assert gemm == counter.get_total_flops()


@pytest.mark.parametrize("kind", ["gat", "gin", "sage"])
def test_our_layers_match_pyg(kind):
    from codesign.export import build_pyg_model, to_pyg_names
    from codesign.graphs.models import GNN

    data = load_dataset(TINY)
    torch.manual_seed(0)
    ours = GNN(kind, data.num_features, data.num_classes, hidden=8, heads=4).eval()
    for p in ours.parameters():  # non-zero biases too
        p.data.uniform_(-0.5, 0.5)
    arch = {"model": kind, "layers": 2, "hidden": 8, "heads": 4, "output_heads": 1, "dropout": 0.5}
    ref = build_pyg_model(arch, data.num_features, data.num_classes).eval()
    ref.load_state_dict(to_pyg_names(kind, ours.state_dict()), strict=kind != "gin")  # GIN: eps buffer
    assert torch.allclose(ours(data.x, data.edge_index), ref(data.x, data.edge_index), atol=1e-5)


def test_price_model_on_three_devices_and_cnn():
    rows = price_model(lambda f, c: pyg_model("gcn", f, c), TINY, ["h100", "jetson-agx-orin", "gcn-accelerator"])
    assert {r["device"] for r in rows} == {"h100", "jetson-agx-orin", "gcn-accelerator"}
    train = next(r for r in rows if r["device"] == "h100" and r["phase"] == "train_epoch")
    infer = next(r for r in rows if r["device"] == "h100" and r["phase"] == "inference")
    assert train["flops"] > 2 * infer["flops"] and train["latency_s"] > infer["latency_s"] > 0

    def cnn(channels, classes):
        return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 28 * 28, classes))

    rows = price_model(cnn, "mnist", ["h100"], batch_size=4)
    infer = next(r for r in rows if r["phase"] == "inference")
    conv = 2 * 4 * 8 * 28 * 28 * 9 * 1
    linear = 2 * 4 * 8 * 28 * 28 * 10
    assert infer["flops"] >= conv + linear and infer["flops"] < 1.2 * (conv + linear)


def test_estimate_module_cli(tmp_path, capsys):
    module = tmp_path / "mine.py"
    module.write_text("import torch\nfrom torch_geometric.nn import SGConv\n\n"
                      "def make(f, c):\n    return SGConv(f, c, K=2)\n")
    assert main(["estimate", "--module", f"{module}:make", "--dataset", TINY, "--device", "h100",
                 "--device", "jetson-agx-orin", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["device"], r["phase"]) for r in rows} >= {("h100", "inference"), ("jetson-agx-orin", "train_epoch")}
    assert all(r["unknown_ops"] == {} and r["flops"] > 0 for r in rows)
    assert main(["estimate", "--module", f"{module}:nothing", "--dataset", TINY]) == 2
    assert "defines no callable 'nothing'" in capsys.readouterr().err
    assert main(["estimate", "--module", f"{module}:make", "--dataset", TINY, "--weight-sparsity", "0.5"]) == 2
    assert "--module prices the model as written" in capsys.readouterr().err


def test_tracer_and_export_do_not_import_pyg():
    code = ("import sys, codesign.byo, codesign.trace, codesign.export, codesign.cli.export; "
            "print('torch_geometric' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_torch_sparse_products_are_aggregation():
    from codesign.graphs.models import GNN

    data = load_dataset(TINY)
    _, infer = trace_graph_model(lambda f, c: GNN("gin", f, c), data)  # CSR torch.sparse.mm inside
    assert infer.unknown == {}
    spmm = [op for op in infer.workload.ops if op.name.endswith(".sparse")]
    assert [op.num_edges for op in spmm] == [data.num_edges] * 2
    assert [op.features for op in spmm] == [data.num_features, 16]
