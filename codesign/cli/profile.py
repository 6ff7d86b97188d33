"""`codesign profile`: run a GNN workload under the meter and put measured next to predicted.

Per phase of ``--method`` (dense: train; random: train at the sparsities; gebt: search, then
retrain; geb/sgcn: pretrain, search with frozen weights, retrain) it measures ``--repeats`` epochs
(after ``--warmup``) of the training code's own epoch (``codesign.machine.profiling``) in epoch windows and
compares the median with the analytical model on ``--device-profile`` (auto: the NVML device or
this CPU's shipped profile, the user's calibrated copy when there is one, and on a CPU no shipped
profile matches a profile measured here): time, energy, memory, and the relative error
``predicted / measured - 1``. Arguments are checked before any device detection.
``--phase-windows`` adds forward / backward / optimizer (search: weight_step / graph_step /
mask_update) windows and states their overhead. On a CPU the prediction is priced at the thread
count the run uses (``DeviceProfile.at_threads``: a profile's ``[threads]`` fit, ``costmodels.parallel``).
Writes ``<out>/profile.json`` and prints a table. torch is imported inside the handler.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import add_data_root, add_json_flag, add_threads_flag, add_trust_pickle, bounded, emit_json, fraction


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="measure time, energy and memory of a workload next to the model's prediction")
    p.add_argument("--model", default="gcn", help="gcn, gat, gin, sage")
    p.add_argument("--dataset", default="cora", help="cora, citeseer, actor, sbm:n=...,avg_degree=...,...")
    p.add_argument("--method", default="dense", help="dense, random, gebt, geb, sgcn (which phases run)")
    p.add_argument("--graph-sparsity", type=fraction("--graph-sparsity"), default=0.0)
    p.add_argument("--weight-sparsity", type=fraction("--weight-sparsity"), default=0.0)
    p.add_argument("--layers", type=bounded("--layers"), default=2)
    p.add_argument("--hidden", type=bounded("--hidden"), default=None,
                   help="hidden width (per head for gat); default 16, gat 8 (costmodels.workloads.default_hidden)")
    p.add_argument("--heads", type=bounded("--heads"), default=8, help="GAT heads in hidden layers")
    p.add_argument("--seed", type=bounded("--seed"), default=0)
    p.add_argument("--mode", choices=["train", "infer"], default="train", help="training epochs or inference passes")
    p.add_argument("--repeats", type=bounded("--repeats"), default=10,
                   help="measured epochs per phase (median reported)")
    p.add_argument("--warmup", type=bounded("--warmup"), default=3, help="unmeasured epochs first")
    p.add_argument("--phase-windows", action="store_true",
                   help="also time forward / backward / optimizer / mask update in their own windows")
    p.add_argument("--measure-energy", action="store_true",
                   help="require measured energy (NVML or RAPL); fail if this machine has none")
    p.add_argument("--device-profile", default="auto", help="profile to compare against (default: auto-detect)")
    p.add_argument("--run-on", choices=["cpu", "cuda"], default="cpu", help="torch device to run on")
    add_threads_flag(p)
    p.add_argument("--allocator", choices=["reuse", "default"], default="reuse",
                   help="reuse: glibc malloc keeps freed memory (as calibration measures); default: leave it as it is "
                        "(default: reuse)")
    p.add_argument("--graph-sharing", choices=["per-layer", "shared"], default="per-layer",
                   help="search/retrain graphs: per-layer (one per layer, as training does) or shared (one for all "
                        "layers) (default: per-layer)")
    p.add_argument("--out", default=None,
                   help="folder for profile.json (default: runs/profile, or runs/profile-2, ... if that is taken)")
    p.add_argument("--overwrite", action="store_true", help="replace the profile.json an earlier run left in --out")
    add_data_root(p)
    add_trust_pickle(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def _rel(pred: float | None, meas: float | None) -> float | None:
    return None if pred is None or not meas else pred / meas - 1.0


def resolve_device_profile(name: str, meter: Any) -> Any:
    """The ``ResolvedProfile`` for ``name``, or detected from the meter's device (``auto``): on a CPU no
    shipped profile matches, a profile measured on this host (or the user's calibrated copy of it)."""
    from codesign.machine.host_runtime import host_profile_data
    from costmodels.measure import NVMLMeter
    from costmodels.measure.base import cpu_count
    from costmodels.measure.detect import detect_profile
    from costmodels.profiles import resolve_profile

    if name == "auto":
        kind = "gpu" if isinstance(meter, NVMLMeter) else "cpu"
        return detect_profile(meter.device_name, kind=kind, cores=None if kind == "gpu" else cpu_count(),
                              build_host=host_profile_data)
    return resolve_profile(name)


def run(args: argparse.Namespace) -> int:
    from codesign.machine.profiling import method_phases
    from costmodels import GNNSpec
    from costmodels.errors import CodesignError

    # Arguments first: a bad value is named before any device detection or measurement.
    if args.repeats < 1 or args.warmup < 0:
        raise CodesignError(f"--repeats must be >= 1 and --warmup >= 0, got {args.repeats}, {args.warmup}")
    if args.threads is not None and args.threads < 1:
        raise CodesignError(f"--threads must be >= 1, got {args.threads}")
    from .graph_args import check_method_sparsities

    check_method_sparsities(args.method, args.graph_sparsity or None, args.weight_sparsity or None)  # 0: the default
    method_phases(args.method, args.graph_sparsity, args.weight_sparsity)
    args.hidden = GNNSpec(args.model, args.layers, args.hidden, args.heads).hidden  # None -> the model's default
    from costmodels.atomic import write_text

    from .run_folder import check_not_results, check_out_dir, make_out_dir, unused_path

    out_given = str(unused_path(Path("runs/profile"))) if args.out is None else args.out
    check_out_dir(out_given)  # before measuring, not after; an empty --out is refused
    out = Path(out_given)
    check_not_results(out / "profile.json", "--out", args.overwrite)
    result = profile(args)
    make_out_dir(out)
    check_not_results(out / "profile.json", "--out", args.overwrite)  # another run may have finished meanwhile
    write_text(out / "profile.json", json.dumps(result, indent=2, default=str) + "\n")
    if args.json:
        emit_json(result)
    else:
        print(format_table(result))
        print(f"wrote {out / 'profile.json'}")
    return 0


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every phase of the method and pair it with the prediction (the profile.json dict)."""
    import dataclasses

    import torch

    from codesign.machine.host_runtime import runtime_baseline_rss, tune_allocator
    from codesign.machine.profiling import (
        EpochRunner,
        WorkloadConfig,
        measure_grid,
        measure_phases,
        method_phases,
        predicted_passes,
    )
    from codesign.runtime.memory import release_free_memory
    from costmodels import price_workload
    from costmodels.measure import CPUMeter, CPUPowerModel, NVMLMeter, host_summary, make_meter
    from costmodels.measure.base import cpu_count
    from costmodels.measure.torch_hooks import hooks_for

    if args.run_on == "cuda" and not torch.cuda.is_available():
        raise _err("--run-on cuda: torch sees no CUDA device; use --run-on cpu")
    from codesign.graphs.epoch_flops import dataset_epoch_flops
    from codesign.runtime.threads import configure

    policy = configure(args.threads, workload_flops=dataset_epoch_flops(args.dataset, args.hidden, args.layers))
    allocator = "reuse (glibc mallopt)" if args.allocator == "reuse" and tune_allocator() else "default"
    hooks = hooks_for(args.run_on)
    probe = make_meter("gpu" if args.run_on == "cuda" else "cpu", hooks=hooks, require_energy=args.measure_energy)
    resolved = resolve_device_profile(args.device_profile, probe)
    device_label, device = resolved.name, resolved.profile
    from costmodels.profiles import check_calibration_target

    check_calibration_target(device, args.run_on, probe.device_name, action="profile")  # never CPU vs H100
    if args.run_on == "cpu":  # a CPU profile with a [threads] fit is priced at the threads this run uses
        device = device.at_threads(torch.get_num_threads())
    meter = probe
    if isinstance(probe, CPUMeter) and probe.energy_source == "none":
        # No RAPL: energy is estimated from the profile's power numbers, and labelled so.
        power = CPUPowerModel(device.static_power_w, float(device.value("power", "board_power_w")), cpu_count(),
                              f"profile {device.name} [power]")
        meter = make_meter("cpu", hooks=hooks, power_model=power)
    from codesign.graphs.data import forget_loaded, load_dataset

    data = load_dataset(args.dataset, args.data_root)
    widths = (data.num_features, data.num_classes)
    del data  # loaded again after the baseline below (and not kept by the loader meanwhile)
    forget_loaded()
    base = WorkloadConfig(args.model, args.dataset, layers=args.layers, hidden=args.hidden, heads=args.heads,
                          seed=args.seed, mode=args.mode, graph_sharing=args.graph_sharing)
    training = args.mode == "train"
    phases = method_phases(args.method, args.graph_sparsity, args.weight_sparsity)
    if not training:  # inference runs the final ticket: the last phase's sparsities, no search work
        phases = [("inference", {k: v for k, v in phases[-1][1].items() if k.endswith("sparsity")})]
    configs = [dataclasses.replace(base, phase=phase, **kw) for phase, kw in phases]
    # Memory is measured above the warm runtime (torch's kernels and buffers paged in on a tiny graph
    # of the same widths); the data set, model, optimizer and epoch working set are the workload's.
    baseline_rss = runtime_baseline_rss(configs, *widths, args.run_on)
    data = load_dataset(args.dataset, args.data_root)
    release_free_memory()
    # GPU energy counters tick every ~100 ms: repeat short epochs inside one window, then divide.
    min_window_s = 0.5 if isinstance(meter, NVMLMeter) else 0.0
    rows: list[dict[str, Any]] = []
    overheads: dict[str, float] = {}
    for cfg in configs:
        phase = cfg.phase
        runner = EpochRunner(cfg, data, args.run_on)
        # what setting the run up freed (the CSR conversion of sparse features, a model's init draws) goes back
        # to the OS: the allocator would keep it, and the windows would count it as the epochs' memory
        release_free_memory()
        stats = measure_grid([runner], meter, rounds=1, per_round=args.repeats, warmup=args.warmup,
                             progress=False, min_window_s=min_window_s)[0]
        wl = runner.workload(counted_for=(args.method, device))  # the launch term estimate and search use
        cost = price_workload(wl, device, training=training)
        measured_mem = stats.peak_memory_bytes if args.run_on == "cuda" else (
            None if stats.peak_rss_bytes is None else stats.peak_rss_bytes - baseline_rss)
        below = measured_mem is not None and measured_mem < 0  # the heap shrank below the warm baseline
        rows.append(_row(phase, "epoch" if training else "inference", stats, float(cost.latency_s),
                         float(cost.energy_j), None if below else measured_mem, float(cost.memory_bytes)))
        if below:  # too small to see in the process's RSS: not measured, rather than a negative number
            rows[-1]["flags"].append("memory-below-baseline")
        if args.phase_windows:
            per = measure_phases(runner, meter, args.repeats)
            whole = per.pop("epoch_with_phase_windows")
            overheads[phase] = whole.wall_s / stats.wall_s - 1.0
            pred = predicted_passes(wl, device, training)
            for name, st in per.items():
                p = pred.get(name, {"latency_s": None, "energy_j": None})
                rows.append(_row(phase, name, st, p["latency_s"], p["energy_j"], None, None))
    meter.close()
    return {
        "config": {k: v for k, v in vars(args).items() if k not in ("handler",)},
        "calibrated_on": calibrated_elsewhere(device.value("calibration", "machine"), meter.device_name),
        "device_profile": device_label,
        "device_profile_path": device.path,
        "device_profile_kind": resolved.kind,
        "measured_on": meter.device_name,
        "energy_source": rows[0]["energy_source"] if rows else "none",
        "host": host_summary(),
        "torch_threads": torch.get_num_threads(),
        "priced_at_threads": "threads" in device.sections,
        "thread_policy": policy.to_dict(),
        "allocator": allocator,
        "graph": {"nodes": data.num_nodes, "edges": data.num_edges, "features": data.num_features},
        "phase_window_overhead": overheads,
        "memory_measure": "torch.cuda.max_memory_allocated" if args.run_on == "cuda" else
        "peak RSS in the window minus the RSS of the warm runtime before the data and model were loaded",
        "predicted_by": "analytical model (costmodels.price_workload) on the device profile: an estimate",
        "rows": rows,
    }


def _row(phase: str, window: str, st: Any, pred_s: float | None, pred_j: float | None,
         meas_mem: int | None, pred_mem: float | None) -> dict[str, Any]:
    return {
        "phase": phase, "window": window, "repeats": st.repeats,
        "measured_s": st.wall_s, "measured_iqr_s": st.wall_iqr_s, "measured_cpu_s": st.cpu_time_s,
        "predicted_s": pred_s, "time_error": _rel(pred_s, st.wall_s), "cpu_time_error": _rel(pred_s, st.cpu_time_s),
        "measured_j": st.energy_j, "predicted_j": pred_j, "energy_error": _rel(pred_j, st.energy_j),
        "energy_source": st.energy_source,
        "measured_above_idle_j": st.energy_above_idle_j,  # costs.md §2: idle power is large, reported apart
        "measured_memory_bytes": meas_mem, "predicted_memory_bytes": pred_mem,
        "memory_error": _rel(pred_mem, meas_mem), "flags": list(st.flags),
    }


def calibrated_elsewhere(machine: str | None, measured_on: str) -> str | None:
    """The machine a calibrated profile was fitted on (its ``[calibration].machine``, e.g. ``AMD EPYC (2 CPU
    cores)``) when it is not this CPU (``measured_on``, the CPU model name); None for the same CPU or a profile
    no machine was calibrated on. Fitted on a 2-core AMD EPYC, the shipped calibrated profile predicted
    train epochs on a 2-core Intel Xeon within 25% in 11 of 16 rows (mean |error| 22%; 16 of 16, mean 5-8%, on
    the EPYC it was fitted on)."""
    if not machine:
        return None
    fitted_cpu = machine.rsplit(" (", 1)[0].strip()
    return None if fitted_cpu and fitted_cpu.lower() in measured_on.lower() else machine


def _err(msg: str) -> Exception:
    from costmodels.errors import CodesignError

    return CodesignError(msg)


def format_table(result: dict[str, Any]) -> str:
    import pandas as pd

    cols = ["phase", "window", "measured_s", "predicted_s", "time_error", "measured_j", "predicted_j",
            "energy_error", "energy_source", "measured_memory_bytes", "predicted_memory_bytes", "memory_error"]
    if result["torch_threads"] == 1:  # one thread: process cpu time is the work, whatever else the machine runs
        cols[5:5] = ["measured_cpu_s", "cpu_time_error"]
    df = pd.DataFrame(result["rows"])[cols]
    for c in [c for c in ("measured_s", "measured_cpu_s", "predicted_s", "measured_j", "predicted_j") if c in cols]:
        df[c] = df[c].map(lambda v: "-" if v is None or v != v else f"{v:.4g}")
    for c in ("measured_memory_bytes", "predicted_memory_bytes"):
        df[c] = df[c].map(lambda v: "-" if v is None or v != v else f"{v / 1e6:.1f} MB")
    for c in [c for c in ("time_error", "cpu_time_error", "energy_error", "memory_error") if c in cols]:
        df[c] = df[c].map(lambda v: "-" if v is None or v != v else f"{v:+.1%}")
    lines = [f"measured on {result['measured_on']} vs predicted on profile {result['device_profile']} "
             f"({result.get('device_profile_kind')} profile, {result.get('device_profile_path')}) "
             f"(energy: {result['energy_source']}; threads={result['torch_threads']}"
             f"{' (profile priced at this count: [threads])' if result.get('priced_at_threads') else ''}, "
             f"allocator={result['allocator']})"]
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        lines.append(df.to_string(index=False))
    if result.get("calibrated_on"):
        lines.append(f"note: this profile was calibrated on {result['calibrated_on']}, not on this CPU "
                     f"({result['measured_on']}): its fitted factors need not carry over; `codesign calibrate` "
                     "fits one to this machine")
    for phase, ov in result["phase_window_overhead"].items():
        lines.append(f"phase windows ({phase}): epoch with them took {ov:+.1%} vs plain epoch windows")
    if result["energy_source"] == "estimated":
        lines.append("energy 'measured' here is ESTIMATED from the profile's power numbers (no NVML/RAPL): "
                     "its error is model vs model")
    lines.append(f"memory measured as: {result['memory_measure']}; errors = predicted / measured - 1"
                 + ("; cpu_time_error compares with the process cpu time (1 thread: the same work, without the "
                    "waits other processes cause)" if result["torch_threads"] == 1 else ""))
    return "\n".join(lines)
