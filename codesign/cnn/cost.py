"""Analytical cost of a CNN pruning run, in two conventions.

1. ``cost``: :func:`costmodels.price_run` over the run's phases, device-independent (``device=None``):
   each phase = ``epochs × ceil(N/B)`` SGD steps of the workload of the network it trains (dense
   until the ticket, pruned after), batch ``B``; plus one forward of the final network. FLOPs use the
   FlopCounterMode convention for conv/linear (multiply-add = 2) plus BN/ReLU/pool/add arithmetic.
2. ``eb_convention``: the EB paper's accounting, which reproduces its tables:
   train FLOPs = Σ_phases 3 × F_fwd(phase network) × N_train × epochs, with
   F_fwd = 2 × conv/linear multiply-adds of one image (``costmodels.cnn.forward_flops_eb``).

Spline-EB's probe passes (``grid²`` eval forwards per checked epoch) are reported separately:
``detector_flops`` = probe images × checks × F_fwd(dense network), forward only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from costmodels.cnn import forward_flops_eb
from costmodels.cnn_resnets import cnn_workload
from costmodels.runs import Phase, price_run


@dataclass(frozen=True)
class PhaseRecord:
    """One training phase as run: ``channels`` = the trained network's prunable widths;
    ``wall_s`` = its measured wall time (training only, no evaluation)."""

    name: str
    epochs: int
    channels: tuple[int, ...]
    wall_s: float = 0.0


@dataclass(frozen=True)
class NetShape:
    """What the workload builders need besides the widths."""

    model: str
    num_classes: int
    in_channels: int
    image_size: int
    width: float


def forward_flops(shape: NetShape, channels: list[int] | tuple[int, ...]) -> float:
    """F_fwd of one image: 2 × conv/linear multiply-adds (= FlopCounterMode on the torch model)."""
    wl = cnn_workload(shape.model, shape.num_classes, shape.in_channels, shape.image_size, width=shape.width,
                      channels=list(channels), training=False)
    return forward_flops_eb(wl)


def eb_train_flops(forward: list[float], epochs: list[int], n_train: int) -> float:
    """Σ_phases 3 × F_fwd × N_train × epochs (the EB paper's convention)."""
    return float(sum(3.0 * f * n_train * e for f, e in zip(forward, epochs)))


def price_cnn_run(shape: NetShape, phases: list[PhaseRecord], final_channels: list[int], *, n_train: int,
                  batch_size: int, probe_images: int = 0, probe_epochs: int = 0) -> dict:
    """The ``cost`` and ``eb_convention`` dicts of a run (see the module docstring)."""
    steps = math.ceil(n_train / batch_size)
    run_phases = [
        Phase(p.name, p.epochs,
              cnn_workload(shape.model, shape.num_classes, shape.in_channels, shape.image_size, width=shape.width,
                           channels=list(p.channels), batch=batch_size, training=True),
              "sgd", steps)
        for p in phases if p.epochs > 0
    ]
    infer = cnn_workload(shape.model, shape.num_classes, shape.in_channels, shape.image_size, width=shape.width,
                         channels=list(final_channels), batch=1, training=False)
    cost = price_run(run_phases, infer, None).to_dict()
    fwd = [forward_flops(shape, p.channels) for p in phases]
    dense_fwd = fwd[0] if fwd else forward_flops(shape, final_channels)
    cost["detector_flops"] = float(probe_images * probe_epochs * dense_fwd)
    cost["detector_flops_note"] = ("spline-EB probe forwards (estimated: F_fwd x probe images x checks); "
                                   "not included in train_flops")
    eb = {
        "train_flops": eb_train_flops(fwd, [p.epochs for p in phases], n_train),
        "forward_flops_per_phase": fwd,
        "convention": "3 x forward FLOPs (multiply-add = 2, conv + linear) x training images x epochs "
                      "(You et al. 2020); estimated analytically",
    }
    return {"cost": cost, "eb_convention": eb}
