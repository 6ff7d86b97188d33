"""`codesign calibrate`: sweep workloads on this machine, fit the device profile, write a calibrated copy.

Measures training epochs of ``--models`` x ``--datasets`` x ``--sparsities`` (graph and weight
sparsity = s) and one GEBT search epoch per model and data set (``--search-epochs``), each the
training code's own epoch (``codesign.machine.profiling``), fits the profile's per-class efficiencies,
kernel overhead and serial step time (and static power when the energy is measured) by non-negative
least squares on all but every ``--holdout-every``-th workload, and reports the epoch-time MAPE on
the held-out ones before and after. On a CPU no shipped profile matches, ``auto`` calibrates a
profile measured on this host (``costmodels.measure.host``). Writes
``<user_profile_dir()>/calibrated/<name>.toml`` (with date, machine and sweep; never into the
package or the repo) and a JSON report. A profile is fitted only to the device it describes
(``check_calibration_target``).

It refuses to calibrate on a busy machine (``costmodels.measure.load``): the load is read before the
sweep and judged again after it (load average, steal time, CPU time / wall of one-thread epochs,
repeat spread); over a limit it stops with one line (``--allow-busy`` fits anyway and says so in
``[calibration]``). It refuses to write a profile whose held-out error is not lower than the
base profile's (``--force`` writes it with a warning, marked ``forced``). ``--refit-from REPORT``
measures nothing: it fits the measurements an earlier run recorded in its report (refused when they
were taken on a busy machine, unless ``--allow-busy``), so a cost-model change can be refitted to a
quiet sweep; ``profiles/calibrated/<name>.measurements.json`` ships the shipped profile's sweep.
On a CPU with more usable cores than ``--threads`` it then measures the same sweep at
``--parallel-threads`` (default: every usable core; wall time) and fits the profile's ``[threads]``
section (``costmodels.parallel``): ``codesign profile`` at that many threads is priced with it. That
fit is held to the same rules (busy checks; its held-out error must drop below the one-thread
fit's at that thread count). torch is imported inside the handler.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .common import add_data_root, add_json_flag, add_threads_flag, bounded, emit_json

DEFAULT_REPORT = "runs/calibrate/calibration.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit a device profile to measured epochs on this machine")
    p.add_argument("--models", default="gcn,gat,sage,gin", help="comma-separated GNN models")
    p.add_argument("--datasets", default="cora,citeseer", help="comma-separated datasets")
    p.add_argument("--sparsities", default="0,0.3,0.6,0.9", help="comma-separated sparsities (graph = weight)")
    p.add_argument("--device-profile", default="auto", help="profile to calibrate (default: detect this machine's)")
    p.add_argument("--name", default=None, help="name of the calibrated profile (default: the profile's name)")
    p.add_argument("--output", default=None,
                   help="TOML path or folder (default: $CODESIGN_PROFILE_HOME, else "
                        "$XDG_DATA_HOME/codesign/profiles, else ~/.local/share/codesign/profiles; "
                        "file calibrated/<name>.toml)")
    p.add_argument("--report", default=None, help="JSON report path (default: runs/calibrate/calibration.json, "
                                                  "or calibration-2.json, ... if that is taken)")
    p.add_argument("--overwrite", action="store_true", help="replace the report an earlier run left at --report")
    p.add_argument("--run-on", choices=["cpu", "cuda"], default="cpu")
    add_threads_flag(p, default=1, help="torch CPU threads (default 1: steadier on a shared machine)")
    p.add_argument("--time", choices=["auto", "wall", "cpu"], default="auto",
                   help="epoch time to fit: wall, or process cpu time (auto: cpu for 1-thread CPU runs, else wall)")
    p.add_argument("--allocator", choices=["reuse", "default"], default="reuse",
                   help="reuse: glibc malloc keeps freed memory (no page faults per epoch); default: leave it as it is "
                        "(default: reuse)")
    p.add_argument("--fit-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="also choose the effective bandwidth and on-chip buffer (grid search on the fit set)")
    p.add_argument("--search-epochs", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure one GEBT search epoch per model and data set (weight step, edge-value step, "
                        "per-layer masks: the sorts and random draws the serial step time is fitted to)")
    p.add_argument("--parallel-threads", type=bounded("--parallel-threads"), default=None, metavar="N",
                   help="CPU: measure the sweep again at N threads and fit the profile's [threads] section, so that "
                        "runs at more threads are priced right (costmodels.parallel; default: the usable cores when "
                        "more than --threads; 0: skip)")
    p.add_argument("--rounds", type=bounded("--rounds"), default=5)
    p.add_argument("--per-round", type=bounded("--per-round"), default=3)
    p.add_argument("--warmup", type=bounded("--warmup"), default=3)
    p.add_argument("--holdout-every", type=bounded("--holdout-every"), default=3,
                   help="hold out every k-th workload for the error")
    p.add_argument("--allow-busy", action="store_true",
                   help="fit even when the machine is busy (load, steal, CPU/wall, spread over the limits of "
                        "costmodels.measure.load); the profile's [calibration] says so")
    p.add_argument("--force", action="store_true",
                   help="write the profile even when its held-out error is not lower than before (with a warning)")
    p.add_argument("--refit-from", default=None, metavar="REPORT",
                   help="measure nothing: fit the profile to the measurements an earlier calibrate recorded in its "
                        "JSON report (e.g. after a cost-model change; the same --models, --datasets, --sparsities, "
                        "--search-epochs)")
    p.add_argument("--hidden", type=bounded("--hidden"), default=None,
                   help="hidden width (per head for gat); default: each model's own, as train and profile run it "
                        "(costmodels.workloads.default_hidden: 16, gat 8)")
    p.add_argument("--heads", type=bounded("--heads"), default=8)
    add_data_root(p)
    add_json_flag(p)
    p.set_defaults(handler=run)


def _datasets(items: list[str]) -> list[str]:
    """``--datasets`` items with a synthetic spec's own commas put back: ``sbm:n=300,avg_degree=6`` splits
    into ``sbm:n=300`` and ``avg_degree=6``; an item ``key=value`` continues the spec before it."""
    out: list[str] = []
    for item in items:
        if out and "=" in item and ":" not in item and ":" in out[-1]:
            out[-1] += "," + item
        else:
            out.append(item)
    return out


def _list(text: str, name: str, cast: Any = str) -> list[Any]:
    from costmodels.errors import CodesignError

    try:
        items = [cast(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise CodesignError(f"--{name} must be a comma-separated list, got {text!r}") from None
    if not items:
        raise CodesignError(f"--{name} is empty; give at least one value")
    return items


def run(args: argparse.Namespace) -> int:
    import torch

    from codesign.machine.calibration import sweep_and_fit
    from codesign.machine.host_runtime import host_profile_data, tune_allocator
    from codesign.machine.profiling import DataCache, sweep_grid
    from costmodels import load_profile
    from costmodels.errors import CodesignError, check_fraction
    from costmodels.measure import NVMLMeter, make_meter
    from costmodels.measure.base import cpu_count
    from costmodels.measure.detect import detect_profile
    from costmodels.measure.torch_hooks import hooks_for
    from costmodels.profiles import check_calibration_target

    models, datasets = _list(args.models, "models"), _datasets(_list(args.datasets, "datasets"))
    sparsities = [check_fraction("--sparsities", s) for s in _list(args.sparsities, "sparsities", float)]
    if min(args.rounds, args.per_round) < 1 or args.warmup < 0 or args.threads < 1:
        raise CodesignError("--rounds, --per-round and --threads must be >= 1 and --warmup >= 0")
    from costmodels.errors import check_name

    from .common import check_file_out

    if args.name is not None:
        check_name("--name", args.name)
    if args.output and Path(args.output).suffix == ".toml":
        check_file_out(args.output, "--output")
    elif args.output:
        from .run_folder import check_out_dir

        check_out_dir(args.output, "--output")
    from .run_folder import check_not_results, unused_path

    args.report_default = args.report is None  # a default report moves on to the next free name at the end
    if args.report is None:
        args.report = str(unused_path(Path(DEFAULT_REPORT)))
    check_file_out(args.report, "--report")
    check_not_results(Path(args.report), "--report", args.overwrite)
    parallel_threads = args.parallel_threads
    if parallel_threads is None:  # the [threads] fit by default on a CPU with more cores than the first sweep used
        parallel_threads = usable if args.run_on == "cpu" and (usable := cpu_count()) > args.threads else 0
    if parallel_threads and (args.run_on != "cpu" or parallel_threads <= args.threads):
        raise CodesignError(f"--parallel-threads {parallel_threads}: give a CPU thread count above --threads "
                            f"{args.threads}, or 0 to skip the [threads] fit")
    if args.refit_from:
        return _refit(args, models, datasets, sparsities)
    if args.run_on == "cuda" and not torch.cuda.is_available():
        raise CodesignError("--run-on cuda: torch sees no CUDA device; use --run-on cpu")
    from codesign.runtime.threads import configure

    policy = configure(args.threads)
    allocator = "reuse" if args.allocator == "reuse" and tune_allocator() else "default"
    meter = make_meter("gpu" if args.run_on == "cuda" else "cpu", hooks=hooks_for(args.run_on))
    if args.device_profile == "auto":
        kind = "gpu" if isinstance(meter, NVMLMeter) else "cpu"
        base = detect_profile(meter.device_name, kind=kind, cores=cpu_count(), prefer_calibrated=False,
                              build_host=host_profile_data).profile
    else:
        base = load_profile(args.device_profile)
    check_calibration_target(base, args.run_on, meter.device_name)  # never fit h100 to CPU epochs
    from costmodels.measure import load as machine_load

    before_load = machine_load.read_load(own_threads=0)
    busy = [f"before the sweep: {w}" for w in machine_load.judge(before_load)]
    if busy and not args.allow_busy:
        raise machine_load.busy_error("before the sweep", machine_load.judge(before_load))
    during: list[Any] = []

    def check_measurements(stats: list[Any]) -> None:
        """After the sweep: the load again (our own threads discounted) and the measurements themselves."""
        whole = (time.perf_counter() - started[0], time.thread_time() - started[1])  # this thread ran the sweep
        reading = machine_load.read_load(own_threads=args.threads)  # (it sleeps through its window)
        during.append(reading)
        rows = [machine_load.MeasurementLoad(s.label, s.wall_s, s.cpu_time_s, s.wall_iqr_s) for s in stats]
        why = machine_load.judge(reading) + machine_load.judge_measurements(
            rows, args.threads if args.run_on == "cpu" else 0, whole=whole)
        busy.extend(f"during the sweep: {w}" for w in why)
        if why and not args.allow_busy:
            raise machine_load.busy_error("during the sweep", why)
    measure = args.time
    if measure == "auto":
        measure = "cpu" if args.run_on == "cpu" and args.threads == 1 else "wall"
    grid = sweep_grid(models, datasets, sparsities, search=args.search_epochs, hidden=args.hidden, heads=args.heads)
    note = (f"models={','.join(models)} datasets={','.join(datasets)} sparsities={args.sparsities} "
            f"search_epochs={args.search_epochs} hidden={args.hidden or 'default'} heads={args.heads} "
            f"run_on={args.run_on} threads={args.threads} allocator={allocator} torch={torch.__version__}")
    data = DataCache(args.data_root)
    started = (time.perf_counter(), time.thread_time())
    res = sweep_and_fit(grid, base, meter, data=data, device=args.run_on, rounds=args.rounds,
                        per_round=args.per_round, warmup=args.warmup, time_measure=measure,
                        holdout_every=args.holdout_every, sweep_note=note,
                        min_window_s=0.5 if isinstance(meter, NVMLMeter) else 0.0, fit_memory=args.fit_memory,
                        check_measurements=check_measurements)
    parallel = None
    if parallel_threads:
        parallel = _fit_threads(args, grid, res.profile_data, meter, data, parallel_threads, during, busy)
    meter.close()
    readings = "; ".join([f"before: {before_load.summary()}"] + [f"after: {r.summary()}" for r in during])
    verdict = "over the limits (--allow-busy)" if busy else "quiet by the limits of costmodels.measure.load"
    load = f"{readings}; {verdict}"
    extra = {"machine": res.profile_data["calibration"]["machine"], "hidden": args.hidden, "heads": args.heads,
             "load_before": before_load.to_dict(),
             "load_after": [r.to_dict() for r in during]}
    return _write(args, base, res, parallel, busy, load, note, measure, policy.to_dict(), extra)


def _write(args: argparse.Namespace, base: Any, res: Any, parallel: Any, busy: list[str], load: str, note: str,
           measure: str, policy: dict[str, Any], extra: dict[str, Any]) -> int:
    """Refuse a worse fit, write the calibrated profile and the JSON report, print the table."""
    from costmodels.calibrate import write_profile
    from costmodels.measure.detect import user_calibrated_path

    from .run_folder import check_not_results, unused_path

    # another run may have written the report meanwhile (checked again before anything is written)
    if getattr(args, "report_default", False):
        args.report = str(unused_path(Path(DEFAULT_REPORT)))
    check_not_results(Path(args.report), "--report", args.overwrite)
    forced = refuse_worse_fit(res.mape_before, res.mape_after, args.force)
    if parallel is not None:
        forced = refuse_worse_fit(parallel.mape_before, parallel.mape_after, args.force,
                                  f" at {parallel.threads} threads") or forced
        res.profile_data["threads"] = parallel.section
    out_name = args.name or base.name
    output = Path(args.output) if args.output else user_calibrated_path(out_name)
    if output.suffix != ".toml":  # a folder
        output = output / f"{out_name}.toml"
    res.profile_data["name"] = out_name
    section = res.profile_data["calibration"]
    section["load"] = load
    section["busy"] = bool(busy)
    section["forced"] = forced
    if busy:
        section["source"] = f"{section['source']}; FITTED ON A BUSY MACHINE (--allow-busy): {'; '.join(busy)}"
    write_profile(res.profile_data, output)
    cal = res.calibration
    report = {
        "profile": base.name, "output": str(output), "time_measure": measure, "energy_note": cal.note,
        "mape_before": res.mape_before, "mape_after": res.mape_after, "fit_mape": cal.train_mape,
        "held_out": list(res.held_out), "fitted_classes": list(cal.fitted_classes),
        "efficiency": cal.efficiency, "kernel_overhead_us": cal.kernel_overhead_us,
        "serial_step_ns": cal.serial_step_ns,
        "static_power_w": cal.static_power_w, "static_power_fitted": cal.static_power_fitted,
        "dram_bandwidth_gbs": cal.dram_bandwidth_gbs, "onchip_buffer_mb": cal.onchip_buffer_mb,
        "memory_fitted": cal.memory_fitted,
        "sweep": note, "thread_policy": policy, "measure_s": res.measure_s, "rows": list(res.rows),
        **extra, "busy": busy, "forced": forced,
    }
    if parallel is not None:
        report["threads"] = {"threads": parallel.threads, "section": parallel.section,
                             "mape_before": parallel.mape_before, "mape_after": parallel.mape_after,
                             "measure_s": parallel.measure_s, "rows": list(parallel.rows)}
    from costmodels.atomic import write_text

    from .run_folder import make_out_dir

    make_out_dir(Path(args.report).parent, "--report")
    write_text(args.report, json.dumps(report, indent=2) + "\n")
    if args.json:
        emit_json(report)
        return 0
    print(format_report(report))
    return 0


def _refit(args: argparse.Namespace, models: list[str], datasets: list[str], sparsities: list[float]) -> int:
    """``--refit-from``: fit the profile (and its ``[threads]`` section) to a recorded sweep's measurements."""
    from codesign.machine.calibration import recorded_stats, sweep_and_fit, sweep_and_fit_threads
    from codesign.machine.profiling import DataCache, sweep_grid
    from costmodels import load_profile
    from costmodels.errors import CodesignError

    path = Path(args.refit_from)
    try:
        source = json.loads(path.read_text())
        rows, measure, sweep = source["rows"], source["time_measure"], source["sweep"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CodesignError(f"--refit-from {args.refit_from}: not a calibrate report ({e}); give the JSON that "
                            "`codesign calibrate --report` wrote") from None
    base = load_profile(source["profile"] if args.device_profile == "auto" else args.device_profile)
    if source.get("profile") != base.name:
        raise CodesignError(f"--refit-from {args.refit_from}: its sweep calibrated {source.get('profile')!r}, not "
                            f"{base.name!r}; pass --device-profile {source.get('profile')}")
    busy = [f"recorded sweep: {w}" for w in source.get("busy", [])]
    if busy and not args.allow_busy:
        raise CodesignError(f"--refit-from {args.refit_from}: its measurements were taken on a busy machine "
                            f"({source['busy'][0]}); measure again on a quiet machine, or pass --allow-busy")
    # the widths the sweep measured: a report records them; those written before it did swept every model at 16
    hidden = source.get("hidden", 16) if args.hidden is None else args.hidden
    heads = int(source.get("heads", 8))
    grid = sweep_grid(models, datasets, sparsities, search=args.search_epochs, hidden=hidden, heads=heads)
    data = DataCache(args.data_root)
    machine = source.get("machine") or "the machine that measured the recorded sweep"
    note = f"{sweep}; refitted with --refit-from {path.name} (measured nothing)"
    res = sweep_and_fit(grid, base, None, data=data, device="cpu", time_measure=measure,
                        holdout_every=args.holdout_every, sweep_note=note, fit_memory=args.fit_memory,
                        recorded=recorded_stats(rows, measure), machine=machine)
    parallel = None
    if source.get("threads"):
        t = source["threads"]
        fitted_threads = int(source.get("thread_policy", {}).get("threads", 1) or 1)
        parallel = sweep_and_fit_threads(grid, res.profile_data, None, threads=int(t["threads"]),
                                         fitted_threads=fitted_threads, data=data,
                                         holdout_every=args.holdout_every, recorded=recorded_stats(t["rows"], "wall"))
    before, after = source.get("load_before"), source.get("load_after") or []
    load = _recorded_load(path.name, source.get("measured"), before, after)
    extra = {"machine": machine, "refit_from": str(path), "hidden": hidden, "heads": heads, "load_before": before,
             "load_after": after}
    return _write(args, base, res, parallel, busy, load, note, measure, source.get("thread_policy", {}), extra)


def _recorded_load(name: str, measured: str | None, before: Any, after: list[Any]) -> str:
    """The ``[calibration] load`` of a refit: the recorded sweep's readings, and whether they pass the limits."""
    from costmodels.measure import load as machine_load

    def reading(d: dict[str, Any]) -> Any:
        return machine_load.LoadReading(d["load_avg_1m"], d["usable_cores"], d["own_threads"], d.get("steal_fraction"),
                                        d["window_s"], d.get("busy_fraction"))

    try:
        readings = [("before", reading(before))] + [("after", reading(a)) for a in after]
    except (KeyError, TypeError):
        return f"recorded in {name}: not readable"
    why = [w for _, r in readings for w in machine_load.judge(r)]
    verdict = "over the limits: " + "; ".join(why) if why else "quiet by the limits of costmodels.measure.load"
    when = f" (measured {measured})" if measured else ""
    return (f"recorded in {name}{when}: " + "; ".join(f"{k}: {r.summary()}" for k, r in readings) + f"; {verdict}")


def _fit_threads(args: argparse.Namespace, grid: list[Any], fitted: dict[str, Any], meter: Any, data: Any,
                 threads: int, during: list[Any], busy: list[str]) -> Any:
    """The sweep again at ``threads`` threads (wall time) and its ``[threads]`` fit (``codesign.machine.calibration``),
    with the same busy checks as the first sweep."""
    from codesign.machine.calibration import sweep_and_fit_threads
    from codesign.runtime.threads import configure
    from costmodels.measure import load as machine_load

    configure(threads)

    def check(stats: list[Any]) -> None:
        reading = machine_load.read_load(own_threads=threads)
        during.append(reading)
        rows = [machine_load.MeasurementLoad(s.label, s.wall_s, s.cpu_time_s, s.wall_iqr_s) for s in stats]
        why = machine_load.judge(reading) + machine_load.judge_measurements(rows, threads)
        busy.extend(f"during the {threads}-thread sweep: {w}" for w in why)
        if why and not args.allow_busy:
            raise machine_load.busy_error(f"during the {threads}-thread sweep", why)
    try:
        return sweep_and_fit_threads(grid, fitted, meter, threads=threads, fitted_threads=args.threads, data=data,
                                     rounds=args.rounds, per_round=args.per_round, warmup=args.warmup,
                                     holdout_every=args.holdout_every, check_measurements=check)
    finally:
        configure(args.threads)


def refuse_worse_fit(before: float, after: float, force: bool, where: str = "") -> bool:
    """Stop (one line, nothing written) when the fit did not lower the held-out error; with ``force``
    warn on stderr and go on. Returns whether the write is forced. ``where``: which fit (e.g. at 2 threads)."""
    import sys

    from costmodels.errors import CodesignError

    if after < before:
        return False
    message = (f"the calibrated profile's held-out epoch-time MAPE{where} {after:.1%} is not lower than the base "
               f"profile's {before:.1%}")
    if not force:
        raise CodesignError(f"{message}: not written; measure more workloads (--sparsities, --datasets, --models) "
                            "on a quiet machine, or pass --force to write it anyway")
    print(f"warning: {message}; written anyway (--force), marked forced in [calibration]", file=sys.stderr)
    return True


def format_report(report: dict[str, Any]) -> str:
    import pandas as pd

    df = pd.DataFrame(report["rows"]).set_index("workload")
    df = df[["split", "measured_s", "wall_iqr_s", "before_s", "after_s", "error_before", "error_after"]]
    for c in ("measured_s", "wall_iqr_s", "before_s", "after_s"):
        df[c] = df[c].map(lambda v: f"{v * 1e3:.2f} ms")
    for c in ("error_before", "error_after"):
        df[c] = df[c].map(lambda v: f"{v:+.1%}")
    eff = ", ".join(f"{k}={v:.4g}" for k, v in report["efficiency"].items())
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        table = df.to_string()
    return "\n".join([
        table,
        f"fitted ({', '.join(report['fitted_classes'])} + kernel overhead): {eff}, "
        f"kernel_overhead_us={report['kernel_overhead_us']:.3g}, serial_step_ns={report['serial_step_ns']:.3g}; "
        f"effective memory: "
        f"{report['dram_bandwidth_gbs']:g} GB/s, on-chip {report['onchip_buffer_mb']:g} MB"
        f"{' (grid search)' if report['memory_fitted'] else ''}; {report['energy_note']}",
        f"held-out epoch-time MAPE ({report['time_measure']} time, {len(report['held_out'])} workloads): "
        f"before {report['mape_before']:.1%}, after {report['mape_after']:.1%} (fit set: {report['fit_mape']:.1%})",
        *([f"[threads] at {t['threads']} threads (wall time, {len(t['rows'])} workloads): held-out MAPE "
           f"{t['mape_before']:.1%} with the one-thread fit -> {t['mape_after']:.1%}"]
          if (t := report.get("threads")) else []),
        f"wrote {report['output']}",
    ])
