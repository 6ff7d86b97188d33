"""`codesign export RUN_DIR --format pyg --out DIR`: a ticket as plain PyTorch Geometric files
(per-layer edge lists, a state dict of ``torch_geometric.nn`` layers, weight masks; see
:mod:`codesign.export`)."""

from __future__ import annotations

import argparse

from .common import add_data_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a graph ticket as PyTorch Geometric files (load with "
                       "codesign.export.load_pyg)")
    p.add_argument("run_dir", help="the --out folder of a `codesign train --task graph` run")
    p.add_argument("--format", choices=["pyg"], default="pyg", help="export format (pyg)")
    p.add_argument("--out", required=True, help="folder to write the export into")
    add_data_root(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from codesign.export import export_pyg

    folder = export_pyg(args.run_dir, args.out, args.data_root)
    meta = json.loads((folder / "ticket.json").read_text())
    print(f"exported {meta['architecture']['model']} ticket on {meta['dataset']} "
          f"(test accuracy {meta['test_accuracy']:.4f}, edges per layer {meta['edges_per_layer']}) to {folder}")
    print(f"  load with: from codesign.export import load_pyg; model, data, eis = load_pyg({str(folder)!r})")
    return 0
