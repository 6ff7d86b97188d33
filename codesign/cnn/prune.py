"""Channel masks and physical channel removal.

A *mask* is one boolean vector per prunable BatchNorm (``model.prunable_units()``), True = keep.

* :func:`global_threshold_masks` — network slimming / EB: concatenate the scores of all units
  (|gamma| by default), threshold at the p-th quantile, keep ``score > t``. A unit the threshold
  would empty keeps its highest-scoring channel (the EB code's rule), so the achieved sparsity can
  fall slightly below p.
* :func:`layerwise_masks` — remove ``floor(p * C_l)`` lowest-scoring channels in every unit
  (at least one kept).
* :func:`prune_model` — rebuild the network with the kept channel counts and copy the kept
  slices of every conv (out and in), BN (weight, bias, running stats), channel selection and the
  classifier's inputs. When the removed channels are already zero (gamma = beta = 0) the pruned
  network computes exactly the function of the masked dense one (:func:`apply_masks`).
"""

from __future__ import annotations

import torch
from torch import nn

from costmodels.errors import check_fraction


def bn_gammas(model: nn.Module) -> list[torch.Tensor]:
    """|gamma| of every prunable BN, detached CPU copies (masks always live on the CPU)."""
    return [u.bn.weight.detach().abs().cpu().clone() for u in model.prunable_units()]


def _keep_at_least_one(masks: list[torch.Tensor], scores: list[torch.Tensor]) -> list[torch.Tensor]:
    out = []
    for m, s in zip(masks, scores):
        if not bool(m.any()):
            m = torch.zeros_like(m)
            m[int(torch.argmax(s))] = True
        out.append(m)
    return out


def global_threshold_masks(scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Keep channels whose score exceeds the global ``ratio``-quantile (lowest ``ratio`` removed).

    With all N scores sorted ascending, t = sorted[floor(ratio * N) - 1] (no channel removed at
    ratio 0); keep = score > t, ties at t go too. Each unit keeps >= 1 channel.
    """
    ratio = check_fraction("--channel-sparsity", ratio)
    flat = torch.cat([s.flatten().float() for s in scores])
    n_prune = int(ratio * flat.numel())
    if n_prune == 0:
        return [torch.ones_like(s, dtype=torch.bool) for s in scores]
    t = torch.sort(flat).values[n_prune - 1]
    return _keep_at_least_one([s.float() > t for s in scores], scores)


def layerwise_masks(scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Remove the ``floor(ratio * C)`` lowest-scoring channels of each unit (keep >= 1)."""
    ratio = check_fraction("--channel-sparsity", ratio)
    masks = []
    for s in scores:
        n_prune = min(int(ratio * s.numel()), s.numel() - 1)
        m = torch.ones_like(s, dtype=torch.bool)
        if n_prune > 0:
            m[torch.argsort(s.float(), stable=True)[:n_prune]] = False
        masks.append(m)
    return masks


def random_masks(model: nn.Module, ratio: float, generator: torch.Generator) -> list[torch.Tensor]:
    """Layerwise random channel removal at ``ratio`` (the random-pruning baseline)."""
    sizes = [u.bn.num_features for u in model.prunable_units()]
    return layerwise_masks([torch.rand(n, generator=generator) for n in sizes], ratio)


def mask_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Normalised Hamming distance: fraction of all mask entries that differ."""
    fa, fb = torch.cat(a), torch.cat(b)
    return int((fa != fb).sum()) / max(fa.numel(), 1)  # exact: no float32 rounding at eps


def channel_sparsity(masks: list[torch.Tensor]) -> float:
    """Achieved fraction of prunable channels removed."""
    flat = torch.cat(masks)
    return 1.0 - float(flat.float().mean())


@torch.no_grad()
def apply_masks(model: nn.Module, masks: list[torch.Tensor]) -> None:
    """Zero gamma and beta of removed channels in place (the 'masked dense' network)."""
    for u, m in zip(model.prunable_units(), masks):
        u.bn.weight[~m] = 0.0
        u.bn.bias[~m] = 0.0


def _slice(t: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None) -> torch.Tensor:
    if t.dim() == 0:
        return t.clone()
    if rows is not None:
        t = t.index_select(0, rows)
    if cols is not None and t.dim() >= 2:
        t = t.index_select(1, cols)
    return t.clone()


@torch.no_grad()
def prune_model(model: nn.Module, masks: list[torch.Tensor]) -> nn.Module:
    """A new, physically smaller network holding the kept channels of ``model``.

    ``model.prune_plan(keep)`` names, per module prefix, the (out, in) indices to keep; every
    parameter and buffer under that prefix is sliced along dim 0 (out) and dim 1 (in).
    """
    units = model.prunable_units()
    if len(masks) != len(units):
        raise ValueError(f"{len(masks)} masks for {len(units)} prunable units")
    keep = [torch.nonzero(m.cpu(), as_tuple=False).flatten() for m in masks]
    cfg, plan = model.prune_plan(keep)
    new = model.rebuild(cfg)  # built on the CPU, sliced there, then moved to the model's device
    state = {}
    for name, t in model.state_dict().items():
        t = t.cpu()
        prefix = name.rsplit(".", 1)[0]
        rows, cols = plan.get(prefix, (None, None))
        if name.endswith("select.index"):
            state[name] = t.index_select(0, rows) if rows is not None else t.clone()
        else:
            state[name] = _slice(t, rows, cols)
    new.load_state_dict(state, strict=True)
    new.train(model.training)
    return new.to(next(model.parameters()).device)


def kept_channels(model: nn.Module) -> list[int]:
    """Channel count of every prunable unit after its channel selection (what the convs see)."""
    return [u.width for u in model.prunable_units()]


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
