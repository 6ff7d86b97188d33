"""The launch term of the latency model and the regime (what bounds a step on a device).

A step of ``ops`` dispatched framework operations, ``kernels`` of which launch a device kernel,
pays (per step, on top of the roofline time of its operators)::

    launch_s = max(kernels · t_launch, ops · t_host)

``t_launch`` is the device's per-kernel launch latency (profile ``[efficiency] kernel_overhead_us``)
and ``t_host`` the framework's host-side cost per operation (``[efficiency] host_overhead_us``,
with its own ``host_overhead_source``; 0 where a profile gives none). The host issues operations
while the device runs earlier ones, so whichever of the two streams is slower sets the term.

Where the counts come from: ``Workload.kernel_launches`` / ``Workload.host_ops``, which ``codesign``
fills from ATen operations counted under torch's dispatch (``codesign/dispatch/opcount.py``). Fallback when
no count was taken (a hand-built workload): ``kernels = ops = Σ OpCost.kernels``, the operators'
own launch estimate (one per forward op, one or two per backward op, two for the optimiser) —
about 2-4x fewer than a real PyTorch step dispatches, so latency on small graphs comes out low.

Regime of a step: the largest of its compute-bound time (operators whose FLOP time exceeds their
byte time), bandwidth-bound time (the others) and launch time: ``compute``, ``bandwidth`` or
``launch`` (:func:`regime`). On a launch-bound device pruning edges or weights saves no time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .ops import Array, OpCost

REGIMES = ("compute", "bandwidth", "launch")


def step_counts(costs: Sequence[OpCost], kernel_launches: Array | None = None,
                host_ops: Array | None = None) -> tuple[Array, Array, str]:
    """``(kernels, ops, source)`` of one step: the counted values, else the fallback formula."""
    if kernel_launches is not None:
        return kernel_launches, kernel_launches if host_ops is None else host_ops, "counted"
    total: Array = 0.0
    for c in costs:
        total = total + c.kernels
    return total, total, "fallback: sum of per-operator kernel estimates"


def launch_time_s(kernels: Array, ops: Array, device: Any) -> Array:
    """``max(kernels · t_launch, ops · t_host)`` on ``device`` (a ``DeviceProfile``)."""
    return np.maximum(kernels * device.kernel_overhead_s, ops * device.host_overhead_s)


def regime(compute_s: Array, bandwidth_s: Array, launch_s: Array) -> Any:
    """``compute``, ``bandwidth`` or ``launch``: the largest of the three parts of a step's time
    (element-wise for arrays, as a nested list of labels)."""
    parts = np.stack(np.broadcast_arrays(np.asarray(compute_s, dtype=float), np.asarray(bandwidth_s, dtype=float),
                                         np.asarray(launch_s, dtype=float)))
    labels = np.array(REGIMES)[np.argmax(parts, axis=0)]
    return str(labels) if labels.ndim == 0 else labels.tolist()


def regime_of(cost: Any) -> str | None:
    """The regime of a priced ``Cost`` (None without a device)."""
    if cost.launch_s is None:
        return None
    return regime(cost.compute_s, cost.bandwidth_s, cost.launch_s)  # type: ignore[no-any-return]
