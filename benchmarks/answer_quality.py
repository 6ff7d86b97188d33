"""Benchmark: is the search's answer the one a user should act on? (regret over fresh seeds)

Runs six small graph searches (Cora and CiteSeer; train-energy, train-flops, infer-flops;
h100 and gcn-accelerator; budgets set as a fraction of the dense reference's predicted cost, so that
dense should win on the launch-bound H100 train-energy searches and a sparse ticket should on the
unstructured accelerator's FLOP searches). Each search's pick is then retrained on ``FRESH`` (5) fresh
seeds (never a trial's or a confirmation's seed), beside its rivals: every other trained configuration
that fitted the budget in the search, capped at the ``RIVALS`` (5) best by search-time validation
accuracy, retrained on the same seeds. Per search: the pick's mean test accuracy, the best rival's,
and the regret ``max(0, best rival - pick)`` in points (test accuracy x 100), with the paired standard
error of that difference (5 seeds measure it to about +-1 point on Cora), and the same regret on
validation accuracy (``val_regret_points``: what the search sees; a test regret with no validation
regret is validation and test disagreeing, which no rule that keeps test held out can see). The
fresh runs are cached in ``<search>/fresh.json``: a rerun with the same ``--out`` retrains nothing twice.

    python benchmarks/answer_quality.py [--confirm-seeds 3] [--trials 8] [--epochs 50] [--out runs/answer_quality]

Kept small for a 2-core machine: 8 trials per search, ``--epochs 50`` (the reference's length and the
ticket search's cap), ``train_epochs`` searched in 20..100.

Each search's row is also written to ``<out>/confirm<N>/<search>/answer_quality.json``, so the six can
run in parallel (``--only NAME``) and ``--summarize`` collects them. ``--confirm-seeds 0`` answers on
one seed per configuration (the search before its confirmation
stage), to show the difference. Accuracy does not depend on machine load; wall times printed are
this machine's. Last line: one JSON object with ``mean_regret_points`` and ``max_regret_points``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRESH = 5
RIVALS = 5
FRESH_SEED = 5_000_000  # fresh seeds: FRESH_SEED + j (trials use seed + slot, confirmation 1_000_000 + j)

# (name, dataset, metric, device, budget as a fraction of the dense reference's predicted cost, expected winner)
SEARCHES = [
    ("cora-train-energy-h100", "cora", "train-energy", "h100", 0.92, "dense"),
    ("citeseer-infer-flops-acc", "citeseer", "infer-flops", "gcn-accelerator", 0.3, "sparse"),
    ("cora-train-flops-acc", "cora", "train-flops", "gcn-accelerator", 1.0, "either"),
    ("citeseer-train-energy-h100", "citeseer", "train-energy", "h100", 0.92, "dense"),
    ("cora-infer-flops-acc", "cora", "infer-flops", "gcn-accelerator", 0.4, "sparse"),
    ("citeseer-train-flops-acc", "citeseer", "train-flops", "gcn-accelerator", 1.0, "either"),
]


def _evaluator(dataset: str, metric: str, device: str, epochs: int) -> Any:
    from codesign.pipelines.graph_search import GraphEvaluator
    from search import parse_metric

    return GraphEvaluator(model="gcn", dataset=dataset, metric=parse_metric(metric), device=device, epochs=epochs)


def _budget_text(dataset: str, metric: str, device: str, fraction: float, epochs: int) -> str:
    """``fraction`` x the dense reference's exact predicted cost, written in the metric's unit."""
    from search import parse_metric

    ev = _evaluator(dataset, metric, device, epochs)
    dense = ev.predict({"method": "dense", "graph_sparsity": 0.0, "weight_sparsity": 0.0, "threshold": None,
                        "train_epochs": epochs})
    return f"{fraction * dense.high:.4g} {parse_metric(metric).unit}"


def _study(out: Path) -> Any:
    import optuna

    from search.storage import embedded_url

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = embedded_url(out)
    name = optuna.get_all_study_summaries(url, include_best_trial=False)[0].study_name
    return optuna.load_study(study_name=name, storage=url)


def _retrain(ev: Any, params: dict[str, Any], cache: dict[str, list[float]]) -> list[list[float]]:
    """``[validation, test]`` accuracy (points) of ``params`` on each fresh seed; ``cache`` (written to
    ``<search>/fresh.json``) keeps the runs already made, so a rerun of the benchmark retrains nothing twice."""
    from search.screening import params_key

    out = []
    for j in range(FRESH):
        key = f"{params_key(params)}:{FRESH_SEED + j}"
        if key not in cache:
            e = ev(dict(params), FRESH_SEED + j)
            cache[key] = [100 * float(e.val_accuracy), 100 * float(e.test_accuracy)]
        out.append(cache[key])
    return out


def _paired_se(a: list[float], b: list[float]) -> float:
    """Standard error of the mean of the per-seed differences ``b - a`` (the seeds are shared)."""
    d = [y - x for x, y in zip(a, b, strict=True)]
    return statistics.stdev(d) / len(d) ** 0.5


def one_search(spec: tuple, args: argparse.Namespace) -> dict[str, Any]:
    from codesign.cli import main as cli
    from search.screening import params_key

    name, dataset, metric, device, fraction, expect = spec
    budget = _budget_text(dataset, metric, device, fraction, args.epochs)
    out = Path(args.out) / f"confirm{args.confirm_seeds}" / name
    t0 = time.perf_counter()
    rc = cli(["search", "--model", "gcn", "--dataset", dataset, "--metric", metric, "--device", device,
              "--budget", budget, "--trials", str(args.trials), "--epochs", str(args.epochs), "--threads", "1",
              "--space", f"train_epochs=20:{args.max_train_epochs}",
              "--confirm-seeds", str(args.confirm_seeds), "--out", str(out)])
    search_s = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"search {name} failed (exit {rc})")
    summary = json.loads((out / "summary.json").read_text())
    pick = summary["best"]
    if pick is None:
        return {"search": name, "budget": budget, "pick": None, "regret_points": None}
    study = _study(out)
    trials = study.get_trials(deepcopy=False)
    pick_params = next(t.user_attrs["params"] for t in trials if t.number == pick["number"])
    fits = sorted((t for t in trials if t.state.name == "COMPLETE"
                   and t.user_attrs.get("feasible") and params_key(t.user_attrs["params"]) != params_key(pick_params)),
                  key=lambda t: -t.user_attrs["val_accuracy"])
    rivals, seen = [], set()
    for t in fits:
        key = params_key(t.user_attrs["params"])
        if key not in seen and len(rivals) < RIVALS:
            seen.add(key)
            rivals.append((t.number, t.user_attrs["params"]))
    ev = _evaluator(dataset, metric, device, args.epochs)
    cache_file = out / "fresh.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    t1 = time.perf_counter()
    runs = {pick["number"]: _retrain(ev, pick_params, cache)}
    runs.update({n: _retrain(ev, p, cache) for n, p in rivals})
    retrain_s = time.perf_counter() - t1
    cache_file.write_text(json.dumps(cache) + "\n")
    val = {n: [r[0] for r in rs] for n, rs in runs.items()}
    test = {n: [r[1] for r in rs] for n, rs in runs.items()}
    others = [n for n, _ in rivals]
    best_rival = max(others, key=lambda n: statistics.fmean(test[n]), default=None)
    best_val_rival = max(others, key=lambda n: statistics.fmean(val[n]), default=None)
    me = pick["number"]
    pick_mean = statistics.fmean(test[me])
    rival_mean = None if best_rival is None else statistics.fmean(test[best_rival])
    regret = 0.0 if rival_mean is None else max(0.0, rival_mean - pick_mean)
    val_regret = 0.0 if best_val_rival is None else max(0.0, statistics.fmean(val[best_val_rival])
                                                        - statistics.fmean(val[me]))
    return {"search": name, "dataset": dataset, "metric": metric, "device": device, "budget": budget,
            "expected": expect, "pick": me, "pick_params": pick["params"],
            "pick_method": pick["params"].get("method"),
            "pick_test_mean": round(pick_mean, 2), "pick_test_sd": round(statistics.stdev(test[me]), 2),
            "pick_val_mean": round(statistics.fmean(val[me]), 2),
            "best_rival": best_rival, "best_rival_method": None if best_rival is None else
            dict(rivals)[best_rival].get("method"),
            "best_rival_test_mean": None if rival_mean is None else round(rival_mean, 2),
            "rivals": len(rivals), "regret_points": round(regret, 2),
            "regret_se_points": None if best_rival is None else round(_paired_se(test[me], test[best_rival]), 2),
            "val_regret_points": round(val_regret, 2), "best_val_rival": best_val_rival,
            "fresh": {str(n): runs[n] for n in runs},  # per fresh seed: [validation, test] in points
            "confirm_seeds": args.confirm_seeds, "confirm_train_s": round(summary.get("confirm_train_wall_s") or 0, 1),
            "search_wall_s": round(search_s, 1), "retrain_wall_s": round(retrain_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--confirm-seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=50, help="phase length and ticket-search cap (small: 2 cores)")
    ap.add_argument("--max-train-epochs", type=int, default=100, help="top of the train_epochs range searched")
    ap.add_argument("--only", default=None, help="comma-separated search names (default: all six)")
    ap.add_argument("--out", default="runs/answer_quality")
    ap.add_argument("--summarize", action="store_true",
                    help="run nothing: collect the rows already written under --out (after parallel --only runs)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    wanted = set(args.only.split(",")) if args.only else None
    rows = []
    for spec in SEARCHES:
        if wanted and spec[0] not in wanted:
            continue
        done = Path(args.out) / f"confirm{args.confirm_seeds}" / spec[0] / "answer_quality.json"
        if args.summarize:  # the rows of searches already run (e.g. in parallel with --only)
            if done.is_file():
                rows.append(json.loads(done.read_text()))
            continue
        row = one_search(spec, args)
        done.write_text(json.dumps(row) + "\n")
        rows.append(row)
        print(json.dumps(row), flush=True)
    regrets = [r["regret_points"] for r in rows if r["regret_points"] is not None]
    val_regrets = [r["val_regret_points"] for r in rows if r.get("val_regret_points") is not None]
    print(f"\n{'search':<28} {'pick':<8} {'pick test':>10} {'rival':<8} {'rival test':>10} {'regret':>7} "
          f"{'+- se':>6} {'val regret':>10}")
    for r in rows:
        print(f"{r['search']:<28} {str(r.get('pick_method')):<8} {r.get('pick_test_mean')!s:>10} "
              f"{str(r.get('best_rival_method')):<8} {r.get('best_rival_test_mean')!s:>10} {r['regret_points']!s:>7} "
              f"{r.get('regret_se_points')!s:>6} {r.get('val_regret_points')!s:>10}")
    print("regret: best rival's mean test minus the pick's over the same fresh seeds (0 when the pick is best); "
          "+- se: the paired standard error of that difference; val regret: the same on validation accuracy "
          "(what the search can see)")
    print(json.dumps({"benchmark": "answer_quality", "confirm_seeds": args.confirm_seeds, "trials": args.trials,
                      "fresh_seeds": FRESH, "searches": len(rows),
                      "mean_regret_points": round(statistics.fmean(regrets), 3) if regrets else None,
                      "max_regret_points": round(max(regrets), 3) if regrets else None,
                      "mean_val_regret_points": round(statistics.fmean(val_regrets), 3) if val_regrets else None,
                      "max_val_regret_points": round(max(val_regrets), 3) if val_regrets else None}))


if __name__ == "__main__":
    main()
