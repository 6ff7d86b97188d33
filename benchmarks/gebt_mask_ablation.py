"""Where gebt's accuracy gap at p_g = 0.2 comes from: the same ticket retrained on different graph masks.

    python benchmarks/gebt_mask_ablation.py [--seeds 5] [--datasets cora,citeseer] [--data-root DIR]

Per dataset and seed (GCN, public Planetoid split, p_g = 0.2, p_w = 0.5, default detector):

* ``ticket + <mask>``: run gebt's search once (``methods.search.search``), then retrain the ticket
  (its weights and weight mask, 100 epochs, best-validation epoch) on each graph mask below;
* ``dense-train + <mask>``: a fresh dense GCN (no weight mask) trained 100 epochs on the mask, i.e.
  what removing those edges costs a plain GCN.

Masks (each layer keeps exactly ``E/2 - round(0.2 E/2)`` undirected edges, except ``none``; only gebt's
sees labels - the training labels, through its search loss):

* ``none``: the full graph;  ``gebt``: the ticket's own masks (learned edge values ``theta``, one
  mask per layer, ties by ``min-degree``);  ``random``: uniform (seeded), one mask for both layers;
  ``random per layer``: an independent uniform mask for each layer;
* ``norm``: keep the largest ``1 / sqrt((d_u + 1)(d_v + 1))`` (prune hub-hub edges first);
* ``resistance``: keep the largest ``1 / (d_u + 1) + 1 / (d_v + 1)`` (the degree term of the
  effective resistance);
* ``min-degree``: keep the smallest ``min(d_u, d_v)``, then the smallest ``max(d_u, d_v)`` (prune only
  edges whose both ends keep many neighbours; gebt's default tie-break).

Accuracies are measured test accuracy (%), mean over seeds. Prints one table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from codesign.graphs.config import GraphTrainConfig  # noqa: E402
from codesign.graphs.data import GraphData, load_dataset  # noqa: E402
from codesign.graphs.masks import random_mask, topk_mask  # noqa: E402
from codesign.graphs.methods.common import RunContext, fit  # noqa: E402
from codesign.graphs.methods.search import edge_tiebreak, search  # noqa: E402

P_G, P_W, EPOCHS = 0.2, 0.5, 100


def structural_scores(data: GraphData) -> dict[str, torch.Tensor]:
    """Label-free edge scores (larger = kept first) on the undirected edges ``[E/2]``: gebt's tie-breaks."""
    return {kind: edge_tiebreak(data, kind, seed=0) for kind in ("norm", "resistance", "min-degree")}


def one_seed(data: GraphData, seed: int, data_root: str | None) -> list[dict[str, object]]:
    cfg = GraphTrainConfig(dataset=data.name, seed=seed, graph_sparsity=P_G, weight_sparsity=P_W,
                           data_root=data_root)
    ctx = RunContext(cfg, data, torch.device("cpu"), progress=False)
    found = search(ctx, ctx.new_model(), EPOCHS, "search", train_weights=True, weight_ratio=P_W)
    s = structural_scores(data)
    gen = torch.Generator().manual_seed(seed)
    masks = {
        "none": None,
        "gebt": found.graph_mask,
        "random": random_mask(data.num_undirected, P_G, gen),
        "random per layer": torch.stack([random_mask(data.num_undirected, P_G, gen) for _ in range(cfg.layers)]),
        "norm": topk_mask(s["norm"], P_G),
        "resistance": topk_mask(s["resistance"], P_G),
        "min-degree": topk_mask(s["min-degree"], P_G),
    }
    rows = []
    for name, mask in masks.items():
        model = ctx.new_model()
        model.load_state_dict(found.ticket_state)
        r = fit(ctx, model, EPOCHS, "retrain", mask, found.weight_masks)
        rows.append({"dataset": data.name, "seed": seed, "run": f"ticket + {name}", "test_acc": 100 * r.test_accuracy,
                     "eb_epoch": found.epochs})
        if name in ("none", "random", "random per layer", "min-degree"):
            r = fit(ctx, ctx.new_model(), EPOCHS, "dense", mask, None)
            rows.append({"dataset": data.name, "seed": seed, "run": f"dense-train + {name}",
                         "test_acc": 100 * r.test_accuracy, "eb_epoch": None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--datasets", default="cora,citeseer")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args()
    start = time.perf_counter()
    rows: list[dict[str, object]] = []
    for dataset in args.datasets.split(","):
        data = load_dataset(dataset, args.data_root)
        for seed in range(args.seeds):
            rows += one_seed(data, seed, args.data_root)
            print(f"{dataset} seed {seed} done", file=sys.stderr)
    df = pd.DataFrame(rows)
    table = df.pivot_table(index="run", columns="dataset", values="test_acc", aggfunc="mean", sort=False)
    pd.set_option("display.width", 200)
    print(f"\n== GCN, p_g = {P_G}, p_w = {P_W}, {args.seeds} seeds: measured test accuracy % (mean) ==")
    print(table.round(2).to_string())
    headline: dict[str, object] = {"seeds": args.seeds, "bench_wall_s": round(time.perf_counter() - start, 1)}
    for dataset in table.columns:
        headline[dataset] = {run: round(float(v), 2) for run, v in table[dataset].items()}
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
