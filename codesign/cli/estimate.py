"""`codesign estimate`: what a sparse GNN or pruned CNN costs on one or more devices, without running it.

Rows per device: ``inference`` (one full-graph forward / one batch), ``train_epoch`` (one epoch of
the sparse network on the sparse graph) and, for GNNs, ``search_epoch`` (a GEBT search epoch:
trainable edge values, dense weights, masks drawn). Every row says what it is per (``per``:
``batch`` = one forward of ``batch_size`` samples, for GNNs the whole graph as one batch; ``epoch``
= one pass over the training set). All numbers are analytical estimates; the launch term uses the
kernel launches a real step dispatches (``codesign/dispatch/opcount.py``), and ``regime`` says whether each
row is compute-, bandwidth- or launch-bound on that device (``costmodels/launch.py``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from costmodels.errors import CodesignError, check_fraction

from .common import add_data_root, add_json_flag, add_trust_pickle, bounded, emit_json, fraction

COLUMNS = ["device", "phase", "per", "batch_size", "flops", "macs", "dram_bytes", "memory_bytes", "latency_s",
           "energy_j", "regime"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="analytical FLOPs, bytes, memory, latency and energy on device profiles")
    p.add_argument("--model", default=None, help="gcn, gat, gin, sage; vgg11/13/16/19 and the CNN ResNets")
    p.add_argument("--module", default=None, metavar="FILE.py:FACTORY",
                   help="price your own model instead: FACTORY(num_features, num_classes) -> torch.nn.Module, "
                   "traced once on the dataset (codesign.dispatch.byo)")
    p.add_argument("--task", choices=["graph", "cnn"], default=None,
                   help="with --module: model(x, edge_index) or model(images) (default: from --dataset)")
    p.add_argument("--dataset", required=True, help="cora, citeseer, pubmed, actor, ogbn-arxiv, reddit, "
                   "sbm:n=...,avg_degree=...,features=...,classes=...; cifar10, cifar100, mnist, ...")
    p.add_argument("--device", action="append", default=None,
                   help="device profile name or TOML path (repeatable; default: every built-in profile)")
    p.add_argument("--graph-sparsity", type=fraction("--graph-sparsity"), default=0.0)
    p.add_argument("--weight-sparsity", type=fraction("--weight-sparsity"), default=0.0)
    p.add_argument("--layers", type=bounded("--layers"), default=2)
    p.add_argument("--hidden", type=bounded("--hidden"), default=None,
                   help="hidden width (per head for gat); default 16, gat 8 (costmodels.workloads.default_hidden)")
    p.add_argument("--heads", type=bounded("--heads"), default=8, help="GAT heads in hidden layers")
    p.add_argument("--aggregation-order", choices=["transform-first", "aggregate-first"],
                   default="transform-first",
                   help="transform-first = what PyG GCNConv runs; aggregate-first = the GEBT paper's count")
    p.add_argument("--hw", default=None,
                   help="hardware point of a template device (see `codesign devices`), e.g. "
                        "'pes=2048,buffer_mb=8,dram_gbs=256'; adds area_mm2 and power_w")
    p.add_argument("--node-order", choices=["natural", "degree", "rcm"], default=None,
                   help="GNNs: also price each layer's aggregation traffic exactly from the dataset's edge list "
                        "in this node order (needs the data; see --trace-policy)")
    p.add_argument("--trace-policy", choices=["window", "lru"], default="window",
                   help="on-chip schedule of the trace: the template's window schedule or an LRU cache")
    p.add_argument("--dtype", choices=["fp32", "tf32", "fp16", "bf16"], default="fp32")
    p.add_argument("--width", type=bounded("--width"), default=1.0, help="CNN width multiplier")
    p.add_argument("--batch-size", type=bounded("--batch-size"), default=128,
                   help="CNN batch size (inference row = one batch)")
    add_data_root(p)
    add_trust_pickle(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def _graph_stats(name: str) -> Any:
    """Known table first (no data needed); sbm specs from their parameters (E ≈ n·avg_degree)."""
    from costmodels import GRAPHS, GraphStats

    key = name.lower()
    if key in GRAPHS:
        return GRAPHS[key]
    if key.startswith("sbm:"):
        from codesign.graphs.synthetic import parse_sbm

        s = parse_sbm(name)
        return GraphStats(name, s.n, int(round(s.n * s.avg_degree)), s.features, s.classes,
                          source="estimated from the sbm parameters (E = n * avg_degree)")
    if key.startswith("file:"):
        from codesign.graphs.data import graph_summary, load_dataset

        g = graph_summary(load_dataset(name))
        return GraphStats(name, g["num_nodes"], g["num_edges"], g["num_features"], g["num_classes"],
                          source=f"read from the file (sha256 {str(g['checksum'])[:12]})")
    return None


def _rows(args: argparse.Namespace, resolved: Any) -> list[dict[str, Any]]:
    from costmodels import GNN_MODELS, IMAGES, GNNSpec, PhaseSpec, price_gnn_run, price_run
    from costmodels.cnn_resnets import cnn_model_names, cnn_model_workload
    from costmodels.errors import unknown
    from costmodels.runs import Phase

    device = resolved.profile
    gd, wd = 1.0 - args.graph_sparsity, 1.0 - args.weight_sparsity
    model = args.model.lower()
    if model in GNN_MODELS:
        stats = _graph_stats(args.dataset)
        if stats is None:
            raise unknown("graph dataset", args.dataset, [*GRAPHS_NAMES(), "sbm:n=...,avg_degree=...,..."])
        spec = GNNSpec(model, args.layers, args.hidden, args.heads)
        from codesign.dispatch.opcount import launches_for_estimate

        train, search, infer = launches_for_estimate(model, args.layers, args.heads, wd < 1.0, device)
        phases = [PhaseSpec("train_epoch", 1, gd, wd,
                            kernel_launches=train and train[0], host_ops=train and train[1]),
                  PhaseSpec("search_epoch", 1, 1.0, 1.0, trainable_graph=True, mask_update=True,  # GEBT, per-layer
                            graph_copies=args.layers, graph_training="alternate",
                            kernel_launches=search and search[0], host_ops=search and search[1])]
        run = price_gnn_run(spec, stats, phases, infer_graph_density=gd, infer_weight_density=wd,
                            device=device, aggregation_order=args.aggregation_order, dtype=args.dtype,
                            infer_launches=infer)
        pairs = [("inference", run.infer)] + [(p.name, p.per_epoch) for p in run.phases]
        batch = stats.num_nodes  # full-batch: one forward over every node
    elif model in cnn_model_names():
        from costmodels.stats import image_key

        key = image_key(args.dataset)
        if key not in IMAGES:
            raise unknown("image dataset", args.dataset, list(IMAGES))
        s = IMAGES[key]
        common = dict(width=args.width, batch=args.batch_size, weight_density=wd)
        train = cnn_model_workload(model, s.num_classes, s.channels, s.height, training=True, **common)
        infer = cnn_model_workload(model, s.num_classes, s.channels, s.height, training=False, **common)
        steps = math.ceil(s.num_train / args.batch_size)
        run = price_run([Phase("train_epoch", 1, train, "sgd", steps)], infer, device, args.dtype)
        pairs = [("inference", run.infer), ("train_epoch", run.phases[0].per_epoch)]
        batch = args.batch_size
    else:
        raise unknown("model", args.model, [*GNN_MODELS, *cnn_model_names()])
    from costmodels.launch import regime_of

    rows = []
    for phase, cost in pairs:
        row = {"device": resolved.name, "phase": phase, "per": "batch" if phase == "inference" else "epoch",
               "batch_size": batch, "profile_kind": resolved.kind, "profile_file": resolved.path}
        row.update({k: float(v) for k, v in cost.to_dict().items()})
        row["regime"] = regime_of(cost)  # compute-, bandwidth- or launch-bound (costmodels/launch.py)
        rows.append(row)
    return rows


def _gnn_models() -> tuple[str, ...]:
    from costmodels import GNN_MODELS

    return tuple(GNN_MODELS)


def GRAPHS_NAMES() -> list[str]:  # noqa: N802 - small helper for the error message
    from costmodels import GRAPHS

    return list(GRAPHS)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from costmodels import list_profiles
    from costmodels.analytical import FLOP_CONVENTION, MAC_CONVENTION

    check_fraction("--graph-sparsity", args.graph_sparsity)
    check_fraction("--weight-sparsity", args.weight_sparsity)
    if args.width <= 0 or args.batch_size < 1:
        raise CodesignError("--width must be > 0 and --batch-size >= 1")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise CodesignError(f"--data-root {args.data_root!r} is not a folder; give the folder that holds the "
                            "datasets, or leave it out (the built-in datasets' sizes need no files)")
    names = args.device or [n for n in list_profiles() if "/" not in n]
    if args.module:
        from .estimate_module import run_module

        return run_module(args, names)
    if not args.model:
        raise CodesignError("give --model NAME (gcn, gat, gin, sage, vgg16, ...) or --module FILE.py:FACTORY")
    from costmodels.profiles import resolve_profile

    resolved = [resolve_profile(name) for name in dict.fromkeys(names)]
    rows: list[dict[str, Any]] = []
    from dataclasses import replace

    from costmodels.templates import hardware_rows

    priced = hardware_rows([r.profile for r in resolved], args.hw)  # template devices at --hw
    for r, (profile, hw) in zip(resolved, priced):
        rows += [row | hw for row in _rows(args, replace(r, profile=profile))]
    for row in rows:
        row.update({"model": args.model, "dataset": args.dataset, "graph_sparsity": args.graph_sparsity,
                    "weight_sparsity": args.weight_sparsity, "aggregation_order": args.aggregation_order,
                    "dtype": args.dtype, "source": "estimate: analytical model on the device profile"})
    trace = None
    if args.node_order:
        from codesign.pipelines.traffic_report import TrafficQuery, traffic_rows

        query = TrafficQuery(args.model, args.dataset, args.node_order, args.layers, args.hidden, args.heads,
                             args.graph_sparsity, args.data_root, args.dtype, args.aggregation_order, args.trace_policy)
        trace = traffic_rows(query, [profile for profile, _ in priced])
    if args.json:
        emit_json(rows if trace is None else {"rows": rows, "trace": trace})
        return 0
    extra = [c for c in ("area_mm2", "power_w") if any(c in r for r in rows)]
    table = pd.DataFrame(rows)[COLUMNS + extra].set_index(["device", "phase"])
    fmt = {"flops": "{:.4g}", "macs": "{:.4g}", "dram_bytes": "{:.4g}", "memory_bytes": "{:.4g}",
           "latency_s": "{:.3e}", "energy_j": "{:.3e}", **{c: "{:.3g}" for c in extra}}
    for col, f in fmt.items():  # area and power exist only for template chips: "-" on the other devices
        table[col] = table[col].map(lambda v, f=f: "-" if v is None or v != v else f.format(v))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string())
    what = ("one full-graph forward (all nodes as one batch)" if args.model.lower() in _gnn_models()
            else f"one batch of {args.batch_size} images")
    print(f"per: inference = {what}; train_epoch/search_epoch = one epoch over the training set")
    print("profiles: " + "; ".join(r.describe() for r in resolved))
    print(f"estimates from the analytical model ({args.aggregation_order}, {args.dtype}); {FLOP_CONVENTION}; "
          f"{MAC_CONVENTION}; units: FLOP, MAC, B, s, J")
    if trace is not None:
        print(pd.DataFrame(trace).drop(columns=["source"]).to_string(index=False, float_format="{:.4g}".format))
        print("aggregation gather bytes (forward) from an exact trace of the edge list, beside ops.Aggregate's "
              "closed form")
    return 0
