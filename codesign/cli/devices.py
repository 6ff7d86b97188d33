"""`codesign devices`: list the device profiles (name, peak FLOP/s, bandwidth, power, sparsity).

Template accelerators (profiles with a ``[template]`` section) also show their area and power at
the defaults and every knob as ``name=default [min..max]`` or ``name=default (choice|choice)``;
``codesign estimate --hw`` and ``codesign search --hardware-space`` take those names.
"""

from __future__ import annotations

import argparse

from .common import add_json_flag, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list device profiles (peak FLOP/s, bandwidth, power, sparsity, knobs)")
    add_json_flag(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    import pandas as pd

    from costmodels import list_profiles, load_profile
    from costmodels.errors import ProfileError
    from costmodels.templates import configure, template_of

    rows = []
    templates = []
    for name in list_profiles():
        try:
            profile = load_profile(name)
        except ProfileError as exc:  # one bad file in the user's folder must not hide the others
            print(f"codesign: warning: skipped profile {name}: {exc}", file=sys.stderr)
            continue
        row = profile.summary() | {"name": name}
        t = template_of(profile)
        if t is not None:
            point = configure(profile)[1]
            row |= {"area_mm2": round(point.area_mm2, 3), "power_w": round(point.power_w, 3),
                    "knobs": {k.name: {"default": k.default, "min": k.low, "max": k.high,
                                       "choices": list(k.choices) or None} for k in t.knobs}}
            templates.append((name, t.describe()))
        rows.append(row)
    if args.json:
        emit_json(rows)
        return 0
    table = pd.DataFrame(rows).drop(columns=["knobs"], errors="ignore")
    table = table.rename(columns={"peak_fp32_tflops": "fp32 TFLOP/s", "peak_fp16_tflops": "fp16 TFLOP/s",
                                  "dram_bandwidth_gbs": "DRAM GB/s", "board_power_w": "power W"})
    # the long description last, after the numbers, and not padded: no column is as wide as the longest one
    text = table.drop(columns=["device"]).set_index("name")
    text.index.name = None
    lines = text.astype(object).where(text.notna(), "-").to_string().splitlines()
    print(f"{lines[0]}  device")
    for line, device in zip(lines[1:], table["device"]):
        print(f"{line}  {device}")
    print("(datasheet numbers unless calibrated; see each profiles/*.toml for sources)")
    for name, knobs in templates:
        print(f"template {name} knobs (--hw / --hardware-space): {knobs}")
    if templates:
        print("area_mm2 / power_w of templates: estimates from costmodels/technology.py at the knob defaults")
    return 0
