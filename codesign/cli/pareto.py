"""`codesign pareto`: redraw the Pareto plot and tables from stored studies (nothing is re-run).

``codesign pareto RUN_DIR [RUN_DIR ...]`` reads each run folder's study (``study.db``, or the
storage named in its ``summary.json``); ``--storage URL --study NAME [--study NAME ...]`` reads
studies from any Optuna storage. One RUN_DIR: written to ``--out`` (default the sibling folder
``<RUN_DIR>-pareto``); a search's own files are never rewritten. ``--storage`` or several studies:
written to ``--out`` (default ``runs/pareto``): one
plot with every study (e.g. one search priced on two devices), each labelled by its run folder, and
combined tables with ``run`` and ``study`` columns; runs with different metrics or units are refused (one
cost axis per plot). A folder holding another run's outputs is never
written into: ``--out`` must be empty, new, or hold the outputs of exactly the studies drawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_json_flag, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="redraw Pareto plot and tables from stored search studies")
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folders written by `codesign search`")
    p.add_argument("--storage", default=None, help="Optuna storage URL (with --study)")
    p.add_argument("--study", action="append", default=None,
                   help="study name (repeatable with --storage; with RUN_DIR folders: the one study to read in each)")
    p.add_argument("--out", default=None,
                   help="output folder (default: <RUN_DIR>-pareto beside one RUN_DIR, else runs/pareto); never a "
                        "RUN_DIR itself")
    add_json_flag(p)
    p.set_defaults(handler=run)


def _locate(run_dir: Path) -> tuple[str, str | None]:
    """(storage URL, study name or None) of a run folder."""
    import json

    from costmodels.errors import CodesignError
    from search.storage import embedded_url

    if not run_dir.is_dir():
        raise CodesignError(f"RUN_DIR {str(run_dir)!r} is not a folder; give one written by codesign search")
    name, url = None, None
    summary = run_dir / "summary.json"
    if summary.is_file():
        try:
            data = json.loads(summary.read_text())
            name, url = data.get("study"), data.get("storage")
        except ValueError:
            pass
    if (run_dir / "study.db").is_file():  # the embedded default (wherever the folder was moved to)
        return embedded_url(run_dir), name
    if url and "***" not in url:
        return str(url), name
    raise CodesignError(
        f"RUN_DIR {str(run_dir)!r} holds no study.db and names no usable storage; "
        "use --storage URL --study NAME"
    )


def _run_label(run_dir: str | None, url: str, name: str) -> str:
    """How a run is named on the plot and in the ``run`` column: its folder, else the storage's."""
    if run_dir:
        return Path(run_dir).resolve().name
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).resolve().parent.name or name
    return name


def _check_out(out: Path, studies: list, labels: list[str]) -> None:
    """Refuse to write into a folder that holds the outputs of other runs (see the module docstring)."""
    import json

    from costmodels.errors import CodesignError

    from .run_folder import check_out_dir

    check_out_dir(out)
    summary = out / "summary.json"
    if not summary.is_file():
        if (out / "trials.csv").exists() or (out / "study.db").exists():
            raise CodesignError(f"--out {str(out)!r} holds another run's files; give a new or empty folder")
        return
    try:
        data = json.loads(summary.read_text())
    except ValueError:
        data = {}
    held = sorted(str(s.get("study")) for s in data.get("studies", [data]))
    drawn = sorted(s.study_name for s in studies)
    if held != drawn or ((out / "study.db").exists() and len(studies) != 1):
        raise CodesignError(f"--out {str(out)!r} holds the outputs of {', '.join(held) or 'another run'}; "
                            "give a new or empty folder, e.g. --out runs/pareto-" + "-".join(labels)[:40])


def check_one_metric(studies: list, labels: list[str]) -> None:
    """Runs drawn on one cost axis must share the metric and its unit (one line naming them otherwise)."""
    from costmodels.errors import CodesignError
    from search.export import context

    seen: dict[tuple[str, str], str] = {}
    for study, label in zip(studies, labels):
        ctx = context(study)
        seen.setdefault((str(ctx.get("metric")), str(ctx.get("cost_unit"))), label)
    if len(seen) > 1:
        which = "; ".join(f"{label}: {m} [{u}]" for (m, u), label in seen.items())
        raise CodesignError(f"RUN_DIR: these runs measure different costs ({which}); one plot has one cost axis, "
                            "so give only runs searched with the same --metric")


def load_studies(args: argparse.Namespace) -> list:  # list[optuna.Study]
    import optuna

    from costmodels.errors import CodesignError
    from search.storage import check_url, open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.storage:  # before any run folder's storage is opened
        check_url(args.storage, read_only=True)
    targets: list[tuple[str, str | None]] = [_locate(Path(d)) for d in args.run_dirs]
    folders: list[str | None] = list(args.run_dirs)
    if args.storage:
        targets += [(args.storage, name) for name in (args.study or [None])]
        folders += [None] * (len(targets) - len(folders))
    elif args.study and not args.run_dirs:
        raise CodesignError("--study needs --storage URL (or give RUN_DIR folders)")
    elif args.study:  # RUN_DIR folders alone: --study picks that study in each folder's storage (it was ignored)
        if len(args.study) > 1:
            raise CodesignError(f"--study given {len(args.study)} times with RUN_DIR folders: give one name (the "
                                "study to read in each folder), or --storage URL with several")
        targets = [(url, args.study[0]) for url, _ in targets]
    if not targets:
        raise CodesignError("give RUN_DIR folders or --storage URL --study NAME")
    studies = []
    for url, name in targets:
        storage = open_storage(url, read_only=True)
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        if name is None:
            if len(names) != 1:
                raise CodesignError(f"storage holds studies {names}; pick one with --study NAME")
            name = names[0]
        if name not in names:
            stored = ", ".join(names) or "none"
            raise CodesignError(f"study {name!r} is not in the storage; stored studies: {stored}")
        study = optuna.load_study(study_name=name, storage=storage)
        studies.append(study)
    args.run_labels = [_run_label(f, url, s.study_name) for f, (url, _), s in zip(folders, targets, studies)]
    return studies


def run(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from costmodels.atomic import write_text
    from costmodels.errors import CodesignError
    from search.export import pareto_frame, summary, trials_frame
    from search.outputs import write_outputs
    from search.plots import plot_studies, unique_labels

    from .run_folder import check_out_dir, make_out_dir
    from .search import format_summary

    one_run_folder = len(args.run_dirs) == 1 and not args.storage  # one study, drawn beside its folder
    default = f"{str(Path(args.run_dirs[0])).rstrip('/')}-pareto" if one_run_folder else "runs/pareto"
    out_given = default if args.out is None else args.out
    check_out_dir(out_given)  # before any storage is opened; an empty --out is refused
    out = Path(out_given)
    if any(out.resolve() == Path(d).resolve() for d in args.run_dirs):
        raise CodesignError(f"--out {str(out)!r} is a RUN_DIR: pareto never rewrites a search's own files; "
                            f"give another folder (default {default})")
    studies = load_studies(args)
    labels = unique_labels(args.run_labels)
    check_one_metric(studies, labels)
    _check_out(out, studies, labels)
    if len(studies) == 1:
        summ = write_outputs(studies[0], out)
        if args.json:
            emit_json(summ)
        else:
            print(format_summary(summ, out))
        return 0
    make_out_dir(out)
    frames = [(label, trials_frame(s)) for label, s in zip(labels, studies)]
    summaries = [{**summary(s, df), "run": label} for s, (label, df) in zip(studies, frames)]
    tagged = [df.assign(run=label)[["run", *df.columns]] for label, df in frames]
    write_text(out / "trials.csv", pd.concat(tagged, ignore_index=True).to_csv(index=False))
    fronts = pd.concat([pareto_frame(df).assign(run=label) for (label, _), df in zip(frames, tagged)],
                       ignore_index=True)
    write_text(out / "pareto.csv", fronts.to_csv(index=False))
    combined = {"studies": summaries}
    write_text(out / "summary.json", json.dumps(combined, indent=2, default=str) + "\n")
    plot_studies([(name, df, summ) for (name, df), summ in zip(frames, summaries)], out / "pareto.png")
    if args.json:
        emit_json(combined)
    else:
        for summ in summaries:
            print(format_summary(summ, out) + "\n")
    return 0
