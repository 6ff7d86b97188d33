"""Benchmark of the main job: `codesign search` on Cora (GCN, train-energy priced on h100).

Runs the real search (training on this machine's CPU) in a temporary run folder and reports the
wall time of the whole search (target: 30 trials <= 10 min on 2 cores), the time per trial by
method, the best feasible trial and the Pareto front size; plus the search machinery's own
overhead per trial (sqlite storage, TPE, attributes) measured with a zero-cost fake evaluator.

    python benchmarks/search_cora.py [--trials 30] [--budget 8J] [--device h100] [--epochs 100]

Last line: one JSON object with the headline numbers (all measured here, wall-clock seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def overhead_per_trial(n: int = 30) -> float:
    """Seconds per trial of the search machinery alone (fake evaluator, embedded sqlite)."""
    from search import Evaluation, Param, SearchConfig, SearchSpace, parse_metric, run_search
    from search.storage import embedded_url

    space = SearchSpace((Param("method", choices=("a", "b")), Param("x", low=0.0, high=1.0)))
    metric = parse_metric("train-energy")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SearchConfig("overhead", embedded_url(tmp), n, metric)
        t0 = time.perf_counter()
        run_search(cfg, space, lambda p, s: Evaluation(val_accuracy=1 - p["x"] ** 2, cost=1 + p["x"]))
        return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--budget", default="8J")
    ap.add_argument("--device", default="h100")
    ap.add_argument("--epochs", type=int, default=100)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import pandas as pd

    from codesign.cli import main as cli

    overhead = overhead_per_trial()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        rc = cli(["search", "--model", "gcn", "--dataset", "cora", "--budget", args.budget, "--metric",
                  "train-energy", "--device", args.device, "--trials", str(args.trials), "--epochs",
                  str(args.epochs), "--out", str(out)])
        total = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(rc)
        summary = json.loads((out / "summary.json").read_text())
        trials = pd.read_csv(out / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]  # trained trials (screened ones are PRUNED rows)
    by_method = done.groupby("param.method").agg(trials=("number", "size"), wall_s=("wall_s", "mean"),
                                                 val_acc=("val_accuracy", "mean"), cost_j=("cost", "mean"))
    print(f"\ncodesign search: gcn / cora, train-energy on {args.device}, budget {args.budget}, "
          f"{args.trials} trials, epochs cap {args.epochs} (measured on this machine)")
    print(by_method.round(3).to_string())
    best = summary["best"] or {}
    rows = [("total wall time [s]", f"{total:.1f}"), ("per trial [s]", f"{total / args.trials:.2f}"),
            ("search overhead per trial [s] (fake evaluator)", f"{overhead:.4f}"),
            ("trained trials", summary["n_trials"]), ("feasible trials", summary["n_feasible"]),
            ("screened before training", summary.get("n_screened")),
            ("Pareto front size", len(summary["pareto"])),
            ("best feasible val acc", best.get("accuracy")), ("best feasible cost [J]", best.get("cost"))]
    for k, v in rows:
        print(f"{k:<48} {v}")
    print(json.dumps({
        "benchmark": "search_cora", "trials": args.trials, "device": args.device, "budget": args.budget,
        "epochs_cap": args.epochs, "total_wall_s": round(total, 2), "per_trial_s": round(total / args.trials, 3),
        "overhead_per_trial_s": round(overhead, 4), "complete_trials": summary["n_trials"],
        "feasible_trials": summary["n_feasible"], "screened_trials": summary.get("n_screened"),
        "pareto_size": len(summary["pareto"]),
        "best_val_accuracy": best.get("accuracy"), "best_test_accuracy": best.get("test_accuracy"),
        "best_cost_j": best.get("cost"), "best_feasible": best.get("feasible"), "within_10_min": total <= 600,
    }))


if __name__ == "__main__":
    main()
