"""`codesign export RUN_DIR --format pyg --out DIR`: a ticket as plain PyTorch Geometric files
(per-layer edge lists, a state dict of ``torch_geometric.nn`` layers, weight masks; see
:mod:`codesign.graphs.export`)."""

from __future__ import annotations

import argparse

from .common import add_data_root, add_json_flag, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a graph ticket as PyTorch Geometric files (load with "
                       "codesign.graphs.export.load_pyg)")
    p.add_argument("run_dir", help="the --out folder of a `codesign train --task graph` run")
    p.add_argument("--format", choices=["pyg"], default="pyg", help="export format (pyg)")
    p.add_argument("--out", required=True, help="folder to write the export into (a new folder, or an earlier "
                   "export of the same run)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a folder holding a run's files or another export, replacing its files")
    add_data_root(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def check_export_out(run_dir: str, out: str, overwrite: bool) -> None:
    """Refuse an --out that is a run folder (a train or search run) or another run's export, unless ``overwrite``."""
    import json
    from pathlib import Path

    from codesign.runtime.outputs import RUN_FILES
    from costmodels.errors import CodesignError

    from .run_folder import check_out_dir

    check_out_dir(out)
    folder = Path(out)
    if overwrite or not folder.is_dir():
        return
    held = [name for name in RUN_FILES if (folder / name).exists()]
    if (folder / "ticket.json").is_file():
        try:
            meta = json.loads((folder / "ticket.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            meta = {}
        source = meta.get("source_run") if isinstance(meta, dict) else None
        if source != str(Path(run_dir).resolve()):
            held.append("ticket.json" + (f" (an export of {source})" if source else " (a run's ticket)"))
    if folder.resolve() == Path(run_dir).resolve():
        held = held or ["the run itself"]
    if held:
        raise CodesignError(f"--out {out!r} holds {', '.join(held)}; export into a new folder, e.g. "
                            f"--out {str(Path(run_dir)).rstrip('/')}-pyg, or --overwrite to replace them")


def run(args: argparse.Namespace) -> int:
    import json

    from codesign.graphs.export import export_pyg

    check_export_out(args.run_dir, args.out, args.overwrite)
    folder = export_pyg(args.run_dir, args.out, args.data_root)
    meta = json.loads((folder / "ticket.json").read_text())
    if args.json:  # the export's ticket.json, with the folder it was written to
        emit_json({"folder": str(folder), **meta})
        return 0
    print(f"exported {meta['architecture']['model']} ticket on {meta['dataset']} "
          f"(test accuracy {meta['test_accuracy']:.4f}, edges per layer {meta['edges_per_layer']}) to {folder}")
    print(f"  load with: from codesign.graphs.export import load_pyg; model, data, eis = load_pyg({str(folder)!r})")
    return 0
