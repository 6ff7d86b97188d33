"""One readable loop per pruning method. Each returns a :class:`Outcome` (final net + phases).

* ``dense``     train E epochs (no BN-L1), no pruning.
* ``eb``        train with BN-L1; at the start of every epoch e >= 1 push the |gamma| mask at p into
                the mask detector; when it fires (EB epoch t), remove channels physically and
                retrain the pruned net for max(E − t, ``finetune_epochs``) epochs.
* ``spline-eb`` the same search, but the detector watches the partition codes on the probe set;
                pruning by |gamma|.
* ``spline``    the search with ``--detector eb|spline``; pruning by the spline redundancy score (dead
                units from the probe codes of the network being pruned, taken after its last epoch).
* ``slimming``  train E epochs with BN-L1, prune by |gamma|, fine-tune ``finetune_epochs``.
* ``random``    random layerwise channel removal at initialisation, train the pruned net E epochs.

Retraining keeps a length of its own: at least ``finetune_epochs`` (default ceil(E/2)), so a ticket
found late in a short run (``--epochs 10``, ticket at 8) is not left with one or two epochs at the
smallest learning rate. ``finetune`` keeps the ticket's weights; when the retrain is exactly the
rest of the run (E − t epochs, the papers' case) it continues the step schedule from epoch t, else
it runs a step schedule of its own over the retrain length (fresh momentum); ``reinit``
re-initialises the pruned net and runs a step schedule scaled to the retrain length. If no ticket
emerges within E epochs, the ticket is drawn at the end of training (``eb_found = False``) and
fine-tuned like slimming. No loop looks at the test set: the spline probe plane runs through two
validation images; ``ticket_acc`` (the dense network's test accuracy at the ticket epoch, before pruning:
results' ``dense_accuracy_at_ticket``) is reported only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .cost import PhaseRecord
from .data import ImageData, normalise
from .detectors import MaskDetector, SplineDetector, partition_codes, probe_inputs
from .prune import bn_gammas, global_threshold_masks, prune_model, random_masks
from .spline import dead_units, spline_masks, spline_scores
from .training import Schedule, evaluate, make_optimizer, model_device, progress, train_epoch


@dataclass
class Outcome:
    model: nn.Module
    phases: list[PhaseRecord]
    masks: list[torch.Tensor] | None = None
    eb_epoch: int | None = None
    eb_found: bool | None = None
    ticket_acc: float | None = None  # the dense network at the ticket epoch, before pruning
    history: list[dict] = field(default_factory=list)
    probe_images: int = 0
    probe_epochs: int = 0


def widths(model: nn.Module) -> tuple[int, ...]:
    """The prunable widths of ``model`` in the workload builders' ``channels`` order."""
    return tuple(int(c) for c in model.cfg if c != "M")


def _train(model: nn.Module, data: ImageData, cfg, *, lrs: list[float], g: torch.Generator, l1: float,
           phase: str, out: Outcome, bar) -> None:
    """Train ``len(lrs)`` epochs with a fresh SGD optimizer, one lr per epoch; record the phase."""
    t0 = time.perf_counter()
    opt = make_optimizer(model)
    for lr in lrs:
        loss = train_epoch(model, opt, data, batch_size=cfg.batch_size, lr=lr, g=g, l1=l1)
        out.history.append({"epoch": len(out.history), "phase": phase, "lr": lr, "loss": loss})
        bar.update(1)
    out.phases.append(PhaseRecord(phase, len(lrs), widths(model), time.perf_counter() - t0))


def retrain_epochs(cfg, t: int, found: bool) -> int:
    """Retrain length after a ticket drawn at epoch ``t``: the rest of the run, at least ``finetune_epochs``."""
    return max(cfg.epochs - t, cfg.finetune_epochs) if found else cfg.finetune_epochs


def _retrain_lrs(cfg, t: int, epochs: int) -> list[float]:
    if cfg.retrain_init == "finetune" and epochs == cfg.epochs - t:
        return [Schedule(cfg.epochs).lr(e) for e in range(t, cfg.epochs)]
    return [Schedule(epochs).lr(e) for e in range(epochs)]


def _retrain(ticket: nn.Module, masks: list[torch.Tensor], data: ImageData, cfg, *, t: int, epochs: int,
             g: torch.Generator, out: Outcome, bar) -> nn.Module:
    pruned = prune_model(ticket, masks)
    if cfg.retrain_init == "reinit":
        torch.manual_seed(cfg.seed + 1)
        pruned = pruned.rebuild(pruned.cfg).to(model_device(ticket))
    _train(pruned, data, cfg, lrs=_retrain_lrs(cfg, t, epochs), g=g, l1=0.0, phase="retrain", out=out, bar=bar)
    return pruned


def run_dense(model: nn.Module, data: ImageData, cfg, g: torch.Generator) -> Outcome:
    out = Outcome(model, [])
    with progress(cfg.epochs, "dense", cfg.progress) as bar:
        _train(model, data, cfg, lrs=[Schedule(cfg.epochs).lr(e) for e in range(cfg.epochs)], g=g, l1=0.0,
               phase="dense", out=out, bar=bar)
    return out


def run_random(model: nn.Module, data: ImageData, cfg, g: torch.Generator) -> Outcome:
    masks = random_masks(model, cfg.channel_sparsity, g)
    pruned = prune_model(model, masks)  # a random subset of the initial weights
    out = Outcome(pruned, [], masks=masks, eb_epoch=0)
    with progress(cfg.epochs, "random", cfg.progress) as bar:
        _train(pruned, data, cfg, lrs=[Schedule(cfg.epochs).lr(e) for e in range(cfg.epochs)], g=g, l1=0.0,
               phase="pruned", out=out, bar=bar)
    return out


def run_slimming(model: nn.Module, data: ImageData, cfg, g: torch.Generator) -> Outcome:
    out = Outcome(model, [])
    with progress(cfg.epochs + cfg.finetune_epochs, "slimming", cfg.progress) as bar:
        _train(model, data, cfg, lrs=[Schedule(cfg.epochs).lr(e) for e in range(cfg.epochs)], g=g, l1=cfg.bn_l1,
               phase="dense-l1", out=out, bar=bar)
        out.masks = global_threshold_masks(bn_gammas(model), cfg.channel_sparsity)
        out.ticket_acc, out.eb_epoch = evaluate(model, data), cfg.epochs
        out.model = _retrain(model, out.masks, data, cfg, t=cfg.epochs, epochs=cfg.finetune_epochs, g=g,
                             out=out, bar=bar)
    return out


def run_search(model: nn.Module, data: ImageData, cfg, g: torch.Generator) -> Outcome:
    """eb, spline-eb and spline: BN-L1 training until the detector fires, then prune and retrain."""
    use_spline_detector = cfg.method == "spline-eb" or (cfg.method == "spline" and cfg.detector == "spline")
    need_probe = use_spline_detector or cfg.method == "spline"
    probe = None
    if need_probe:
        # the probe plane runs through two held-out validation images (the public code uses two test
        # images; we keep the test set out of training decisions), or two training images without a val set
        x01 = normalise((data.val_x if len(data.val_y) >= 2 else data.train_x)[:2], data)
        probe = probe_inputs(x01[0], x01[1], cfg.probe_grid).to(model_device(model))
    detector = (SplineDetector(cfg.spline_lookback, cfg.spline_threshold) if use_spline_detector
                else MaskDetector(cfg.eb_fifo, cfg.eb_eps))
    out = Outcome(model, [], probe_images=0 if probe is None else len(probe))
    schedule = Schedule(cfg.epochs)
    opt = make_optimizer(model)
    t, codes, t0 = cfg.epochs, None, time.perf_counter()
    with progress(cfg.epochs, cfg.method, cfg.progress) as bar:
        for epoch in range(cfg.epochs):
            if epoch >= 1:  # the ticket check happens at the start of each epoch (after `epoch` epochs)
                if use_spline_detector:
                    codes = partition_codes(model, probe)
                    out.probe_epochs += 1
                    fired = detector.update(codes)
                else:
                    fired = detector.update(global_threshold_masks(bn_gammas(model), cfg.channel_sparsity))
                out.history[-1]["distance"] = detector.last_distance
                if fired:
                    t = epoch
                    break
                if cfg.search_limit is not None and epoch >= cfg.search_limit:
                    from codesign.graphs.methods.search import SearchStopped  # proven over the search's budget

                    raise SearchStopped(epoch)
            loss = train_epoch(model, opt, data, batch_size=cfg.batch_size, lr=schedule.lr(epoch), g=g, l1=cfg.bn_l1)
            out.history.append({"epoch": epoch, "phase": "search", "lr": schedule.lr(epoch), "loss": loss})
            bar.update(1)
        out.eb_epoch, out.eb_found = t, t < cfg.epochs
        out.phases.append(PhaseRecord("search", t, widths(model), time.perf_counter() - t0))
        if cfg.method == "spline":
            if codes is None or not out.eb_found:  # no check yet, or the last one was before the final epoch
                codes = partition_codes(model, probe)
                out.probe_epochs += 1
            bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
            dead = dead_units(codes, bns, [u.bn for u in model.prunable_units()], len(probe))
            out.masks = spline_masks(spline_scores(model, dead), cfg.channel_sparsity, cfg.spline_mode)
        else:
            out.masks = global_threshold_masks(bn_gammas(model), cfg.channel_sparsity)
        out.ticket_acc = evaluate(model, data)
        retrain = retrain_epochs(cfg, t, out.eb_found)
        bar.total = t + retrain
        out.model = _retrain(model, out.masks, data, cfg, t=t, epochs=retrain, g=g, out=out, bar=bar)
    return out


METHOD_LOOPS = {"dense": run_dense, "eb": run_search, "spline-eb": run_search, "spline": run_search,
                "slimming": run_slimming, "random": run_random}
