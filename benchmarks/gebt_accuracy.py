"""GEBT acceptance numbers: accuracy over seeds, early-bird epochs, FLOP savings versus SGCN.

    python benchmarks/gebt_accuracy.py [--seeds 5] [--datasets cora,citeseer] [--data-root DIR]

Runs (GCN, public Planetoid splits, seeds 0..N-1): dense; gebt at (p_g, p_w) = (0.2, 0.5) with the
detector criterion ``mean`` (default) and ``sum``, and with one graph shared by both layers
(``--graph-sharing shared``; the default is one per layer); gebt and random at (0.6, 0.9); gebt at
(0.2, 0.9); geb and sgcn at p_g = 0.2. Accuracies are measured (test accuracy at the best-validation epoch of
the final phase); FLOPs are analytical (costmodels.price_gnn_run, every phase, search epochs as run).
Prints one table per dataset, then the savings, and as the last line one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pandas as pd  # noqa: E402

from codesign.graphs.pipeline import GraphTrainConfig, train  # noqa: E402

RUNS = [  # (label, method, p_g, p_w, criterion, graph sharing)
    ("dense", "dense", 0.0, 0.0, "mean", "per-layer"),
    ("gebt 0.2/0.5 mean", "gebt", 0.2, 0.5, "mean", "per-layer"),
    ("gebt 0.2/0.5 sum", "gebt", 0.2, 0.5, "sum", "per-layer"),
    ("gebt 0.2/0.5 mean shared", "gebt", 0.2, 0.5, "mean", "shared"),
    ("gebt 0.2/0.9 mean", "gebt", 0.2, 0.9, "mean", "per-layer"),
    ("gebt 0.6/0.9 mean", "gebt", 0.6, 0.9, "mean", "per-layer"),
    ("random 0.6/0.9", "random", 0.6, 0.9, "mean", "per-layer"),
    ("geb 0.2 mean", "geb", 0.2, 0.0, "mean", "per-layer"),
    ("sgcn 0.2", "sgcn", 0.2, 0.0, "mean", "per-layer"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first..first+N-1 (default 0)")
    ap.add_argument("--datasets", default="cora,citeseer")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    rows = []
    start = time.perf_counter()
    for dataset in args.datasets.split(","):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for label, method, pg, pw, crit, sharing in RUNS:
                cfg = GraphTrainConfig(dataset=dataset, method=method, seed=seed, graph_sparsity=pg,
                                       weight_sparsity=pw, criterion=crit, graph_sharing=sharing,
                                       data_root=args.data_root)
                r = train(cfg, progress=False)
                rows.append({"dataset": dataset, "run": label, "seed": seed, "test_acc": 100 * r["test_accuracy"],
                             "eb_epoch": r["eb_epoch"], "search_epochs": r["search_epochs"],
                             "graph_sparsity": r["graph_sparsity"], "weight_sparsity": r["weight_sparsity"],
                             "train_gflops": r["cost"]["train_flops"] / 1e9,
                             "infer_mflops": r["cost"]["infer_flops"] / 1e6,
                             "infer_mmacs_paper": r["cost_paper_order"]["infer_macs"] / 1e6,
                             "train_gmacs_paper": r["cost_paper_order"]["train_macs"] / 1e9,
                             "wall_s": r["wall_s"]})
                print(f"{dataset} seed {seed} {label:<20} acc {rows[-1]['test_acc']:.1f} eb {r['eb_epoch']}",
                      file=sys.stderr)
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    headline: dict[str, object] = {"seeds": args.seeds, "first_seed": args.first_seed,
                                   "bench_wall_s": round(time.perf_counter() - start, 1)}
    for dataset, part in df.groupby("dataset", sort=False):
        table = part.groupby("run", sort=False).agg(
            acc_mean=("test_acc", "mean"), acc_std=("test_acc", "std"),
            eb_epochs=("eb_epoch", lambda s: " ".join("-" if pd.isna(v) else str(int(v)) for v in s)),
            search_epochs=("search_epochs", "mean"),
            gs=("graph_sparsity", "mean"), ws=("weight_sparsity", "mean"),
            train_gflops=("train_gflops", "mean"), infer_mflops=("infer_mflops", "mean"),
            infer_mmacs_paper=("infer_mmacs_paper", "mean"), wall_s=("wall_s", "mean"))
        seeds = f"seeds {args.first_seed}..{args.first_seed + args.seeds - 1}"
        print(f"\n== {dataset} (GCN, {seeds}; accuracy measured %, FLOPs analytical) ==")
        print(table.round(3).to_string())
        sg = table.loc["sgcn 0.2"]
        out: dict[str, object] = {"dense_acc": round(table.loc["dense", "acc_mean"], 2)}
        for label in (run[0] for run in RUNS if run[0] not in ("dense", "sgcn 0.2")):
            t = table.loc[label]
            key = label.replace(" ", "_").replace("/", "_").replace(".", "")
            out[f"{key}_acc"] = round(t["acc_mean"], 2)
            if label.startswith("ge"):
                eb = [int(v) for v in part[part.run == label].eb_epoch.dropna()]
                out[f"{key}_eb"] = eb
                out[f"{key}_eb_fired"] = f"{len(eb)}/{args.seeds}"
                out[f"{key}_train_saving_vs_sgcn_pct"] = round(100 * (1 - t["train_gflops"] / sg["train_gflops"]), 1)
                out[f"{key}_infer_saving_vs_sgcn_pct"] = round(100 * (1 - t["infer_mflops"] / sg["infer_mflops"]), 1)
                out[f"{key}_infer_saving_vs_sgcn_paper_order_pct"] = round(
                    100 * (1 - t["infer_mmacs_paper"] / sg["infer_mmacs_paper"]), 1)
        print("\nsavings vs sgcn (analytical; FLOPs transform-first as run, 'paper_order' = aggregate-first MACs):")
        for k, v in out.items():
            print(f"  {k:<48} {v}")
        headline[dataset] = out
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
