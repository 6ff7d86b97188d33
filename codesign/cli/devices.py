"""`codesign devices`: list the device profiles (name, peak FLOP/s, bandwidth, power, sparsity)."""

from __future__ import annotations

import argparse

from .common import add_json_flag, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list device profiles (peak FLOP/s, bandwidth, power, sparsity support)")
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from costmodels import list_profiles, load_profile

    rows = [load_profile(name).summary() | {"name": name} for name in list_profiles()]
    if args.json:
        emit_json(rows)
        return 0
    table = pd.DataFrame(rows).set_index("name")
    table = table.rename(columns={"peak_fp32_tflops": "fp32 TFLOP/s", "peak_fp16_tflops": "fp16 TFLOP/s",
                                  "dram_bandwidth_gbs": "DRAM GB/s", "board_power_w": "power W"})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 40):
        print(table.astype(object).where(table.notna(), "-").to_string())
    print("(datasheet numbers unless calibrated; see each profiles/*.toml for sources)")
    return 0
