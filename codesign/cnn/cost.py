"""Analytical cost of a CNN pruning run, in two conventions, re-priceable on any device.

A run records device-independent ``cost_inputs`` (:func:`cost_inputs`): the network (model, classes,
channels C, image size H, width), the widths each phase trained (dense until the ticket, the kept
widths after), epochs per phase, batch B, steps per epoch ``ceil(N_train / B)`` (one fewer when a
last batch of one image joins the one before: :func:`train_steps`), optimizer (SGD) and the spline
detector's probe work. :func:`price` turns them into ``RunCost.to_dict()`` on a device:

1. ``cost`` = ``price(cost_inputs, device)``: :func:`costmodels.price_run` over the phases, each
   ``epochs × train_steps(N, B)`` SGD steps of the workload of the network it trains (batch ``B``), plus one
   forward (batch 1) of the final network as ``infer_*``. FLOPs use the FlopCounterMode convention
   for conv/linear (multiply-add = 2) plus BN/ReLU/pool/add arithmetic. Spline-EB's probe passes
   are part of training: a phase ``detector-probe`` of ``checks × ceil(P / 256)`` forward-only
   (eval) passes of the dense network at batch ``min(P, 256)`` (P = probe images), so
   ``train_* = Σ_training phases + probe``; ``detector_flops`` = P × checks × F_fwd(dense) counts
   the same passes in the EB convention below.
2. ``eb_convention``: the EB paper's accounting, which reproduces its tables:
   train FLOPs = Σ_phases 3 × F_fwd(phase network) × N_train × epochs, with
   F_fwd = 2 × conv/linear multiply-adds of one image (``costmodels.cnn.forward_flops_eb``);
   probe passes are not part of this convention.

All numbers are estimates of the analytical model (roofline latency/energy on a profile), not
measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from costmodels import PhaseCost, RunCost, load_profile, price_workload
from costmodels.cnn import forward_flops_eb
from costmodels.cnn_resnets import cnn_workload
from costmodels.profiles import DeviceProfile
from costmodels.runs import Phase, price_run

PROBE_BATCH = 256  # codesign.cnn.detectors.partition_codes' batch
OPTIMIZER = "sgd"


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


def train_steps(n_train: int, batch_size: int) -> int:
    """SGD steps per epoch: ``ceil(N / B)``, one fewer when the last batch would hold a single image
    (it joins the batch before; ``codesign.cnn.data.batch_bounds``)."""
    steps = math.ceil(n_train / batch_size)
    return steps - 1 if steps > 1 and n_train % batch_size == 1 else steps


def eb_train_flops(forward: list[float], epochs: list[int], n_train: int) -> float:
    """Σ_phases 3 × F_fwd × N_train × epochs (the EB paper's convention)."""
    return float(sum(3.0 * f * n_train * e for f, e in zip(forward, epochs)))


def cost_inputs(shape: NetShape, phases: list[PhaseRecord], final_channels: list[int] | tuple[int, ...], *,
                dense_channels: list[int] | tuple[int, ...], n_train: int, batch_size: int, probe_images: int = 0,
                probe_epochs: int = 0) -> dict[str, Any]:
    """Everything :func:`price` needs, as plain JSON-able values (stored in the result record).

    ``dense_epochs`` = epochs trained on the dense widths (until the ticket), ``pruned_epochs`` = epochs
    on narrower networks after it; ``phases`` carries the exact widths of every phase.
    """
    dense = [int(c) for c in dense_channels]
    return {
        "model": shape.model, "num_classes": shape.num_classes, "in_channels": shape.in_channels,
        "image_size": shape.image_size, "width": shape.width,
        "dense_channels": dense, "kept_channels": [int(c) for c in final_channels],
        "phases": [{"name": p.name, "epochs": int(p.epochs), "channels": [int(c) for c in p.channels]}
                   for p in phases],
        "dense_epochs": int(sum(p.epochs for p in phases if list(p.channels) == dense)),
        "pruned_epochs": int(sum(p.epochs for p in phases if list(p.channels) != dense)),
        "n_train": int(n_train), "batch_size": int(batch_size), "steps_per_epoch": train_steps(n_train, batch_size),
        "optimizer": OPTIMIZER, "probe_images": int(probe_images), "probe_epochs": int(probe_epochs),
    }


def _workload(ci: dict[str, Any], channels: list[int], *, batch: int, training: bool):  # type: ignore[no-untyped-def]
    return cnn_workload(ci["model"], ci["num_classes"], ci["in_channels"], ci["image_size"], width=ci["width"],
                        channels=list(channels), batch=batch, training=training)


def train_phases(ci: dict[str, Any]) -> list[Phase]:
    """The ``costmodels.Phase`` list of the recorded training phases (zero-epoch phases dropped)."""
    return [Phase(p["name"], p["epochs"], _workload(ci, p["channels"], batch=ci["batch_size"], training=True),
                  ci["optimizer"], ci["steps_per_epoch"]) for p in ci["phases"] if p["epochs"] > 0]


def price(ci: dict[str, Any], device: str | DeviceProfile | None = None) -> dict[str, Any]:
    """``RunCost.to_dict()`` of the recorded run on ``device`` (profile name/path; None = counts only).

    Same keys as the graph pricing (``train_/infer_`` flops, macs, dram_bytes, memory_bytes, latency_s,
    energy_j; ``phases``; ``device``; ``conventions``) plus ``detector_flops`` (see the module docstring).
    """
    profile = load_profile(device) if isinstance(device, str) else device
    infer = _workload(ci, ci["kept_channels"], batch=1, training=False)
    run = price_run(train_phases(ci), infer, profile)
    probe_flops = 0.0
    if ci.get("probe_images", 0) > 0 and ci.get("probe_epochs", 0) > 0:
        batch = min(ci["probe_images"], PROBE_BATCH)
        passes = ci["probe_epochs"] * math.ceil(ci["probe_images"] / PROBE_BATCH)
        one = price_workload(_workload(ci, ci["dense_channels"], batch=batch, training=False), profile,
                             training=False)
        probe = one.scaled(passes)
        f_fwd = forward_flops_eb(_workload(ci, ci["dense_channels"], batch=1, training=False))
        probe_flops = float(ci["probe_images"] * ci["probe_epochs"] * f_fwd)
        per_check = one.scaled(passes / ci["probe_epochs"])
        run = RunCost(run.train + probe, run.infer,
                      (*run.phases, PhaseCost("detector-probe", ci["probe_epochs"], per_check, probe)),
                      run.device, run.dtype)
    out = run.to_dict()
    out["detector_flops"] = probe_flops
    out["detector_flops_note"] = ("spline-EB probe forwards, estimated: F_fwd(dense) x probe images x checks "
                                  "(conv/linear only); the full probe cost is in train_* as phase detector-probe")
    return out


def price_cnn_run(shape: NetShape, phases: list[PhaseRecord], final_channels: list[int], *, n_train: int,
                  batch_size: int, probe_images: int = 0, probe_epochs: int = 0,
                  dense_channels: list[int] | tuple[int, ...] | None = None) -> dict:
    """The ``cost_inputs``, ``cost`` (device-independent) and ``eb_convention`` dicts of a run.

    ``dense_channels`` defaults to the first phase's widths (right for every method but ``random``,
    which trains pruned from the start: pass the dense widths).
    """
    dense = dense_channels if dense_channels is not None else (phases[0].channels if phases else final_channels)
    ci = cost_inputs(shape, phases, final_channels, dense_channels=dense, n_train=n_train, batch_size=batch_size,
                     probe_images=probe_images, probe_epochs=probe_epochs)
    cost = price(ci, None)
    fwd = [forward_flops(shape, p.channels) for p in phases]
    eb = {
        "train_flops": eb_train_flops(fwd, [p.epochs for p in phases], n_train),
        "forward_flops_per_phase": fwd,
        "convention": "3 x forward FLOPs (multiply-add = 2, conv + linear) x training images x epochs "
                      "(You et al. 2020); estimated analytically",
    }
    return {"cost_inputs": ci, "cost": cost, "eb_convention": eb}
