"""2:4 tickets against unstructured ones: test accuracy over seeds (issue #20: within 1.5 points).

    python benchmarks/weight_pattern.py [--seeds 3] [--dataset cora] [--runs gebt:0.2:0.5,random:0.0:0.5]

For each run (method : graph sparsity : weight sparsity) and seed, trains the ticket twice with
``--weight-pattern unstructured`` and ``2:4`` (everything else the same: GCN, public split) and prints
the test accuracies (best-validation epoch of the final phase), the per-seed gap (unstructured - 2:4)
and its mean and sample standard deviation. The gap is paired by seed (same data split, same
initial weights). Accuracies only: the numbers do not depend on the machine's load (a run is
deterministic per seed on CPU). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_POINTS = 1.5


def main(argv: list[str] | None = None) -> int:
    from codesign.graphs.pipeline import GraphTrainConfig, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--dataset", default="cora")
    ap.add_argument("--runs", default="gebt:0.2:0.5,random:0.0:0.5",
                    help="comma-separated method:graph_sparsity:weight_sparsity")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    summary = []
    print(f"{'run':<18} {'seed':>4} {'unstructured':>12} {'2:4':>7} {'gap':>6}  {'2:4 sparsity':>12}")
    for spec in args.runs.split(","):
        method, pg, pw = spec.split(":")
        gaps = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            acc = {}
            for pattern in ("unstructured", "2:4"):
                r = train(GraphTrainConfig(dataset=args.dataset, method=method, seed=seed, graph_sparsity=float(pg),
                                           weight_sparsity=float(pw), weight_pattern=pattern,
                                           data_root=args.data_root), progress=False)
                acc[pattern] = 100 * r["test_accuracy"]
                if pattern == "2:4":
                    sparsity = r["weight_sparsity"]
            gaps.append(acc["unstructured"] - acc["2:4"])
            print(f"{spec:<18} {seed:>4} {acc['unstructured']:12.2f} {acc['2:4']:7.2f} {gaps[-1]:+6.2f}  "
                  f"{sparsity:12.3f}")
        mean, sd = statistics.mean(gaps), statistics.stdev(gaps) if len(gaps) > 1 else 0.0
        print(f"{spec:<18} mean gap {mean:+.2f} points (sd {sd:.2f}, {len(gaps)} seeds); target within "
              f"{TARGET_POINTS} points")
        summary.append({"run": spec, "dataset": args.dataset, "seeds": len(gaps), "gaps": gaps, "mean_gap": mean,
                        "sd_gap": sd, "within_target": mean <= TARGET_POINTS})
    print(json.dumps({"runs": summary, "seconds": round(time.perf_counter() - start, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
