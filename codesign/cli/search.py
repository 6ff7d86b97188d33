"""`codesign search`: the sparsity settings with the most accuracy for the cost you can afford.

Trains each configuration here (validation accuracy drives the search, test accuracy is reported)
and prices the run on ``--device`` with the cost model (or takes this machine's measurement with
``--measured``). Optuna multi-objective TPE over (accuracy up, cost down); ``--budget`` makes
over-budget trials infeasible. The dense reference is trained first, once; a configuration already
trained is not trained again (``--trainings-per-config``); a configuration whose cost, predicted by the cost
model before training, is over the budget whatever its early-bird epoch is recorded as screened and
not trained, and a run whose ticket search goes on until its cost can only pass the budget is stopped
there (``--no-screen`` trains both anyway). The study is the record; the run folder gets
trials.csv, pareto.csv, pareto.png and summary.json. Rerunning the same command tops the study up
to ``--trials`` trained trials. Nothing heavy is imported until the handler runs.

``--task graph`` searches graph tickets (``codesign.pipelines.graph_search``); ``--task cnn`` searches
pruned CNNs (``codesign.pipelines.cnn_search``: method, channel sparsity, detector threshold) at
CPU-scale defaults (vgg11, width 0.25, fashion-mnist, 2000-image subset with 10 % held out for
validation, 8 epochs), re-pricing each run's ``cost_inputs`` on ``--device``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from costmodels.atomic import write_text
from search.storage import check_url

from .common import Renamed, add_data_root, add_json_flag, add_threads_flag, add_trust_pickle, bounded, emit_json
from .run_folder import check_out_dir, claim_run_folder
from .search_run import any_finished, confirm, interrupted, run_with_progress

METRIC_CHOICES = [f"{p}-{q}" for p in ("train", "infer") for q in ("energy", "latency", "flops", "memory")]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="co-design search: most accurate sparsity settings within a cost budget on a device",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--task", choices=["graph", "cnn"], default="graph",
                   help="graph tickets (default) or cnn (pruned CNNs: EB, spline-EB, spline, slimming, random)")
    p.add_argument("--model", default=None,
                   help="graph: gcn, gat, gin, sage (default gcn); cnn: vgg11/13/16/19, preresnet20/56/101, "
                        "resnet18 (default vgg11)")
    p.add_argument("--dataset", default=None,
                   help="graph default cora; cnn: fashion-mnist (default), mnist, cifar10, cifar100, synthetic-images")
    p.add_argument("--metric", default="train-energy",
                   help="cost objective: {train,infer}-{energy,latency,flops,memory} (default train-energy)")
    p.add_argument("--budget", default=None,
                   help="cost ceiling with a unit matching --metric, e.g. 2J, '500 mJ', 0.1Wh, 30s, 1.2GB")
    from search.budget import NEGATIVE_AMOUNT

    p._negative_number_matcher = NEGATIVE_AMOUNT  # `--budget -1J` is a (bad) value, not an unknown option
    p.add_argument("--device", action="append", default=None,
                   help="device profile to price runs on, exactly as named (see `codesign devices`): h100 is the "
                        "datasheet, calibrated/h100 a calibrated copy, or a TOML path (default h100); repeat to "
                        "price every ticket on each device and pick the best")
    p.add_argument("--hardware-space", default=None,
                   help="template knobs to search jointly, e.g. 'pes=256:8192; buffer_mb=0.5:32' (grid, no retraining)")
    p.add_argument("--area-budget", default=None, help="chip area ceiling for template devices, e.g. 8mm2")
    p.add_argument("--power-budget", default=None,
                   help="ceiling on a template chip's power_w, e.g. 7W: its peak on-chip dynamic power (PEs and "
                        "buffers busy every cycle; DRAM is off chip, charged per byte to energy, not included); a "
                        "device with no modelled power fails it")
    p.add_argument("--measured", action="store_true",
                   help="use this machine's measured cost instead of the cost model (where measured)")
    p.add_argument("--objective", choices=["pareto", "acc-per-cost"], default="pareto",
                   help="pareto: (accuracy, cost) multi-objective (default); acc-per-cost: the scalar ratio")
    p.add_argument("--trials", type=bounded("--trials"), default=30,
                   help="trained trials the study should hold (screened ones do not count); a rerun tops it up "
                        "(default 30)")
    p.add_argument("--no-screen", dest="screen", action="store_false",
                   help="train every sampled configuration, even one the cost model puts over --budget")
    p.add_argument("--confirm-seeds", type=bounded("--confirm-seeds"), default=None,
                   help="retrain the 3 best feasible configurations and the best dense that fits on N further "
                        "seeds and answer on the mean (default 3; 0: answer on one seed per configuration)")
    p.add_argument("--trainings-per-config", dest="repeats", type=bounded("--trainings-per-config"), default=1,
                   help="trainings allowed per configuration, each with its own seed (default 1: never twice)")
    p.add_argument("--repeats", action=Renamed, new="--trainings-per-config", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=bounded("--epochs"), default=None,
                   help="graph: epochs per training phase, capping longer schedules and, given, the searched "
                        "train_epochs (unless --space sets it) (default 100, the papers'; train_epochs 20-200); "
                        "cnn: the training schedule E (default 8 on CPU; the papers' 160)")
    p.add_argument("--space", default=None,
                   help="narrow or fix parameters, e.g. 'method=gebt,random; graph_sparsity=0.2:0.6'")
    p.add_argument("--seed", type=bounded("--seed"), default=0,
                   help="base seed (the configuration in slot k is sampled and trained with seed + k)")
    p.add_argument("--study", default=None,
                   help="study name (default <model>-<dataset>-<metric>-<device>[-<budget>])")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (default sqlite in the run folder); postgresql+psycopg2://... "
                        "lets workers on many machines join; journal:///path for a journal file")
    p.add_argument("--out", default=None, help="run folder (default runs/<study>)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out holding another study's results, replacing its tables and plot")
    p.add_argument("--n-jobs", type=bounded("--n-jobs"), default=1,
                   help="parallel worker processes on this machine, sharing the study (default 1)")
    add_threads_flag(p, help="torch CPU threads per worker (default: usable cores / workers on this machine, "
                             "1 for Cora-sized graphs)")
    g = p.add_argument_group("cnn task (--task cnn; CPU-scale defaults, about 10-20 s per trial)")
    g.add_argument("--width", type=bounded("--width"), default=None, help="channel width multiplier (default 0.25)")
    g.add_argument("--train-subset", type=bounded("--train-subset"), default=None,
                   help="train on a seeded subset of N training images, validation included (default 2000)")
    g.add_argument("--val-size", type=bounded("--val-size"), default=None,
                   help="validation images held out of the subset, a fraction < 1 or a count (default 0.1); "
                        "the search maximises validation accuracy, test accuracy is only reported")
    g.add_argument("--batch-size", type=bounded("--batch-size"), default=None, help="SGD batch size (default 128)")
    g.add_argument("--probe-grid", type=bounded("--probe-grid"), default=None,
                   help="spline detector probe set: grid x grid images (default 16)")
    add_data_root(p)
    add_trust_pickle(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


CNN_ONLY = ("width", "train_subset", "val_size", "batch_size", "probe_grid")


def resolve_task_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the per-task defaults into ``args`` (model, dataset, epochs; the cnn options for --task cnn)."""
    from costmodels.errors import CodesignError

    if args.task == "graph":
        given = [f"--{k.replace('_', '-')}" for k in CNN_ONLY if getattr(args, k) is not None]
        if given:
            raise CodesignError(f"{', '.join(given)} only apply to --task cnn; drop them or add --task cnn")
        defaults = {"model": "gcn", "dataset": "cora", "epochs": 100}
    else:
        from codesign.pipelines.cnn_search import CPU_DEFAULTS as defaults  # torch-free module
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def default_study_name(args: argparse.Namespace) -> str:
    where = "measured" if args.measured else args.device
    parts = [args.task if args.task != "graph" else "", args.model, args.dataset, args.metric, where]
    if args.budget:
        parts.append(_canonical_budget(args.budget))
    if args.objective != "pareto":
        parts.append(args.objective)
    return re.sub(r"[^A-Za-z0-9._-]+", "", "-".join(x for x in parts if x).replace("/", "_"))


_STORAGE_MODULES = ("sqlalchemy", "optuna.storages._rdb.models", "alembic.command", "alembic.config",
                    "alembic.migration", "alembic.script")  # a worker's first open of the SQLite study: ~0.6 s
WORKER_PRELOAD = {
    "graph": ("codesign.runtime.startup_in_worker_server", "torch", "optuna", "search.study",
              "codesign.pipelines.graph_search", "codesign.graphs.pipeline", *_STORAGE_MODULES),
    "cnn": ("codesign.runtime.startup_in_worker_server", "torch", "optuna", "search.study",
            "codesign.pipelines.cnn_search", "codesign.cnn.pipeline", *_STORAGE_MODULES),
}
"""Modules every search worker imports, per task: imported once in the fork server (``search.study``; a
name that fails to import there is skipped, and the worker imports it when it needs it). The first makes
the server import torch as the search process does (collector paused, then frozen)."""


def _canonical_budget(text: str) -> str:
    """The budget as its value (``8 J``, ``8J`` and ``8000mJ`` name one study): 3 significant digits, SI prefix."""
    from search.budget import QUANTITIES, format_si, parse_quantity

    try:
        value, dimension, _ = parse_quantity(text)
    except Exception:  # refused later with its own message
        return text
    unit = {dim: base for base, _, dim in QUANTITIES.values()}[dimension]
    return format_si(value, unit).replace(" ", "")


def run(args: argparse.Namespace) -> int:
    """Register this process's workers first (``codesign.runtime.threads.LocalWorkers``), so that searches
    started together on one machine see each other before either trains, then search."""
    from codesign.runtime.threads import LocalWorkers

    if args.n_jobs > 1:  # the workers' fork server imports their modules while this process sets up
        from search.workers import start_worker_server

        start_worker_server(WORKER_PRELOAD[args.task])
    with LocalWorkers(max(1, args.n_jobs)) as workers:  # other searches on this machine share the cores
        return _search(args, workers)


def _search(args: argparse.Namespace, workers: Any) -> int:
    from costmodels.errors import CodesignError, check_name
    from search import SearchConfig, parse_budget, parse_metric
    from search.budget import format_si
    from search.config import check_counts
    from search.outputs import write_outputs
    from search.storage import embedded_url

    check_counts(args.trials, args.n_jobs, args.repeats)  # before anything is created
    from search.confirm import DEFAULT_SEEDS, check_confirm_seeds

    if args.confirm_seeds is None:
        args.confirm_seeds = DEFAULT_SEEDS
    check_confirm_seeds(args.confirm_seeds)
    epochs_given = args.epochs is not None
    resolve_task_defaults(args)
    from codesign.pipelines.hardware_pricing import HardwareOptions

    hardware = HardwareOptions.parse(args.device, args.hardware_space, args.area_budget, args.power_budget,
                                     measured=args.measured, task=args.task)
    args.device = hardware.devices[0]  # what the rest of the command prices on
    metric = parse_metric(args.metric)
    budget = parse_budget(args.budget, metric) if args.budget else None
    from codesign.pipelines.graph_search import graph_space
    from codesign.pipelines.pricing import MEASURED, check_measurable, resolve_device

    profile_ctx: dict[str, Any] = {}
    if args.measured:
        check_measurable(metric)
        device_name, source = "this machine", f"measured on this machine: {MEASURED[metric.name]}"
    else:
        resolved = resolve_device(args.device)
        device_name = resolved.name
        source = f"estimated: analytical cost model, {resolved.kind} profile {resolved.name}"
        profile_ctx = {"profile_kind": resolved.kind, "profile_file": portable_path(resolved.path)}
        if len(hardware.devices) > 1:  # the "profile:" line lists every device
            profile_ctx["profiles"] = [{"name": r.name, "kind": r.kind, "file": portable_path(r.path)}  # type: ignore
                                       for r in map(resolve_device, hardware.devices)]
    if args.epochs is not None and args.epochs < 1:
        raise CodesignError(f"--epochs {args.epochs}: must be at least 1")
    if args.task == "cnn":
        from codesign.pipelines.cnn_search import cnn_space

        space = cnn_space().narrow(args.space)
    else:
        space = graph_space().narrow(args.space)
        if epochs_given and not re.search(r"(^|[;\n])\s*train_epochs\s*=", args.space or ""):
            from codesign.pipelines.graph_search import cap_train_epochs

            space = cap_train_epochs(space, args.epochs)  # --epochs caps the final phase too
    if args.study is not None:
        check_name("--study", args.study)
    study_name = args.study or default_study_name(args) + hardware.study_suffix()
    out_given = str(Path("runs") / study_name) if args.out is None else args.out
    check_out_dir(out_given)  # an empty --out is refused, not read as the default
    out = Path(out_given)
    if args.budget is not None and not args.budget.strip():
        raise CodesignError("--budget '' is empty; give a cost ceiling with a unit, e.g. 2J, or leave --budget out")
    # screening prices a configuration on the one --device; several devices or a hardware space price each
    # ticket at its best hardware, which that interval does not bound, so they train without screening
    screen_at = budget.value if args.screen and budget is not None and not hardware.active else None
    evaluator = _evaluator(args, metric, None if args.measured else device_name, screen_at)  # bad model: fail now
    storage = args.storage
    if storage is not None:
        check_url(storage)  # a malformed URL or a missing driver: refused before the run folder exists
    # the outermost folder this command creates (out, or a parent of it such as runs/): removed again if the
    # search is refused before any trial finished
    new_top = out
    while not new_top.parent.exists() and new_top.parent != new_top.parent.parent:
        new_top = new_top.parent
    created = not out.exists()
    claim_run_folder(out, study_name, args.overwrite)  # the last check: the folder is created here
    if storage is None:
        storage = embedded_url(out)
    config = SearchConfig(
        study_name=study_name, storage=storage, n_trials=args.trials, metric=metric, budget=budget,
        objective=args.objective, seed=args.seed, n_jobs=args.n_jobs, screen=args.screen, repeats=args.repeats,
        context={"task": args.task, "model": args.model, "dataset": args.dataset, "device": device_name,
                 "measured": bool(args.measured), "cost_source": source, "epochs_cap": args.epochs, **profile_ctx,
                 "regime": None if args.measured or args.task != "graph" else _regime(args, device_name),
                 **({k: getattr(args, k) for k in CNN_ONLY} if args.task == "cnn" else {}), **hardware.context()},
    )
    predict = None if hardware.active else getattr(evaluator, "predict", None)
    evaluator = hardware.wrap(evaluator, metric)
    exact_cost = getattr(evaluator, "predict", None)  # at the best hardware in a hardware search: for _early only
    from codesign.graphs.epoch_flops import dataset_epoch_flops
    from codesign.runtime.threads import ThreadedEvaluator, configure

    work = dataset_epoch_flops(args.dataset) if args.task == "graph" else None
    policy = configure(args.threads, workers=workers.total(), workload_flops=work)
    evaluator = ThreadedEvaluator(evaluator, args.threads, workers, work)  # each trial re-chooses its threads
    try:
        study = run_with_progress(config, space, evaluator, metric.unit, format_si, predict=predict,
                                   reference=_reference(args, space), early=_early(args, space, exact_cost, budget),
                                   worker_init=_worker_init(args, policy.threads), waiting=workers.set_waiting,
                                   confirm_seeds=args.confirm_seeds)
        confirm(study, config, evaluator, args.confirm_seeds)
    except KeyboardInterrupt:  # Ctrl-C: the study is the record; write the tables of the trials that finished
        args.interrupt_note = interrupted(config, space, out, policy)
        raise
    except CodesignError:  # refused at its first trial: a folder this command made holds nothing worth keeping
        if created and (args.storage is not None or not any_finished(config, space)):
            import shutil

            shutil.rmtree(new_top, ignore_errors=True)  # (an external storage keeps the study: the folder held none)
        raise
    summary = write_outputs(study, out)
    summary["thread_policy"] = policy.to_dict()  # this process's first choice; each trial records its own
    from codesign.runtime.memory import huge_pages_in_words

    summary["huge_pages"] = huge_pages_in_words()
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    if args.json:
        emit_json(summary)
    else:
        print(format_summary(summary, out))
    return 0


def _regime(args: argparse.Namespace, device: str) -> dict[str, str] | None:
    """Launch-, bandwidth- or compute-bound, per phase, of the searched model on ``device``."""
    from codesign.dispatch.regime import graph_regimes

    return graph_regimes(args.model, args.dataset, device)


def portable_path(path: str) -> str:
    """A shipped profile as ``profiles/<file>`` (the same on every machine), any other file in full."""
    from costmodels.profiles import shipped_profile_dir

    p = Path(path).resolve()
    try:
        return str(Path("profiles") / p.relative_to(shipped_profile_dir()))
    except ValueError:
        return str(p)


def _reference(args: argparse.Namespace, space):  # type: ignore[no-untyped-def]
    if args.task == "cnn":
        from codesign.pipelines.cnn_search import reference_params
    else:
        from codesign.pipelines.graph_search import reference_params
    return reference_params(space, args.epochs)


def _early(args: argparse.Namespace, space, predict, budget) -> list:  # type: ignore[no-untyped-def]
    """Trained right after the reference: the longest dense run whose exact cost fits the budget (in a
    hardware or multi-device search: at its best hardware, under the area and power budgets too)."""
    if args.task != "graph" or budget is None:
        return []
    from codesign.pipelines.graph_search import dense_that_fits

    fits = dense_that_fits(space, predict, budget.value)
    return [] if fits is None else [fits]


def _worker_init(args: argparse.Namespace, threads: int):  # type: ignore[no-untyped-def]
    """What each worker process runs first when --n-jobs > 1: the thread count the policy chose
    (``codesign.runtime.threads``; each trial then re-chooses it as workers come and go)."""
    import functools

    from codesign.pipelines.graph_search import init_search_worker

    return functools.partial(init_search_worker, threads) if args.n_jobs > 1 else None


def _evaluator(args: argparse.Namespace, metric, device: str | None,  # type: ignore[no-untyped-def]
               stop_over: float | None = None):
    """The task's evaluator; ``stop_over``: the budget a graph run is stopped at once proven over it."""
    if args.task == "cnn":
        from codesign.pipelines.cnn_search import CNNEvaluator

        ev = CNNEvaluator(model=args.model, dataset=args.dataset, metric=metric, device=device,
                          measured=args.measured, epochs=args.epochs, width=args.width,
                          train_subset=args.train_subset, val_size=args.val_size, batch_size=args.batch_size,
                          probe_grid=args.probe_grid, data_root=args.data_root, stop_over=stop_over)
        ev.config({"method": "eb", "channel_sparsity": 0.5, "threshold": 0.1}, args.seed)  # bad options: fail now
        ev.check()
        return ev
    from codesign.pipelines.graph_search import GraphEvaluator

    ev = GraphEvaluator(model=args.model, dataset=args.dataset, metric=metric, device=device,
                        measured=args.measured, epochs=args.epochs, data_root=args.data_root, stop_over=stop_over)
    ev.check()
    return ev


def format_summary(summary: dict, out: Path) -> str:
    """Human-readable result: the chosen trial, the front, where the files are."""
    import pandas as pd

    from search.budget import format_si
    from search.confirm import seeds_text

    unit = summary.get("cost_unit") or ""
    screened, stopped = summary.get("n_screened") or 0, summary.get("n_stopped") or 0
    name = f"run {summary['run']} (study {summary['study']})" if summary.get("run") else f"study {summary['study']}"
    lines = [f"{name}: {summary['n_trials']} trained trials "
             f"({summary['n_feasible']} feasible)"
             + (f", {screened - stopped} screened before training" if screened - stopped else "")
             + (f", {stopped} stopped in the ticket search" if stopped else "")
             + (f", {summary['n_failed']} failed (fail_reason in trials.csv)" if summary.get("n_failed") else "")
             + f", metric {summary['metric']} on {summary['device']} ({summary.get('cost_source')})"]
    ctx = summary.get("context") or {}
    if ctx.get("profile_kind"):
        kinds = ctx.get("profiles") or [{"name": summary["device"], "kind": ctx["profile_kind"],
                                          "file": ctx.get("profile_file")}]
        lines.append("profile: " + "; ".join(f"{p['name']} ({p['kind']}, {p['file']})" for p in kinds))
    if summary.get("budget"):
        lines.append(f"budget: {summary['budget']['text']} = {format_si(summary['budget']['value'], unit)}")
    best = summary.get("best")
    if best:
        test = best.get("test_accuracy")
        lines.append(f"best feasible: trial #{best['number']} val acc {best['accuracy']:.4f}"
                     + (f", test acc {test:.4f}" if test is not None else "")
                     + f", cost {format_si(best['cost'], unit)}, params {best['params']}")
        conf = best.get("confirmed")
        if conf:
            def pm(mean, sd):  # type: ignore[no-untyped-def]
                return "n/a" if mean is None else f"{mean:.4f}" + ("" if sd is None else f" +- {sd:.4f}")

            lines.append(f"confirmed on {seeds_text(conf['seeds'])}: val acc {pm(conf['val_mean'], conf['val_sd'])}"
                         f", test acc {pm(conf['test_mean'], conf['test_sd'])} (mean +- sd), mean cost "
                         f"{format_si(conf['cost_mean'], unit)}")
        else:
            lines.append("not confirmed: one seed per configuration")
    elif summary["n_trials"] == 0:
        lines.append("best feasible: none (no trial completed)")
    else:
        lines.append("best feasible: none (every trained trial is over budget; raise --budget)")
    rows = [{"trial": p["number"], **p["params"], "val_acc": round(p["accuracy"], 4),
             "test_acc": None if p["test_accuracy"] is None else round(p["test_accuracy"], 4),
             "cost": format_si(p["cost"], unit), "feasible": p["feasible"]} for p in summary["pareto"]]
    if rows:
        params = list(dict.fromkeys(k for p in summary["pareto"] for k in p["params"]))
        cols = ["trial", *params, "val_acc", "test_acc", "cost", "feasible"]
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format",
                               "{:.3f}".format):
            table = pd.DataFrame(rows).reindex(columns=cols)
            lines.append("Pareto front (cheapest first):\n" + table.to_string(index=False, na_rep="-"))
    if summary.get("answer"):
        lines.append("In words: " + summary["answer"])
    split = ", cost_split.png" if (out / "cost_split.png").is_file() else ""
    lines.append(f"wrote {out}/trials.csv, pareto.csv, pareto.png{split}, summary.json")
    return "\n".join(lines)
