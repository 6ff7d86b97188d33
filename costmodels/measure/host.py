"""A device profile for *this* CPU, built from short measurements (for CPUs with no shipped profile).

``host_cpu_profile()`` returns profile data (a dict that ``DeviceProfile.from_dict`` validates):

* cores: the CPUs this process may run on (``os.sched_getaffinity``); clock: ``/proc/cpuinfo``
  (``cpu MHz`` of the first core, informational);
* ``peak_fp32_tflops``: a measured fp32 GEMM rate (``torch.mm`` of 512 x 512 matrices, best of a
  few repeats) on one core, times the usable cores, so ``gemm`` efficiency 1.0 means "as fast as
  torch's GEMM here on every core";
* ``dram_bandwidth_gbs``: a measured one-core copy bandwidth (``Tensor.copy_`` of 64 MB, read +
  write counted), larger than any cache of a CPU of today;
* ``kernel_overhead_us``: the measured host cost of one small torch op (dispatch + allocation),
  which the analytical model charges once per host op (``OpCost.kernels``);
* ``serial_step_ns``: a stable ``torch.sort`` of 2^16 values divided by ``n log2 n``
  comparisons (the model's serial step: sort comparisons, random draws);
* everything else (power, energy per FLOP/byte, other efficiencies) is an assumption, said so.

Every measurement runs on one torch thread and counts that thread's CPU time (best of a few), so
other jobs on the machine do not slow the numbers down. Together they take about 0.3 s of CPU
time. The result is labelled
``measured on this host, uncalibrated``: ``codesign calibrate`` fits it to measured epochs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from . import cpu as _cpu
from .base import cpu_count

HOST_PREFIX = "host-cpu"


def host_profile_name(cpu_model: str | None = None, cores: int | None = None) -> str:
    """``host-cpu-<model slug>-<n>core``: a stable name for this CPU and core count."""
    model = cpu_model or _cpu.cpu_model_name()
    n = cores or cpu_count()
    slug = re.sub(r"\(r\)|\(tm\)|cpu|@.*$", " ", model.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", slug).strip("-")[:40] or "unknown"
    return f"{HOST_PREFIX}-{slug}-{n}core"


def clock_mhz() -> float | None:
    """The first core's current clock from /proc/cpuinfo (None where not listed)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("cpu mhz"):
                    return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def _best_s(fn: Callable[[], Any], repeats: int, budget_s: float) -> float:
    """Shortest CPU time of this thread over up to ``repeats`` calls of ``fn`` (stops early once
    ``budget_s`` of wall time is spent). One torch thread runs its ops on the calling thread, so its
    CPU time is the work, whatever else the machine runs."""
    fn()  # warm-up: first-touch pages, kernel selection
    best = float("inf")
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return max(best, 1e-9)


def measure_host() -> dict[str, float]:
    """Per-core measurements on one torch thread (thread CPU time, best of a few): GEMM rate
    [FLOP/s], copy bandwidth [B/s], host time of one small op [s] and of one sort comparison [s].
    About 0.3-1 s."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        n = 512
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        gemm_s = _best_s(lambda: torch.mm(a, b, out=out), 10, 0.12)
        src = torch.ones(16 * 2**20)  # 64 MB
        dst = torch.empty_like(src)
        copy_s = _best_s(lambda: dst.copy_(src), 5, 0.12)
        tiny = torch.ones(8)

        def ops() -> None:
            for _ in range(200):
                tiny + 1.0  # noqa: B018 - a small op with an allocation: what a GNN layer's host ops cost

        op_s = _best_s(ops, 5, 0.05) / 200
        keys = torch.rand(2**16)
        sort_s = _best_s(lambda: torch.sort(keys, descending=True, stable=True), 5, 0.05)
    finally:
        torch.set_num_threads(previous)
    return {"gemm_flops": 2.0 * n**3 / gemm_s, "copy_bps": 2.0 * src.numel() * 4 / copy_s, "op_s": op_s,
            "serial_step_s": sort_s / (keys.numel() * 16)}


def host_cpu_profile(measured: dict[str, float] | None = None, *, cpu_model: str | None = None,
                     cores: int | None = None) -> dict[str, Any]:
    """Profile data for this CPU from :func:`measure_host` (or the given ``measured`` numbers)."""
    model = cpu_model or _cpu.cpu_model_name()
    n = cores or cpu_count()
    m = measured if measured is not None else measure_host()
    mhz = clock_mhz()
    clock = f"{mhz:.0f} MHz" if mhz else "clock unknown"
    gbs = round(m["copy_bps"] / 1e9, 3)
    op_us = round(m["op_s"] * 1e6, 3)
    serial_ns = round(m.get("serial_step_s", 0.0) * 1e9, 4)
    where = f"measured on this host ({model}, {n} usable cores, {clock}) by codesign; uncalibrated"
    tflops = round(m["gemm_flops"] * n / 1e12, 6)  # the per-core rate on every usable core
    board_w = round(3.5 * n, 3)
    return {
        "name": host_profile_name(model, n),
        "display_name": f"{model} ({n} cores, measured here, uncalibrated)",
        "kind": "cpu",
        "source": f"{where}: no shipped profile matches this CPU; run `codesign calibrate` to fit it",
        "compute": {
            "peak_fp32_tflops": tflops,
            "source": f"measured: fp32 GEMM rate of torch.mm 512x512 on one thread (best of a few, thread cpu "
                      f"time) x {n} cores (linear scaling assumed), {where}",
        },
        "memory": {
            "dram_bandwidth_gbs": gbs,
            "dram_capacity_gb": round(_mem_total_gb(), 3),
            "onchip_buffer_mb": 0.0,
            "source": f"measured: Tensor.copy_ of 64 MB (read + write bytes) on one thread, {where}; capacity from "
                      "/proc/meminfo; no on-chip reuse assumed (torch materialises gathered rows)",
        },
        "power": {
            "board_power_w": board_w, "idle_power_w": round(board_w / 3.5, 3),
            "static_power_w": round(board_w / 3.5, 3),
            "source": "assumed: 3.5 W per core under load, 1 W per core idle (no power sensor read); unmeasured",
        },
        "energy": {
            "pj_per_flop_fp32": round((board_w - board_w / 3.5) / max(m["gemm_flops"] * n, 1.0) * 1e12, 3),
            "pj_per_dram_byte": 560.0,
            "source": "per-FLOP: (board - idle) / measured GEMM rate, an estimate; DRAM: 70 pJ/bit "
                      "(Accelergy CACTI DDR3 table, costs.md §3)",
        },
        "efficiency": {
            "gemm": 1.0, "conv": 0.6, "aggregation": 0.2, "elementwise": 0.5,
            "kernel_overhead_us": op_us, "serial_step_ns": serial_ns,
            "source": f"gemm 1.0 (the peak is torch's measured GEMM rate); kernel_overhead_us measured: one small "
                      f"torch op with its allocation; serial_step_ns measured: stable torch.sort of 2^16 values "
                      f"per n*log2(n); {where}; conv/aggregation/elementwise assumed",
        },
        "sparsity": {
            "weight_sparsity_support": "none", "stores_sparse_weights": False, "sparse_index_bytes": 0,
            "source": "dense torch kernels: masked weights are computed and stored dense",
        },
    }


def _mem_total_gb() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except (OSError, ValueError, IndexError):
        pass
    return 0.0
