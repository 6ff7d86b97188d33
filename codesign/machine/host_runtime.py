"""This host's runtime, as profiling and calibration need it: the allocator (:func:`tune_allocator`),
resident memory (:func:`current_rss_bytes`, :func:`runtime_baseline_rss`), and the host cost of one
modelled op with the measured-host profile built from it (:func:`host_op_seconds`,
:func:`host_profile_data`). The epochs it runs are ``codesign.machine.profiling.EpochRunner``'s: the
training code's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from codesign.runtime.memory import KEEP_TOP, M_MMAP_MAX, M_TRIM_THRESHOLD, glibc, release_free_memory

if TYPE_CHECKING:
    from codesign.machine.profiling import WorkloadConfig


def tune_allocator() -> bool:
    """Make glibc malloc keep freed memory for reuse (``mallopt(M_MMAP_MAX, 0)``,
    ``mallopt(M_TRIM_THRESHOLD, 2^31-1)``); returns False where glibc is not the allocator.

    Why: glibc serves blocks above its mmap threshold (at most 32 MB) with fresh ``mmap`` pages,
    so every epoch page-faults its large tensors in again (e.g. SAGE's ``[E, F_in]`` messages on
    CiteSeer, 135 MB): measured 2-3x slower epochs, a cost the analytical model has no term for.
    PyTorch's CPU tuning guides recommend a caching allocator (jemalloc/tcmalloc) for the same reason.
    """
    try:
        libc = glibc()
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_TOP))
    except (OSError, AttributeError):
        return False


def current_rss_bytes() -> int:
    """This process's resident set now (``VmRSS``; the peak so far where /proc is not readable)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def runtime_baseline_rss(configs: Sequence[WorkloadConfig], features: int, classes: int,
                         device: str | torch.device = "cpu") -> int:
    """The process's resident memory once the runtime is warm: run two epochs of every config on a
    1024-node random graph of the same widths (this pages in the kernels, thread buffers and GEMM
    packing buffers the workload will use: library buffers of a fixed size, not the workload's),
    free them, and read the RSS. What a workload adds on top of it is its own."""
    from codesign.graphs.data import build_graph
    from codesign.machine.profiling import EpochRunner

    gen = torch.Generator().manual_seed(0)
    n = 1024
    x = torch.rand(n, features, generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    edges = torch.randint(0, n, (2, 4 * n), generator=gen)
    split = torch.zeros(n, dtype=torch.bool)
    split[: n // 2] = True
    tiny = build_graph("warm-up", x, y, edges, (split, ~split, ~split), "warm-up")
    for cfg in configs:
        runner = EpochRunner(cfg, tiny, device)
        for _ in range(2):
            runner.epoch()
        del runner
    release_free_memory()
    return current_rss_bytes()


def host_op_seconds(model: str = "gcn", epochs: int = 10) -> float:
    """Measured host time of one modelled host op (``OpCost.kernels``): this thread's CPU time of a
    training epoch on a 64-node graph (where compute is nil and dispatch, autograd and Python are
    everything) divided by the host ops the analytical model counts for it. Measured on the
    development machine: 60-90 us for every model (gcn, gat, sage, gin; train and search epochs)."""
    import time

    from codesign.graphs.data import build_graph
    from codesign.machine.profiling import EpochRunner, WorkloadConfig
    from costmodels.analytical import context_for, op_costs

    gen = torch.Generator().manual_seed(0)
    n = 64
    split = torch.zeros(n, dtype=torch.bool)
    split[: n // 2] = True
    tiny = build_graph("host-ops", torch.rand(n, 16, generator=gen), torch.randint(0, 4, (n,), generator=gen),
                       torch.randint(0, n, (2, 4 * n), generator=gen), (split, ~split, ~split), "host-ops")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = EpochRunner(WorkloadConfig(model, "host-ops", 0.3, 0.3), tiny)
        for _ in range(2):
            runner.epoch()
        best = float("inf")
        for _ in range(2):
            t0 = time.thread_time()
            for _ in range(epochs):
                runner.epoch()
            best = min(best, (time.thread_time() - t0) / epochs)
    finally:
        torch.set_num_threads(previous)
    ops = sum(float(c.kernels) for c in op_costs(runner.workload(), context_for(None), training=True))
    return best / ops


def host_profile_data() -> dict[str, Any]:
    """``costmodels.measure.host.host_cpu_profile`` with the per-host-op time of
    :func:`host_op_seconds` (a GNN epoch's own host ops, not a bare tensor add)."""
    from costmodels.measure.host import host_cpu_profile, measure_host

    measured = measure_host()
    measured["op_s"] = host_op_seconds()
    data = host_cpu_profile(measured)
    data["efficiency"]["source"] = data["efficiency"]["source"].replace(
        "kernel_overhead_us measured: one small torch op with its allocation",
        "kernel_overhead_us measured: CPU time of a GCN training epoch on a 64-node graph per modelled host op")
    return data
