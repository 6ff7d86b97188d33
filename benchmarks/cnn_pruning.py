"""CNN pruning benchmark: EB / spline-EB / spline tickets against dense, network slimming and random.

CPU-scale preset (default): VGG-11 at width 0.25 on a seeded Fashion-MNIST training subset, SGD
batch 128, the papers' step schedule scaled to ``--epochs``, channel sparsity p in {0.3, 0.5, 0.7}.
For every (method, p) it reports test accuracy (full 10k test set), the ticket epoch, the achieved
channel sparsity, the forward-FLOP reduction, training FLOPs in the EB convention relative to dense
(analytical estimate) and the measured wall time of the whole run (search + removal + retrain).

Default grid: 1 seed (about 15 min on 2 shared cores). ``--seeds 3`` (or ``--full``) runs the
3-seed x 3-ratio grid. Last line: one JSON object with an entry per (method, p).

    python benchmarks/cnn_pruning.py [--seeds 3] [--ratios 0.3 0.5 0.7] [--epochs 20] [--train-subset 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd
from tqdm import tqdm

from codesign.cnn.pipeline import CNNTrainConfig, train

PRUNING = ("eb", "spline-eb", "spline", "slimming", "random")
SEARCH = ("eb", "spline-eb", "spline")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="vgg11")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--train-subset", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--seeds", type=int, default=1, help="number of seeds (0..n-1)")
    ap.add_argument("--full", action="store_true", help="the 3-seed x 3-ratio grid")
    ap.add_argument("--methods", nargs="+", default=list(PRUNING), choices=list(PRUNING))
    ap.add_argument("--probe-grid", type=int, default=32)
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    seeds = list(range(3 if args.full else args.seeds))
    base = dict(model=args.model, dataset=args.dataset, width=args.width, epochs=args.epochs,
                train_subset=args.train_subset, batch_size=args.batch_size, probe_grid=args.probe_grid,
                data_root=args.data_root, progress=False)
    jobs = [("dense", 0.0, s) for s in seeds] + [(m, p, s) for s in seeds for p in args.ratios for m in args.methods]
    rows = []
    t0 = time.perf_counter()
    for method, p, seed in tqdm(jobs, desc="cnn runs", file=sys.stderr, disable=not sys.stderr.isatty()):
        r = train(CNNTrainConfig(method=method, seed=seed, channel_sparsity=p, **base))
        rows.append({"method": method, "p": p, "seed": seed, "acc": 100 * r["test_accuracy"],
                     "dense_acc_at_ticket": (None if r["dense_accuracy_at_ticket"] is None
                                             else 100 * r["dense_accuracy_at_ticket"]),
                     "eb_epoch": r["eb_epoch"], "eb_found": r["eb_found"], "sparsity": r["channel_sparsity"],
                     "flop_red": 100 * r["forward_flops"]["reduction"],
                     "train_flops_eb": r["eb_convention"]["train_flops"], "train_flops": r["cost"]["train_flops"],
                     "wall_s": r["wall_s"]})
        print(f"{method:9s} p={p:.1f} seed={seed} acc={rows[-1]['acc']:.2f}% eb={r['eb_epoch']} "
              f"wall={r['wall_s']:.0f}s", file=sys.stderr)
    df = pd.DataFrame(rows)
    dense_flops = df[df.method == "dense"].train_flops_eb.mean()
    df["train_flops_rel"] = df.train_flops_eb / dense_flops
    agg = df.groupby(["method", "p"], sort=False).agg(
        acc=("acc", "mean"), acc_std=("acc", "std"), eb_epoch=("eb_epoch", "mean"), sparsity=("sparsity", "mean"),
        flop_red=("flop_red", "mean"), train_flops_rel=("train_flops_rel", "mean"), wall_s=("wall_s", "mean"),
        wall_max_s=("wall_s", "max"), runs=("acc", "size"))
    pd.set_option("display.width", 160)
    print(f"\n{args.model} width {args.width} on {args.dataset} ({args.train_subset} train images), {args.epochs} "
          f"epochs, batch {args.batch_size}, seeds {seeds}. acc = test top-1 % (measured, mean over seeds); "
          f"flop_red = forward FLOP reduction %; train_flops_rel = training FLOPs / dense (EB convention, "
          f"estimated); wall = measured seconds per run on this machine.")
    print(agg.round(3).to_string())
    summary = _winners(agg, args.ratios)
    for line in summary["lines"]:
        print(line)
    limit_ok = bool((agg.loc[[m for m in SEARCH if m in args.methods], "wall_max_s"] <= 300).all())
    print(f"eb / spline-eb / spline each finished in <= 5 min: {limit_ok} "
          f"(max {agg.loc[[m for m in SEARCH if m in args.methods], 'wall_max_s'].max():.0f} s); "
          f"total {time.perf_counter() - t0:.0f} s")
    out = {
        "preset": {k: v for k, v in base.items() if k != "progress"} | {"seeds": seeds, "ratios": args.ratios},
        "results": {f"{m}@{p:g}": {k: (None if pd.isna(v) else round(float(v), 4)) for k, v in row.items()}
                    for (m, p), row in agg.iterrows()},
        "winners": summary["winners"],
        "search_methods_within_5min": limit_ok,
        "total_wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))
    return out


def _winners(agg: pd.DataFrame, ratios: list[float]) -> dict:
    """Per p: the most accurate pruning method and the one with the fewest training FLOPs."""
    lines, winners = [], {}
    dense_acc = float(agg.loc[("dense", 0.0), "acc"])
    for p in ratios:
        sub = agg[[mp[1] == p and mp[0] != "dense" for mp in agg.index]]
        if sub.empty:
            continue
        best = sub.acc.idxmax()[0]
        cheap = sub.train_flops_rel.idxmin()[0]
        winners[f"{p:g}"] = {"most_accurate": best, "cheapest_training": cheap}
        lines.append(f"p={p:g}: most accurate {best} ({sub.acc.max():.2f} % vs dense {dense_acc:.2f} %); "
                     f"cheapest training {cheap} ({sub.train_flops_rel.min():.2f} x dense FLOPs)")
    return {"lines": lines, "winners": winners}


if __name__ == "__main__":
    main()
