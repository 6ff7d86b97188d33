"""`codesign estimate --module FILE.py:FACTORY`: price a user's own model (see :mod:`codesign.dispatch.byo`).

The model is traced once on the dataset's real shapes (torch dispatch) and priced per device:
``inference`` (one forward), ``train_epoch`` (forward + loss + backward + optimizer step) and, when
the model manipulates its edge list, ``graph_preprocessing`` (done once per graph). Operators the
tracer does not know are listed under the table (name x count) and priced as memory traffic only.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import emit_json

COLUMNS = ["device", "phase", "flops", "macs", "dram_bytes", "memory_bytes", "latency_s", "energy_j"]


def run_module(args: argparse.Namespace, devices: list[str]) -> int:
    import pandas as pd

    from codesign.dispatch.byo import load_factory, price_model
    from costmodels.analytical import FLOP_CONVENTION
    from costmodels.errors import CodesignError

    if args.model or args.graph_sparsity or args.weight_sparsity:
        raise CodesignError("--module prices the model as written: drop --model, --graph-sparsity and "
                            "--weight-sparsity (prune inside your factory to price a sparse model)")
    factory = load_factory(args.module)
    try:
        rows: list[dict[str, Any]] = price_model(factory, args.dataset, devices, task=args.task, dtype=args.dtype,
                                                 batch_size=args.batch_size, data_root=args.data_root,
                                                 name=args.module)
    except CodesignError:
        raise
    except Exception as exc:  # the user's model failed on the data (shapes, dtypes): one line, not a traceback
        first = (str(exc).strip().splitlines() or ["no message"])[0][:160]
        raise CodesignError(f"--module {args.module}: the model failed when run on {args.dataset} "
                            f"({type(exc).__name__}: {first}); check that it takes the dataset's inputs") from None
    if args.json:
        emit_json(rows)
        return 0
    table = pd.DataFrame(rows)[COLUMNS].set_index(["device", "phase"])
    fmt = {"flops": "{:.4g}", "macs": "{:.4g}", "dram_bytes": "{:.4g}", "memory_bytes": "{:.4g}",
           "latency_s": "{:.3e}", "energy_j": "{:.3e}"}
    for col, f in fmt.items():
        table[col] = table[col].map(f.format)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string())
    first = rows[0]
    unknown = first["unknown_ops"]
    checksum = f" (sha256 {first['dataset_checksum'][:12]})" if first.get("dataset_checksum") else ""
    print(f"{args.module} on {args.dataset}{checksum}: {first['parameters']} parameters; estimates from the "
          f"analytical model on a torch-dispatch trace ({args.dtype}); {FLOP_CONVENTION}; units: FLOP, MAC, B, s, J")
    if unknown:
        listed = ", ".join(f"{k} x{v}" for k, v in unknown.items())
        print(f"unknown operators (priced as memory traffic only, 0 FLOPs): {listed}")
    else:
        print("unknown operators: none")
    return 0
