"""Benchmark: what screening by the cost model buys the README main job.

Runs ``codesign search --model gcn --dataset cora --budget 8J --metric train-energy --device h100
--trials 30`` with seeds 0-2, each once with screening (the default) and once with ``--no-screen``,
each in a fresh process, and compares: training time of the trained trials (measured here, summed
per run, including runs screening stopped part-way), the fraction of trained (complete) trials over
budget and the same fraction counting the stopped runs as over-budget trained ones, the best
feasible validation / test accuracy, the dense reference's test accuracy, the screened count and
the training time screening is estimated to have saved. Costs are estimates of the analytical model
on the h100 profile; accuracies and wall times are measured on this machine. The run folders stay in ``--out`` (default
``runs/search_efficiency``) with their plots; ``both-seed0`` draws the two seed-0 runs on one plot.

    python benchmarks/search_efficiency.py [--quick] [--seeds 0 1 2] [--jobs 2] [--out DIR] [--resume]

``--quick``: 10 trials with a 40-epoch phase cap (the method and the numbers' meaning are unchanged,
the accuracies are lower). Last line: one JSON object with the headline numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAIN_JOB = ["--model", "gcn", "--dataset", "cora", "--budget", "8J", "--metric", "train-energy", "--device", "h100"]


def run_one(out: Path, seed: int, screen: bool, trials: int, epochs: int | None) -> dict:
    """One search in a fresh process; returns its numbers (from summary.json and trials.csv)."""
    import pandas as pd

    from search.export import stopped_frame

    args = [sys.executable, "-m", "codesign", "search", *MAIN_JOB, "--trials", str(trials), "--seed", str(seed),
            "--out", str(out), "--json"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    if not screen:
        args.append("--no-screen")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"search failed ({out}): {proc.stderr.strip().splitlines()[-1:]}")
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    df = pd.read_csv(out / "trials.csv")
    done = df[df["state"] == "COMPLETE"]
    feasible = done[done["feasible"].astype(bool)]
    stopped = stopped_frame(df)
    best, ref = summary.get("best") or {}, summary.get("reference") or {}
    spent = float(done["wall_s"].sum()) + float(stopped["wall_s"].sum())  # stopped runs trained a while too
    return {
        "seed": seed, "screen": screen, "search_wall_s": wall, "trained": len(done), "feasible": len(feasible),
        "screened": int(summary.get("n_screened") or 0), "stopped": len(stopped),
        "duplicates": int(summary.get("n_duplicates") or 0),
        "train_wall_s": spent,
        "train_s_per_feasible": spent / max(len(feasible), 1),
        "over_budget_fraction": 1 - len(feasible) / max(len(done), 1),
        "over_budget_fraction_with_stopped": 1 - len(feasible) / max(len(done) + len(stopped), 1),
        "best_val": best.get("accuracy"), "best_test": best.get("test_accuracy"),
        "best_method": (best.get("params") or {}).get("method"), "best_cost_j": best.get("cost"),
        "dense_test": ref.get("test_accuracy"), "dense_cost_j": ref.get("cost"),
        "saved_s_estimate": summary.get("screening_saved_train_s"), "answer": summary.get("answer"),
    }


def _mean(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 trials, 40-epoch phase cap")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="searches run at once (each one process, one thread)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "search_efficiency"))
    ap.add_argument("--resume", action="store_true",
                    help="keep run folders already in --out: each search tops its study up (a killed benchmark "
                         "resumes; search_wall_s then counts only this call)")
    args = ap.parse_args()
    trials, epochs = (10, 40) if args.quick else (30, None)
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    plan = [(root / f"{'screened' if screen else 'unscreened'}-seed{seed}", seed, screen)
            for seed in args.seeds for screen in (True, False)]
    for out, _, _ in plan:
        if out.exists() and not args.resume:
            import shutil

            shutil.rmtree(out)  # a fresh study each time (this benchmark's own folders only)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda p: run_one(p[0], p[1], p[2], trials, epochs), plan))
    both = root / f"both-seed{args.seeds[0]}"
    if both.exists():
        import shutil

        shutil.rmtree(both)
    subprocess.run([sys.executable, "-m", "codesign", "pareto", str(plan[0][0]), str(plan[1][0]), "--out", str(both)],
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, cwd=ROOT, check=True)

    print(f"\ncodesign search {' '.join(MAIN_JOB)} --trials {trials}" + (f" --epochs {epochs}" if epochs else "")
          + " (wall times measured on this machine; costs estimated on the h100 profile)")
    cols = ["seed", "screen", "trained", "feasible", "screened", "stopped", "duplicates", "train_wall_s",
            "train_s_per_feasible", "over_budget_fraction", "over_budget_fraction_with_stopped", "best_val",
            "best_test", "dense_test", "best_method", "best_cost_j", "saved_s_estimate", "search_wall_s"]
    print("  ".join(f"{c:>12}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]:>12.3f}" if isinstance(r[c], float) else f"{r[c]!s:>12}" for c in cols))
    on = [r for r in rows if r["screen"]]
    off = [r for r in rows if not r["screen"]]
    for r in on:
        print(f"seed {r['seed']}, screened: {r['answer']}")
    gaps = [100 * (r["dense_test"] - r["best_test"]) for r in on if r["best_test"] is not None and r["dense_test"]]
    result = {
        "benchmark": "search_efficiency", "trials": trials, "epochs_cap": epochs or 100, "seeds": args.seeds,
        "train_wall_s_screened": _mean(on, "train_wall_s"), "train_wall_s_unscreened": _mean(off, "train_wall_s"),
        "train_s_per_feasible_trial_screened": _mean(on, "train_s_per_feasible"),
        "train_s_per_feasible_trial_unscreened": _mean(off, "train_s_per_feasible"),
        "over_budget_trained_fraction_screened": _mean(on, "over_budget_fraction"),
        "over_budget_trained_fraction_unscreened": _mean(off, "over_budget_fraction"),
        "over_budget_fraction_counting_stopped_screened": _mean(on, "over_budget_fraction_with_stopped"),
        "stopped_per_run": _mean(on, "stopped"),
        "best_val_screened": _mean(on, "best_val"), "best_val_unscreened": _mean(off, "best_val"),
        "best_test_screened": _mean(on, "best_test"), "best_test_unscreened": _mean(off, "best_test"),
        "dense_reference_test": _mean(on, "dense_test"),
        "best_test_gap_to_dense_points_screened": sum(gaps) / len(gaps) if gaps else None,
        "screened_per_run": _mean(on, "screened"), "saved_train_s_estimate_per_run": _mean(on, "saved_s_estimate"),
        "search_wall_s_screened": _mean(on, "search_wall_s"), "search_wall_s_unscreened": _mean(off, "search_wall_s"),
        "measured_under": "this machine (times are contention-dependent)",
    }
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
