"""Your own model priced like ours: PyG modules traced by ``codesign.dispatch.byo`` vs the built-in workloads.

For gcn, gat, gin and sage written with PyG layers (the architectures of docs/CONTRACTS.md), on Cora
and on every shipped profile: the ratio traced / built-in of latency and of energy for one training
epoch and one inference (``codesign estimate --module`` against ``codesign estimate --model``).
Target: every ratio in [0.9, 1.1]. Then resnet18 and mobilenet_v2 written in plain torch (BatchNorm
included) priced with ``--task cnn``: forward MACs against 1.82 GMAC / 300 MMAC (224x224, the
published counts), target within 1%. Everything is analytical (no timing): the numbers do not
depend on the machine's load. The last line printed is one JSON object.

The same PyG layers on a sparse CSR adjacency (:class:`SparseAdjacency`; gcn, gin, sage) do the built-ins'
own work, one sparse-dense product per layer instead of ``[E, F]`` messages: their table adds the ratios of
FLOPs and DRAM bytes, which show whether the two are priced on one basis where the work is the same.

A third table counts the kernels one step launches (``cuda`` target) on each side, the twin's from its own
dispatched ops and the built-in's from ``opcount``'s table, beside the priced h100 latency ratio: on Cora a
GPU step is launch-bound, so where the two sides dispatch different ops the prices differ with them.

A fourth table traces the built-ins' own code (``codesign.graphs.models.GNN``, fed as codesign feeds it) like a
user's model and divides by the built-ins' analytical price: the same work on both sides, so it shows where
the analytical workloads describe less or more than the code runs (the per-edge tensors GAT's eager code
writes, GCN's two row scalings).

``--measure`` also times both on this CPU (a train step and an inference, median of 40 after 5 warm-ups,
``--threads`` threads, default 1: the thread count ``codesign train`` picks for Cora, the basis the calibrated
profile was fitted on) and prints the measured ratio PyG / built-in beside the priced one on
``--cpu-profile`` (default ``calibrated/cloud-cpu-2core``): whether the price follows the work on the one
device a run here can measure (load-sensitive: the load average is printed; measure quietly).

    python benchmarks/byo_parity.py [--dataset cora] [--measure [--cpu-profile NAME]]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PUBLISHED_MACS = {"resnet18": 1.82e9, "mobilenet_v2": 300e6}  # 224x224, 1000 classes (torchvision model cards)


def pyg_model(kind: str, f: int, c: int) -> nn.Module:
    """The built-in ``kind``'s architecture from PyG layers (``codesign.graphs.export.pyg_twin``)."""
    from codesign.graphs.export import pyg_twin

    return pyg_twin(kind, f, c)


class SparseAdjacency(nn.Module):
    """A PyG stack run on a ``torch.sparse`` CSR adjacency instead of the edge list: PyG's sparse path
    (``message_and_aggregate``: one sparse-dense product per layer, as the built-ins run; no ``[E, F]``
    messages). The adjacency is built in the forward from the edge list: index work on the graph alone,
    which the tracer prices as graph preprocessing, not per pass."""

    def __init__(self, stack: nn.Module) -> None:
        super().__init__()
        self.stack = stack

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        from torch_geometric.utils import to_torch_csr_tensor

        return self.stack(x, to_torch_csr_tensor(edge_index.flip(0), size=(x.size(0), x.size(0))))


SPARSE_KINDS = ("gcn", "gin", "sage")  # GATConv has no sparse-product path (its attention is per edge)


def twin(kind: str, f: int, c: int, sparse_adjacency: bool = False) -> nn.Module:
    """:func:`pyg_model`, on the edge list or (``sparse_adjacency``) on a CSR adjacency."""
    model = pyg_model(kind, f, c)
    return SparseAdjacency(model) if sparse_adjacency else model


# --- plain-torch CNNs (torchvision's architectures, written out) ------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, c = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self, channels: int = 3, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
        c = 32
        for t, c_out, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(c, c_out, s if i == 0 else 1, t))
                c = c_out
        layers += [nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def builtin_rows(model: str, dataset: str, device: str | None = None) -> list[dict]:
    from codesign.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["estimate", "--model", model, "--dataset", dataset, "--json"] + (["--device", device] if device else []))
    return json.loads(buf.getvalue())


def gnn_parity(dataset: str, sparse_adjacency: bool = False) -> tuple[list[dict], dict]:
    """Ratios traced PyG twin / built-in per model, device, phase and metric; ``sparse_adjacency``: the
    twins on a CSR adjacency (:class:`SparseAdjacency`), with FLOPs and DRAM bytes compared too."""
    from codesign.dispatch.byo import price_model

    rows, worst = [], {"ratio": 1.0}
    for kind in SPARSE_KINDS if sparse_adjacency else ("gcn", "gat", "gin", "sage"):
        ours = {(r["device"], r["phase"]): r for r in builtin_rows(kind, dataset)}
        traced = price_model(lambda f, c, k=kind: twin(k, f, c, sparse_adjacency), dataset, name=kind)
        for r in traced:
            ref = ours.get((r["device"], r["phase"]))
            if ref is None:
                continue
            for metric in ("latency_s", "energy_j") + (("flops", "dram_bytes") if sparse_adjacency else ()):
                ratio = r[metric] / ref[metric]
                rows.append({"model": kind, "device": r["device"], "phase": r["phase"], "metric": metric,
                             "traced": r[metric], "builtin": ref[metric], "ratio": ratio,
                             "regime_traced": r.get("regime"), "regime_builtin": ref.get("regime")})
                if abs(ratio - 1.0) > abs(worst["ratio"] - 1.0):
                    worst = rows[-1]
    return rows, worst


def print_sparse_adjacency(rows: list[dict]) -> dict:
    """Print the :class:`SparseAdjacency` twins' ratios (one row per model and device) and return their
    summary: the range of each metric's ratio, and how many latency/energy ratios lie in [0.9, 1.1]."""
    import pandas as pd

    table = pd.DataFrame(rows).pivot_table(index=["model", "device"], columns=["phase", "metric"], values="ratio")
    print("\nPyG twins on a sparse CSR adjacency (the built-ins' own work: one sparse-dense product per layer), "
          "ratio traced / built-in:")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string())
    summary: dict = {}
    for metric in ("flops", "dram_bytes", "latency_s", "energy_j"):
        r = [x["ratio"] for x in rows if x["metric"] == metric]
        summary[metric] = [round(min(r), 3), round(max(r), 3)]
    timed = [x["ratio"] for x in rows if x["metric"] in ("latency_s", "energy_j")]
    summary["inside_0.9_1.1"] = f"{sum(0.9 <= r <= 1.1 for r in timed)} of {len(timed)}"
    print(f"ratio ranges {summary}")
    return summary


def own_code_parity(dataset: str) -> dict:
    """The built-ins' own code (``codesign.graphs.models.GNN``) traced like a user's model, against their analytical
    price: the same work on both sides, so any ratio away from 1 is the basis (or the analytical workload's
    simplification), not the model. Fed as codesign feeds it: CSR input features where the profile runs them
    (``sparse_feature_compute``), else dense."""
    from dataclasses import replace

    from codesign.dispatch.byo import trace_graph_model, with_counted_launches
    from codesign.graphs.data import load_dataset
    from codesign.graphs.models import GNN, sparse_features
    from costmodels import list_profiles, load_profile, price_workload
    from costmodels.workloads import default_hidden

    data = load_dataset(dataset)
    feeds = {False: data, True: replace(data, x=sparse_features(data.x))}
    rows = []
    for kind in ("gcn", "gat", "gin", "sage"):
        ours = {(r["device"], r["phase"]): r for r in builtin_rows(kind, dataset)}
        traces = {csr: trace_graph_model(lambda f, c, k=kind: GNN(k, f, c, hidden=default_hidden(k)), feed, kind)
                  for csr, feed in feeds.items()}
        for name in [n for n in list_profiles() if "/" not in n]:
            device = load_profile(name)
            train, infer = traces[bool(device.sparse_feature_compute)]
            for phase, traced, training in (("inference", infer, False), ("train_epoch", train, True)):
                cost = price_workload(with_counted_launches(traced, device, training), device, training=training)
                ref = ours[(device.name, phase)]
                for metric in ("latency_s", "energy_j"):
                    rows.append({"model": kind, "device": device.name, "kind": device.kind, "phase": phase,
                                 "metric": metric, "ratio": float(getattr(cost, metric)) / ref[metric]})
    import pandas as pd

    table = pd.DataFrame(rows).pivot_table(index=["model", "device"], columns=["phase", "metric"], values="ratio")
    print("\nthe built-ins' own code traced like a user's model, ratio traced / analytical (the same work):")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string())
    ratios = [r["ratio"] for r in rows]
    summary = {"inside_0.9_1.1": f"{sum(0.9 <= r <= 1.1 for r in ratios)} of {len(ratios)}",
               "range": [round(min(ratios), 3), round(max(ratios), 3)]}
    for group, kinds in (("gpu_and_edge", ("gpu", "edge")), ("cpu", ("cpu",)), ("accelerator", ("accelerator",))):
        sel = [r["ratio"] for r in rows if r["kind"] in kinds]
        if sel:
            summary[group] = [round(min(sel), 3), round(max(sel), 3)]
    print(f"own code traced / analytical: {summary}")
    return summary


def kernel_counts(dataset: str, rows: list[dict], sparse_rows: list[dict]) -> list[dict]:
    """Kernel-launching ATen ops of one step, PyG twin (its own dispatched ops, ``count_model_steps``) against
    the built-in (``opcount``'s table), for the ``cuda`` target, beside the priced h100 latency ratio: on a
    launch-bound graph the price follows the ops each side really dispatches, not a shared basis."""
    from codesign.dispatch.byo import trace_graph_model
    from codesign.dispatch.opcount import kernel_launches
    from codesign.graphs.config import GraphTrainConfig
    from codesign.graphs.data import load_dataset

    data = load_dataset(dataset)
    latency = {(r["model"] + ("/csr" if csr else ""), r["phase"]): r["ratio"]
               for csr, table in ((False, rows), (True, sparse_rows)) for r in table
               if r["device"] == "h100" and r["metric"] == "latency_s"}
    out = []
    for kind, sparse in [(k, False) for k in ("gcn", "gat", "gin", "sage")] + [(k, True) for k in SPARSE_KINDS]:
        _, infer = trace_graph_model(lambda f, c, k=kind, s=sparse: twin(k, f, c, s), data, kind)
        assert infer.counts is not None
        name = f"{kind}/csr" if sparse else kind
        for phase, training, table_kind in (("inference", False, "inference"), ("train_epoch", True, "train")):
            pyg = infer.counts.for_target("cuda", training)[0]
            built_in = GraphTrainConfig(model=kind)  # the built-in's depth and heads, as the twin copies them
            ours = kernel_launches(kind, built_in.layers, built_in.heads, table_kind)
            out.append({"model": name, "phase": phase, "pyg_kernels": pyg, "builtin_kernels": ours,
                        "kernel_ratio": pyg / ours, "h100_latency_ratio": latency.get((name, phase))})
    print("\nkernels one step launches (cuda target), PyG twin vs built-in, beside the priced h100 latency ratio:")
    print(f"{'model':<9} {'phase':<12} {'PyG':>5} {'ours':>5} {'kernel ratio':>13} {'h100 latency ratio':>19}")
    for r in out:
        lat = "-" if r["h100_latency_ratio"] is None else f"{r['h100_latency_ratio']:.3f}"
        print(f"{r['model']:<9} {r['phase']:<12} {r['pyg_kernels']:5d} {r['builtin_kernels']:5d} "
              f"{r['kernel_ratio']:13.2f} {lat:>19}")
    return out


def cnn_flops() -> list[dict]:
    from codesign.dispatch.byo import trace_image_model
    from costmodels import price_workload

    out = []
    for name, cls in (("resnet18", ResNet18), ("mobilenet_v2", MobileNetV2)):
        # one 224x224 image: price the forward's MACs (imagenet-sized input through the trace directly)
        net = cls(3, 1000).eval()
        from codesign.dispatch.workload import trace_workload

        image = torch.randn(1, 3, 224, 224)
        traced = trace_workload(lambda n=net, x=image: n(x), [p for p in net.parameters()], name)
        macs = float(price_workload(traced.workload, training=False).macs)
        out.append({"model": name, "macs": macs, "published_macs": PUBLISHED_MACS[name],
                    "error": macs / PUBLISHED_MACS[name] - 1.0, "unknown_ops": traced.unknown})
        # and the same model through `--task cnn` on a shipped image dataset (BatchNorm in train mode)
        train, infer, _ = trace_image_model(lambda c, k, cls=cls: cls(c, k), "cifar10", batch=8, name=name)
        out[-1]["cifar10_train_unknown_ops"] = train.unknown
    return out


def _median_s(fn, repeats: int) -> float:
    """Median wall of ``repeats`` calls of ``fn`` after 5 warm-up calls."""
    import statistics
    import time

    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _timed_pair(kind: str, data, repeats: int, sparse_adjacency: bool = False) -> dict[str, tuple[float, float]]:
    """Seconds (PyG twin, built-in) of one training step and one inference of ``kind`` on ``data``
    (``sparse_adjacency``: the twin on a CSR adjacency built once before the timing, as the price leaves its
    construction to graph preprocessing)."""
    from codesign.graphs.config import GraphTrainConfig
    from codesign.graphs.methods.common import RunContext, WeightMasks, train_step
    from codesign.runtime.optim import Adam

    torch.manual_seed(0)
    ctx = RunContext(GraphTrainConfig(model=kind, epochs=1), data, torch.device("cpu"), progress=False)
    ours, pyg = ctx.new_model(), twin(kind, data.num_features, data.num_classes, sparse_adjacency)
    run = ctx.data  # the built-ins' view of the data (sparse input features as CSR on a CPU)
    ours_opt, masks, edges = ctx.optimizer(ours), WeightMasks(ours, None), run.layer_edges(None)
    twin_opt = Adam([{"params": list(pyg.parameters())}], lr=0.01, weight_decay=5e-4)
    graph: torch.Tensor = data.edge_index
    if isinstance(pyg, SparseAdjacency):
        from torch_geometric.utils import to_torch_csr_tensor

        pyg, graph = pyg.stack, to_torch_csr_tensor(graph.flip(0), size=(data.num_nodes, data.num_nodes))

    def twin_step() -> None:
        pyg.train()
        twin_opt.zero_grad()
        F.cross_entropy(pyg(data.x, graph)[data.train_mask], data.y[data.train_mask]).backward()
        twin_opt.step()

    def infer(model, *args) -> None:
        model.eval()
        with torch.no_grad():
            model(*args)

    return {"train_epoch": (_median_s(twin_step, repeats),
                            _median_s(lambda: train_step(ours, ours_opt, run, edges, None, masks), repeats)),
            "inference": (_median_s(lambda: infer(pyg, data.x, graph), repeats),
                          _median_s(lambda: infer(ours, run.x, run.edge_index, None), repeats))}


def measured_vs_priced(dataset: str, cpu_profile: str, repeats: int = 40) -> list[dict]:
    """Per model: measured (this CPU) and priced (``cpu_profile``) ratios PyG twin / built-in, for one
    training step and one inference on ``dataset``."""
    import os

    from codesign.dispatch.byo import price_model
    from codesign.graphs.data import load_dataset

    load = os.getloadavg()[0]
    data = load_dataset(dataset)
    out = []
    for kind, sparse in [(k, False) for k in ("gcn", "gat", "gin", "sage")] + [(k, True) for k in SPARSE_KINDS]:
        measured = _timed_pair(kind, data, repeats, sparse)
        priced = {r["phase"]: r["latency_s"] for r in price_model(lambda f, c, k=kind, s=sparse: twin(k, f, c, s),
                                                                  dataset, [cpu_profile], name=kind)}
        reference = {r["phase"]: r["latency_s"] for r in builtin_rows(kind, dataset, cpu_profile)}
        for phase, (twin_s, ours_s) in measured.items():
            out.append({"model": f"{kind}/csr" if sparse else kind, "phase": phase, "pyg_ms": 1e3 * twin_s,
                        "builtin_ms": 1e3 * ours_s,
                        "measured_ratio": twin_s / ours_s, "priced_ratio": priced[phase] / reference[phase],
                        "pyg_price_error": priced[phase] / twin_s - 1.0,
                        "builtin_price_error": reference[phase] / ours_s - 1.0})
    print(f"\nmeasured on this CPU ({torch.get_num_threads()} threads, load average "
          f"{load:.2f} before) vs priced on {cpu_profile}:")
    print(f"{'model':<8} {'phase':<12} {'PyG ms':>8} {'ours ms':>8} {'measured':>9} {'priced':>7} "
          f"{'PyG price err':>14} {'ours price err':>15}")
    for r in out:
        print(f"{r['model']:<8} {r['phase']:<12} {r['pyg_ms']:8.2f} {r['builtin_ms']:8.2f} "
              f"{r['measured_ratio']:9.2f} {r['priced_ratio']:7.2f} {r['pyg_price_error']:+14.0%} "
              f"{r['builtin_price_error']:+15.0%}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cora")
    p.add_argument("--measure", action="store_true", help="also time PyG twins and built-ins on this CPU")
    p.add_argument("--cpu-profile", default="calibrated/cloud-cpu-2core", help="the profile --measure prices on")
    p.add_argument("--threads", type=int, default=1, help="torch threads while --measure times (default 1)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    rows, worst = gnn_parity(args.dataset)
    print(f"{'model':<5} {'device':<22} {'phase':<12} {'metric':<10} {'traced':>11} {'built-in':>11} {'ratio':>7}")
    for r in rows:
        flag = "" if 0.9 <= r["ratio"] <= 1.1 else "  <- outside [0.9, 1.1]"
        print(f"{r['model']:<5} {r['device']:<22} {r['phase']:<12} {r['metric']:<10} {r['traced']:11.4g} "
              f"{r['builtin']:11.4g} {r['ratio']:7.3f}{flag}")
    inside = sum(0.9 <= r["ratio"] <= 1.1 for r in rows)
    print(f"worst ratio {worst['ratio']:.3f} ({worst.get('model')} {worst.get('device')} {worst.get('phase')} "
          f"{worst.get('metric')}); {inside} of {len(rows)} ratios in [0.9, 1.1]")
    sparse_rows, _ = gnn_parity(args.dataset, sparse_adjacency=True)
    sparse_summary = print_sparse_adjacency(sparse_rows)
    kernels = kernel_counts(args.dataset, rows, sparse_rows)
    own = own_code_parity(args.dataset)
    cnn = cnn_flops()
    for c in cnn:
        print(f"{c['model']:<13} forward {c['macs'] / 1e6:9.1f} MMAC vs published {c['published_macs'] / 1e6:7.0f} "
              f"MMAC ({c['error']:+.2%}); unknown ops {c['unknown_ops'] or 'none'}")
    summary = {"dataset": args.dataset, "ratios": len(rows), "inside_0.9_1.1": inside,
               "worst_ratio": worst["ratio"],
               "worst": {k: worst.get(k) for k in ("model", "device", "phase", "metric")},
               "all_inside": inside == len(rows),
               "cnn": {c["model"]: {"macs": c["macs"], "error": c["error"]} for c in cnn},
               "cnn_within_1pct": all(abs(c["error"]) <= 0.01 for c in cnn),
               "sparse_adjacency": sparse_summary,
               "own_code_traced": own,
               "kernels_per_step": {f"{k['model']}/{k['phase']}": [k["pyg_kernels"], k["builtin_kernels"]]
                                    for k in kernels}}
    if args.measure:
        torch.set_num_threads(args.threads)
        timed = measured_vs_priced(args.dataset, args.cpu_profile)
        summary["measured_on_this_cpu"] = {f"{r['model']}/{r['phase']}": {
            k: round(r[k], 3) for k in ("measured_ratio", "priced_ratio", "pyg_price_error", "builtin_price_error")}
            for r in timed}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
