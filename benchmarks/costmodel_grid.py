"""Throughput of the analytical cost model over a (model, dataset, graph sparsity, weight sparsity,
device) grid - the search prices thousands of candidates, so the model must be fast.

Each (model, dataset, device) cell is priced in one vectorised call over its whole sparsity grid:
a 100-epoch retraining run on the ticket plus its inference, all six metrics (FLOPs, MACs, DRAM
bytes, memory, latency, energy), with the counted kernel launches of a weight-masked training step
and of an inference on devices that run PyTorch (``codesign estimate``'s and the search's basis).
Run: ``python benchmarks/costmodel_grid.py [--steps 25]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codesign.dispatch.opcount import launches_for_estimate  # noqa: E402
from costmodels import GNNSpec, PhaseSpec, graph_stats, list_profiles, load_profile, price_gnn_run  # noqa: E402

MODELS = ("gcn", "gat", "gin", "sage")
DATASETS = ("cora", "citeseer", "pubmed", "actor", "ogbn-arxiv", "reddit")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=25, help="sparsity levels per axis (grid = steps^2 per cell)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    devices = [load_profile(n) for n in list_profiles() if "/" not in n]
    levels = np.linspace(0.0, 0.98, args.steps)
    gs, ws = (a.ravel() for a in np.meshgrid(levels, levels))
    gd, wd = 1.0 - gs, 1.0 - ws
    cells = [(m, d, dev) for m in MODELS for d in DATASETS for dev in devices]
    points = len(cells) * gs.size
    launches = {}  # (model, device) -> (train kernels, ops), (inference kernels, ops); None: the operators' own
    for model in MODELS:
        spec = GNNSpec(model)
        for dev in devices:
            train, _, infer = launches_for_estimate(model, spec.layers, spec.heads, True, dev)
            launches[(model, dev.name)] = (train or (None, None), infer)

    best = float("inf")
    results = {}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for model, dataset, dev in cells:
            (kernels, ops), infer = launches[(model, dev.name)]
            run = price_gnn_run(GNNSpec(model), graph_stats(dataset),
                                [PhaseSpec("retrain", 100, gd, wd, kernel_launches=kernels, host_ops=ops)],
                                infer_graph_density=gd, infer_weight_density=wd, device=dev, infer_launches=infer)
            results[(model, dataset, dev.name)] = run
        best = min(best, time.perf_counter() - t0)

    # Sanity: the vectorised grid equals point-by-point pricing on a few samples.
    rng = np.random.default_rng(0)
    (kernels, ops), infer = launches[("gat", devices[0].name)]
    for idx in rng.choice(gs.size, 5, replace=False):
        one = price_gnn_run(GNNSpec("gat"), graph_stats("pubmed"),
                            [PhaseSpec("retrain", 100, gd[idx], wd[idx], kernel_launches=kernels, host_ops=ops)],
                            infer_graph_density=gd[idx], infer_weight_density=wd[idx], device=devices[0],
                            infer_launches=infer)
        grid = results[("gat", "pubmed", devices[0].name)]
        assert np.isclose(grid.train.energy_j[idx], one.train.energy_j), "vectorised != scalar"

    rows = []
    for dev in devices:
        cora = results[("gcn", "cora", dev.name)]
        rows.append({"device": dev.name,
                     "gcn/cora 0%/0% train J": float(cora.train.energy_j[0]),
                     "gcn/cora 98%/98% train J": float(cora.train.energy_j[-1]),
                     "saving %": 100 * (1 - float(cora.train.energy_j[-1] / cora.train.energy_j[0])),
                     "gcn/cora 0%/0% infer s": float(cora.infer.latency_s[0])})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    pps = points / best
    print(f"\n{points} grid points ({len(cells)} model x dataset x device cells x {gs.size} sparsity pairs) "
          f"priced in {best:.3f} s (best of {args.repeats}): {pps:,.0f} points/s (estimates; analytical model)")
    print(json.dumps({"points": points, "seconds": round(best, 4), "points_per_second": round(pps)}))


if __name__ == "__main__":
    main()
