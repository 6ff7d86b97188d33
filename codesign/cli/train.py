"""`codesign train`: train a sparsified network (graph tickets with --task graph, pruned CNNs with
--task cnn), report accuracy, achieved sparsity, phases, analytical cost, wall time and peak RSS.

The options shared by both tasks are defined here; each task adds its own through a torch-free
``add_train_arguments(parser)`` in ``codesign.cli.graph_args`` / ``codesign.cli.cnn_args``, and
turns them into its typed config there (``graph_config(args)`` / ``cnn_config(args)``), which ``train``
of ``codesign.graphs.pipeline`` / ``codesign.cnn.pipeline`` runs (imported lazily: they import torch).
"""

from __future__ import annotations

import argparse

from codesign.runtime.outputs import EXPORT_FILES, RUN_FILES, STUDY_MARK  # what an --out folder may hold
from codesign.runtime.torch_device import RUN_ON

from . import cnn_args, graph_args
from .common import add_data_root, add_json_flag, add_threads_flag, add_trust_pickle, bounded, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a sparse GNN ticket or a pruned CNN and report accuracy and cost")
    p.add_argument("--task", choices=["graph", "cnn"], default="graph", help="graph (GNN tickets) or cnn")
    p.add_argument("--model", default=None, help="model name (graph: gcn, gat, gin, sage; cnn: vgg11, ...) "
                                                 "(default: gcn for --task graph, vgg11 for --task cnn)")
    p.add_argument("--dataset", default=None, help="dataset name, e.g. cora, sbm:n=1000,...; cnn: mnist, ... "
                                                   "(default: cora for --task graph, fashion-mnist for --task cnn)")
    p.add_argument("--method", default=None,
                   help="ticket / pruning method (default: gebt for --task graph, eb for --task cnn; see each task)")
    p.add_argument("--seed", type=bounded("--seed"), default=None,
                   help="random seed (default: 0; runs are deterministic on CPU)")
    p.add_argument("--epochs", type=bounded("--epochs"), default=None,
                   help="graph: epochs of every phase (searches stop earlier when the ticket is found); cnn: "
                        "training / ticket search at most this many, then the retrain its own length "
                        "(max(epochs - ticket epoch, --finetune-epochs)) "
                        "(default: 100 for --task graph, 160 for --task cnn)")
    p.add_argument("--run-on", default="cpu", choices=RUN_ON, help="torch device to train on")
    p.add_argument("--out", default=None, help="folder to save the ticket / result in (default: none, not saved)")
    p.add_argument("--overwrite", action="store_true", help="replace the ticket / model an --out folder already holds")
    add_threads_flag(p)
    add_data_root(p)
    add_trust_pickle(p)
    add_json_flag(p)
    own: dict[str, list[tuple[str, str]]] = {}
    for task, module in (("graph", graph_args), ("cnn", cnn_args)):
        before = set(map(id, p._actions))
        module.add_train_arguments(p)
        own[task] = [(a.option_strings[0], a.dest) for a in p._actions
                     if id(a) not in before and a.dest != argparse.SUPPRESS]
    p.set_defaults(handler=run, task_options=own)


# options only some methods read (an option the run would ignore is refused, not dropped silently)
# (the graph sparsities: codesign.graphs.pipeline, which names what the method prunes)
GRAPH_METHOD_OPTIONS = {"--rounds": ("ugs",)}
_CNN_RETRAINED = ("eb", "spline-eb", "spline", "slimming")  # BN-L1 training, then a retrain of the pruned net
CNN_METHOD_OPTIONS = {"--channel-sparsity": ("eb", "spline-eb", "spline", "slimming", "random"),
                      "--detector": ("spline",), "--spline-mode": ("spline",),
                      "--eb-eps": ("eb", "spline"), "--spline-threshold": ("spline-eb", "spline"),
                      "--probe-grid": ("spline-eb", "spline"), "--bn-l1": _CNN_RETRAINED,
                      "--finetune-epochs": _CNN_RETRAINED, "--cnn-retrain-init": _CNN_RETRAINED,
                      "--retrain-init": _CNN_RETRAINED}
# --method spline reads --eb-eps only with --detector eb and --spline-threshold only with the spline detector
CNN_DETECTOR_OPTIONS = {"--eb-eps": "eb", "--spline-threshold": "spline"}
# options of the other task this task reads too: cnn_args.cnn_config maps --retrain-init ticket|reinit
SHARED_OPTIONS = {"graph": (), "cnn": ("--retrain-init",)}


# what the retraining of a saved ticket (--ticket) reads besides the ticket: the rest comes from the ticket
TICKET_READS = ("--ticket", "--epochs")


def check_ignored_options(args: argparse.Namespace) -> None:
    """Refuse an option of the other task, one the chosen method never reads, or one the retraining of a
    ``--ticket`` takes from the ticket instead (one line, the fix)."""
    from costmodels.errors import CodesignError

    other = "cnn" if args.task == "graph" else "graph"
    flags = {flag: dest for flag, dest in args.task_options[args.task]}
    flags.update((flag, dest) for flag, dest in args.task_options[other] if flag in SHARED_OPTIONS[args.task])
    mine = set(flags.values())
    for flag, dest in args.task_options[other]:
        if dest not in mine and getattr(args, dest, None) not in (None, False):
            raise CodesignError(f"{flag} only applies to --task {other}; drop it or add --task {other}")
    if args.task == "graph" and getattr(args, "ticket", None):
        for flag, dest in [("--model", "model"), ("--method", "method"), ("--seed", "seed"), *flags.items()]:
            if flag not in TICKET_READS and getattr(args, dest, None) is not None:
                raise CodesignError(f"{flag} {getattr(args, dest)} does not apply to --ticket (the retraining takes "
                                    "the ticket's model, method, masks, optimiser and seed, so that it retrains "
                                    "identically); drop it")
    method = ("gebt" if args.task == "graph" else "eb") if args.method is None else args.method.lower()
    table = GRAPH_METHOD_OPTIONS if args.task == "graph" else CNN_METHOD_OPTIONS
    for flag, methods in table.items():
        if method in methods or flag not in flags or getattr(args, flags[flag], None) is None:
            continue
        raise CodesignError(f"{flag} {getattr(args, flags[flag])} does not apply to --method {method} (only "
                            f"{', '.join(methods)}); drop it")
    if args.task == "cnn" and method == "spline":
        detector = getattr(args, "detector", None) or "spline"
        for flag, reader in CNN_DETECTOR_OPTIONS.items():
            if reader != detector and getattr(args, flags[flag], None) is not None:
                raise CodesignError(f"{flag} {getattr(args, flags[flag])} does not apply to --method spline with "
                                    f"--detector {detector} (only with --detector {reader}); drop it or add "
                                    f"--detector {reader}")


def check_train_out(out: str, overwrite: bool) -> None:
    """A folder train may write into: writable, and not holding a run's results unless ``overwrite``."""
    from pathlib import Path

    from costmodels.errors import CodesignError

    from .run_folder import check_out_dir

    check_out_dir(out)
    folder = Path(out)
    held = [name for name in (*RUN_FILES, *EXPORT_FILES, STUDY_MARK) if (folder / name).exists()]
    if held and not overwrite:
        raise CodesignError(f"--out {out!r} already holds {', '.join(held)} of an earlier run; give a new folder, "
                            "or --overwrite to replace them")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM: leave as an exit (status 143) instead of dying at once, so that a file being written removes
    its temporary file and the folder keeps a whole result or none (``codesign.runtime.outputs``)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the exit short
    raise SystemExit(143)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    check_ignored_options(args)
    if args.out is not None:
        check_train_out(args.out, args.overwrite)  # before training, not after
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return _run(args)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    from codesign.graphs.epoch_flops import dataset_epoch_flops
    from codesign.runtime.threads import configure

    work = dataset_epoch_flops(args.dataset or "cora", args.hidden, args.layers) if args.task == "graph" else None
    policy = configure(args.threads, workload_flops=work)
    if args.task == "graph":
        from codesign.graphs.pipeline import format_result, train

        result = train(graph_args.graph_config(args), progress=not args.json, thread_policy=policy.to_dict())
    else:
        from codesign.cnn.pipeline import format_result, train  # type: ignore[assignment]

        result = train(cnn_args.cnn_config(args), thread_policy=policy.to_dict())
    if args.json:
        emit_json(result)
    else:
        print(format_result(result))
    return 0
