"""Analytical pricing of workloads on device profiles: FLOPs, bytes, memory, latency, energy.

Per operator and pass (forward, backward, optimizer step), with ``P(dtype, class)`` the profile's
peak FLOP/s, ``BW`` its DRAM bandwidth, ``η(class)`` its efficiency (fraction of peak reached for
that op class) and ``t_k`` its per-kernel overhead::

    latency_s = Σ_ops max(flops / (P·η), dram_bytes / (BW·η)) + serial_steps · t_s + launch_s
    launch_s  = max(kernels · t_k, host_ops · t_host)   per step (launch.py: counts and fallback)
    (serial work: sorts, random draws, ``ops.RNG_STEPS_PER_DRAW``; priced as compute time)
    energy_j  = flops · e_flop(dtype) + dram_bytes · e_byte + static_power_w · latency_s

Memory footprint (bytes), training: stored weights + their gradients + optimizer state
(Adam 2, SGD 1 values per weight) + activations saved for backward + the largest transient working
set of one op (``workspace_bytes``) + graph (edge_index pairs and one value per stored message) +
trainable edge values with gradient and state + input tensor.
Inference: weights + graph + input + the two largest tensors live at once (an op's input/output).

With ``device=None`` the counts are device-independent: weight sparsity fully exploited, no
on-chip reuse (every gathered row read from DRAM), latency and energy ``None``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .context import ExecContext
from .launch import launch_time_s, step_counts
from .ops import Array, OpCost, optimizer_cost, optimizer_state_values
from .profiles import DTYPE_BYTES, DeviceProfile
from .workloads import Workload

FLOP_CONVENTION = "flops: multiply-add = 2 FLOPs (torch FlopCounterMode convention), executed on the device"
MAC_CONVENTION = (
    "macs: MAC-like count of GEMM/conv/aggregation at algorithmic weight density; aggregation "
    "counts nnz(A)·F without self-loops (GEBT Table 2 convention); forward passes only; elementwise ops count 0"
)
UNITS = {"flops": "FLOP", "macs": "MAC", "dram_bytes": "B", "memory_bytes": "B", "latency_s": "s",
         "energy_j": "J"}


@dataclass(frozen=True)
class Cost:
    """Totals of one pass, epoch or run. Fields broadcast over grids; latency/energy None w/o device.

    ``compute_s`` + ``bandwidth_s`` + ``launch_s`` = ``latency_s``: the time of compute-bound
    operators, of bandwidth-bound ones, and the launch term (``launch.py``; its largest part is the
    regime, ``launch.regime_of``)."""

    flops: Array
    macs: Array
    dram_bytes: Array
    memory_bytes: Array
    latency_s: Array | None = None
    energy_j: Array | None = None
    compute_s: Array | None = None
    bandwidth_s: Array | None = None
    launch_s: Array | None = None

    def scaled(self, k: float) -> Cost:
        """This cost repeated ``k`` times (memory is a peak, not a sum)."""
        def mul(a: Array | None) -> Array | None:
            return None if a is None else a * k

        return Cost(
            self.flops * k, self.macs * k, self.dram_bytes * k, self.memory_bytes,
            mul(self.latency_s), mul(self.energy_j), mul(self.compute_s), mul(self.bandwidth_s), mul(self.launch_s),
        )

    def __add__(self, other: Cost) -> Cost:
        def add(a: Array | None, b: Array | None) -> Array | None:
            return None if a is None or b is None else a + b

        return Cost(
            self.flops + other.flops, self.macs + other.macs, self.dram_bytes + other.dram_bytes,
            np.maximum(self.memory_bytes, other.memory_bytes),
            add(self.latency_s, other.latency_s), add(self.energy_j, other.energy_j),
            add(self.compute_s, other.compute_s), add(self.bandwidth_s, other.bandwidth_s),
            add(self.launch_s, other.launch_s),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def context_for(device: DeviceProfile | None, dtype: str = "fp32", training: bool = True) -> ExecContext:
    if device is None:
        return ExecContext(dtype_bytes=DTYPE_BYTES[dtype], training=training)
    return device.exec_context(dtype, training)


def op_costs(workload: Workload, ctx: ExecContext, *, training: bool, optimizer: str = "adam") -> list[OpCost]:
    """Forward costs in order; when training, backward costs in reverse order and one optimizer step."""
    costs = [op.forward(ctx) for op in workload.ops]
    if training:
        costs += [op.backward(ctx) for op in reversed(workload.ops)]
        costs += [op.forward(ctx) for op in workload.graph_step]  # a search's edge-value step
        costs += [op.backward(ctx) for op in reversed(workload.graph_step)]
        params = stored_values(workload, ctx) + workload.extra_trainable
        costs.append(optimizer_cost("optimizer", params, optimizer, ctx))
    return costs


def stored_params(workload: Workload, ctx: ExecContext) -> Array:
    """Bytes of stored parameters (compressed where the device stores sparse weights)."""
    total: Array = 0.0
    for op in workload.ops:
        d = getattr(op, "weight_density", None)
        count = op.param_count()
        total = total + (ctx.weight_bytes(count, d) if d is not None else count * ctx.dtype_bytes)
    return total


def stored_values(workload: Workload, ctx: ExecContext) -> Array:
    """Parameter values stored, the ones the optimizer updates and gradients have: the kept weights
    where the device stores a layer compressed (as :func:`stored_params` decides), every weight
    otherwise. Index bytes are storage, not parameters (counted as such, they made the optimizer's
    work grow with the index share, larger in fp16). Whether a layer is stored compressed still
    depends on the dtype (fp16 with 2-byte indices: a half-pruned layer is stored dense)."""
    total: Array = 0.0
    for op in workload.ops:
        d = getattr(op, "weight_density", None)
        count = op.param_count()
        if d is None or not ctx.sparse_weight_storage:
            total = total + count + (0.0 * d if d is not None else 0.0)
            continue
        kept = count * ctx.exploited(d, "unstructured")
        compressed = kept * (ctx.dtype_bytes + ctx.sparse_index_bytes) < count * ctx.dtype_bytes
        total = total + np.where(compressed, kept, count)
    return total


def memory_breakdown(workload: Workload, ctx: ExecContext, *, training: bool,
                     optimizer: str = "adam") -> dict[str, Array]:
    """Peak memory footprint of one pass by component [bytes] (see the module docstring)."""
    b = ctx.dtype_bytes
    weights = stored_params(workload, ctx)
    parts: dict[str, Array] = {
        "parameters": weights,
        "graph": workload.graph_edges * (2.0 * ctx.index_bytes + b),
        "inputs": workload.input_values * b * ctx.feature_scale(workload.input_density),
    }
    if training:
        saved: Array = 0.0
        for op in workload.ops:
            saved = saved + op.saved_bytes(ctx)
        step: Array = 0.0  # the edge-value step runs after the weight step's activations are freed
        for op in workload.graph_step:
            step = step + op.saved_bytes(ctx)
        saved = np.maximum(saved, step)
        state = optimizer_state_values(optimizer)
        values = (stored_values(workload, ctx) + workload.extra_trainable) * b  # indices are shared, not trained
        parts["gradients"] = values
        parts["optimizer_state"] = values * state
        parts["trainable_graph"] = workload.extra_trainable * b
        parts["activations"] = saved
        parts["workspace"] = _workspace(workload, ctx)
    else:
        outputs = [op.output_bytes(ctx) for op in workload.ops]
        live = 0.0 * weights
        for prev, cur in zip(outputs, outputs[1:]):
            live = np.maximum(live, prev + cur)
        parts["activations"] = live
    return parts


def _workspace(workload: Workload, ctx: ExecContext) -> Array:
    """The largest transient working set of one op (ops without ``workspace_bytes`` have none)."""
    peak: Array = 0.0
    for op in (*workload.ops, *workload.graph_step):
        ws = getattr(op, "workspace_bytes", None)
        if ws is not None:
            peak = np.maximum(peak, ws(ctx))
    return peak


def memory_bytes(workload: Workload, ctx: ExecContext, *, training: bool, optimizer: str = "adam") -> Array:
    """Total of :func:`memory_breakdown`."""
    total: Array = 0.0
    for value in memory_breakdown(workload, ctx, training=training, optimizer=optimizer).values():
        total = total + value
    return total


def _roofline(c: OpCost, device: DeviceProfile, dtype: str) -> tuple[Array, Array]:
    """(compute time, byte time) of one operator at the profile's efficiency."""
    eta = device.efficiency(c.op_class)
    return c.flops / (device.peak_flops(dtype, c.op_class) * eta), c.dram_bytes / (device.dram_bandwidth_bps * eta)


def _price(costs: list[OpCost], device: DeviceProfile, dtype: str) -> tuple[Array, Array]:
    """Latency and energy of ``costs`` with each operator's own launch estimate (per-op rows)."""
    latency: Array = 0.0
    energy: Array = 0.0
    for c in costs:
        t_flop, t_byte = _roofline(c, device, dtype)
        latency = (latency + np.maximum(t_flop, t_byte) + launch_time_s(c.kernels, c.kernels, device)
                   + c.serial_steps * device.serial_step_s)
        energy = energy + c.flops * device.joules_per_flop(dtype, c.op_class) + c.dram_bytes * device.joules_per_byte
    energy = energy + device.static_power_w * latency
    return latency, energy


def _price_step(costs: list[OpCost], workload: Workload, device: DeviceProfile,
                dtype: str) -> tuple[Array, Array, Array, Array, Array]:
    """(latency, energy, compute_s, bandwidth_s, launch_s) of one step: roofline per operator plus
    one launch term for the step's counted kernels and ops (``launch.py``)."""
    compute: Array = 0.0
    bandwidth: Array = 0.0
    energy: Array = 0.0
    for c in costs:
        t_flop, t_byte = _roofline(c, device, dtype)
        compute = compute + np.where(t_flop >= t_byte, t_flop, 0.0) + c.serial_steps * device.serial_step_s
        bandwidth = bandwidth + np.where(t_flop >= t_byte, 0.0, t_byte)
        energy = energy + c.flops * device.joules_per_flop(dtype, c.op_class) + c.dram_bytes * device.joules_per_byte
    kernels, ops, _ = step_counts(costs, workload.kernel_launches, workload.host_ops)
    launch = launch_time_s(kernels, ops, device)
    latency = compute + bandwidth + launch
    energy = energy + device.static_power_w * latency
    return latency, energy, compute, bandwidth, launch


def price_workload(
    workload: Workload,
    device: DeviceProfile | None = None,
    *,
    training: bool,
    optimizer: str = "adam",
    dtype: str = "fp32",
) -> Cost:
    """Cost of one step of ``workload`` (one full-graph epoch for a GNN) on ``device``."""
    ctx = context_for(device, dtype, training)
    costs = op_costs(workload, ctx, training=training, optimizer=optimizer)
    flops: Array = 0.0
    macs: Array = 0.0
    dram: Array = 0.0
    for c in costs:
        flops, macs, dram = flops + c.flops, macs + c.macs, dram + c.dram_bytes
    mem = memory_bytes(workload, ctx, training=training, optimizer=optimizer)
    if device is None:
        return Cost(flops, macs, dram, mem)
    latency, energy, compute, bandwidth, launch = _price_step(costs, workload, device, dtype)
    return Cost(flops, macs, dram, mem, latency, energy, compute, bandwidth, launch)


def breakdown(workload: Workload, device: DeviceProfile | None = None, *, training: bool,
              optimizer: str = "adam", dtype: str = "fp32") -> list[dict[str, Any]]:
    """Per-operator rows (name, class, pass, flops, macs, dram_bytes, latency_s, energy_j)."""
    ctx = context_for(device, dtype, training)
    rows = []
    for c in op_costs(workload, ctx, training=training, optimizer=optimizer):
        row: dict[str, Any] = {"op": c.name, "class": c.op_class, "pass": c.phase, "flops": c.flops,
                               "macs": c.macs, "dram_bytes": c.dram_bytes, "kernels": c.kernels}
        if device is not None:
            row["latency_s"], row["energy_j"] = _price([c], device, dtype)
        rows.append(row)
    return rows
