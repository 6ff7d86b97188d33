"""Calibration benchmark: does fitting the CPU profile make epoch-time predictions accurate?

Measures training epochs of models x datasets x sparsities on this machine (graph and weight
sparsity = s; masked weights run dense on the CPU) and one GEBT search epoch per model and data set
(``--no-search-epochs`` to leave them out), each the training code's own epoch, fits the profile's
efficiency factors, kernel overhead and serial step time on two thirds of the workloads (NNLS,
``costmodels.calibrate``) and reports the mean absolute percentage error of the analytical epoch
time on the held-out third, before (the shipped profile) and after (the calibrated one, written to a
temporary file and loaded back). The headline fits process CPU time of single-thread epochs (immune
to other tenants' load); the same fit on median wall time is reported beside it.

    python benchmarks/calibration.py [--threads 1] [--rounds 5] [--allocator reuse|default]

Prints a per-workload table; the last line is one JSON object with ``mape_before`` and
``mape_after`` (fractions).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="gcn,gat,sage,gin")
    ap.add_argument("--datasets", default="cora,citeseer")
    ap.add_argument("--sparsities", default="0,0.3,0.6,0.9")
    ap.add_argument("--profile", default="auto",
                    help="profile to calibrate: auto (this CPU's: the shipped match, else one measured here), "
                         "host (always the one measured here), or a name / TOML path")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--allocator", choices=["reuse", "default"], default="reuse")
    ap.add_argument("--search-epochs", action=argparse.BooleanOptionalAction, default=True,
                    help="also one GEBT search epoch per model and data set (as `codesign calibrate`)")
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    from codesign.machine.calibration import sweep_and_fit
    from codesign.machine.host_runtime import tune_allocator
    from codesign.machine.profiling import DataCache, sweep_grid
    from costmodels import load_profile, price_workload
    from costmodels.calibrate import calibrated_profile_dict, default_memory_grid, fit, holdout_split, mape
    from costmodels.measure import CPUMeter, host_summary
    from costmodels.profiles import DeviceProfile

    torch.set_num_threads(args.threads)
    allocator = "reuse" if args.allocator == "reuse" and tune_allocator() else "default"
    if args.profile in ("auto", "host"):
        from codesign.machine.host_runtime import host_profile_data
        from costmodels.measure import cpu_model_name
        from costmodels.measure.base import cpu_count
        from costmodels.measure.detect import detect_profile

        if args.profile == "host":
            data = host_profile_data()
            base = DeviceProfile.from_dict(data, f"<measured on this host: {data['name']}>")
        else:
            base = detect_profile(cpu_model_name(), kind="cpu", cores=cpu_count(), prefer_calibrated=False,
                                  build_host=host_profile_data).profile
    else:
        base = load_profile(args.profile)
    grid = sweep_grid(args.models.split(","), args.datasets.split(","),
                      [float(s) for s in args.sparsities.split(",")], search=args.search_epochs)
    res = sweep_and_fit(grid, base, CPUMeter(), data=DataCache(), rounds=args.rounds, per_round=args.per_round,
                        warmup=args.warmup, time_measure="cpu", sweep_note="benchmark")

    # The same fit on median wall time (what a user's stopwatch sees, other tenants' load included).
    wall = [dataclasses.replace(s, measured_latency_s=s.info["wall_s"]) for s in res.samples]
    train, held = holdout_split(wall)
    cal_w = fit(train, base, memory_grid=default_memory_grid(base))
    prof_w = DeviceProfile.from_dict(calibrated_profile_dict(base, cal_w, machine="-", sweep="-", mape_before=0,
                                                             mape_after=0))
    meas_w = [s.measured_latency_s for s in held]
    wall_before = mape([float(price_workload(s.workload, base, training=True).latency_s) for s in held], meas_w)
    wall_after = mape([float(price_workload(s.workload, prof_w, training=True).latency_s) for s in held], meas_w)

    table = pd.DataFrame(res.rows).set_index("workload")
    for c in ("measured_s", "wall_s", "wall_iqr_s", "before_s", "after_s"):
        table[c.replace("_s", "_ms")] = table.pop(c) * 1e3
    with pd.option_context("display.width", 200, "display.max_rows", 200, "display.float_format", "{:.3f}".format):
        print(table.to_string())
    cal = res.calibration
    fit_rows = [r for r in res.rows if r["split"] == "fit"]
    fit_written = mape([r["after_s"] for r in fit_rows], [r["measured_s"] for r in fit_rows])
    print(f"\nfitted efficiency {cal.efficiency}, kernel_overhead_us={cal.kernel_overhead_us:.2f}, "
          f"serial_step_ns={cal.serial_step_ns:.3g}, effective "
          f"bandwidth {cal.dram_bandwidth_gbs:g} GB/s, on-chip {cal.onchip_buffer_mb:g} MB; {cal.note}")
    print(f"fit-set MAPE: {cal.train_mape:.1%} in the fit's linear model (launch term additive), "
          f"{fit_written:.1%} priced with the written profile (the rows' after_ms: the launch term is "
          "max(kernels x launch, ops x host), see costmodels/launch.py)")
    print(f"held-out MAPE, cpu time: before {res.mape_before:.3f}, after {res.mape_after:.3f}; "
          f"wall time: before {wall_before:.3f}, after {wall_after:.3f} "
          f"({len(res.held_out)} held-out of {len(res.samples)}; threads={args.threads}, allocator={allocator}, "
          f"median of {args.rounds}x{args.per_round} epochs; measuring took {res.measure_s:.0f} s)")
    print(json.dumps({"benchmark": "calibration", "mape_before": round(res.mape_before, 4),
                      "mape_after": round(res.mape_after, 4), "time_measure": "process cpu time, 1 thread",
                      "wall_mape_before": round(wall_before, 4), "wall_mape_after": round(wall_after, 4),
                      "held_out": len(res.held_out), "workloads": len(res.samples), "threads": args.threads,
                      "allocator": allocator, "profile": base.name,
                      "fitted_efficiency": {k: round(v, 4) for k, v in cal.efficiency.items()},
                      "kernel_overhead_us": round(cal.kernel_overhead_us, 3),
                      "serial_step_ns": round(cal.serial_step_ns, 3), "search_epochs": args.search_epochs,
                      "dram_bandwidth_gbs": cal.dram_bandwidth_gbs, "onchip_buffer_mb": cal.onchip_buffer_mb,
                      "measure_s": round(res.measure_s, 1),
                      "machine": host_summary()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
