"""Channel masks and physical channel removal.

A *mask* is one boolean vector per prunable BatchNorm (``model.prunable_units()``), True = keep.

* :func:`global_threshold_masks` — network slimming / EB: concatenate the scores of all units
  (|gamma| by default) and remove the ``floor(p * N)`` lowest (ties by position). A unit that would
  empty keeps its highest-scoring channel (the EB code's rule) and the next-lowest channel of
  another unit goes instead, so the count is exact whenever every unit can keep one channel.
* :func:`layerwise_masks` — remove ``floor(p * C_l)`` lowest-scoring channels in every unit, plus
  one more in the units with the largest remainders ``p * C_l - floor(p * C_l)`` (again where units
  that keep only one channel leave a shortfall) until ``floor(p * N)`` are removed in all (at least
  one kept per unit): about the same ratio in every layer and the requested ratio overall.
* :func:`prune_model` — rebuild the network with the kept channel counts and copy the kept
  slices of every conv (out and in), BN (weight, bias, running stats), channel selection and the
  classifier's inputs. When the removed channels are already zero (gamma = beta = 0) the pruned
  network computes exactly the function of the masked dense one (:func:`apply_masks`).
"""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import nn

from costmodels.errors import check_fraction


def removal_count(ratio: float, n: int) -> int:
    """``floor(ratio * n)`` for the ratio as written: 0.29 of 100 is 29 (float ``0.29 * 100`` is 28.999...).

    The float is read back through its shortest decimal ``repr`` (what the user typed), so the floor
    is exact; every count of removed channels (masks, reachability, cost bounds) goes through here.
    """
    return int(Fraction(repr(float(ratio))) * n)


def removal_remainder(ratio: float, n: int) -> Fraction:
    """``ratio * n - floor(ratio * n)``, exact (see :func:`removal_count`)."""
    return Fraction(repr(float(ratio))) * n - removal_count(ratio, n)


def bn_gammas(model: nn.Module) -> list[torch.Tensor]:
    """|gamma| of every prunable BN, detached CPU copies (masks always live on the CPU)."""
    return [u.bn.weight.detach().abs().cpu().clone() for u in model.prunable_units()]


def global_threshold_masks(scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Remove the ``floor(ratio * N)`` lowest scores over all units (see the module docstring).

    Scores are ranked ascending with a stable sort (ties: the earlier unit / channel goes first);
    a channel whose unit has only it left is skipped (kept) and the next one goes instead.
    """
    ratio = check_fraction("--channel-sparsity", ratio)
    flat = torch.cat([s.flatten().float() for s in scores])
    n_prune = removal_count(ratio, flat.numel())
    masks = [torch.ones(s.numel(), dtype=torch.bool) for s in scores]
    if n_prune == 0:
        return masks
    unit = torch.cat([torch.full((s.numel(),), i) for i, s in enumerate(scores)]).tolist()
    offset = [0]
    for s in scores:
        offset.append(offset[-1] + s.numel())
    alive = [s.numel() for s in scores]
    removed = 0
    for j in torch.sort(flat, stable=True).indices.tolist():
        if removed == n_prune:
            break
        u = unit[j]
        if alive[u] > 1:
            masks[u][j - offset[u]] = False
            alive[u] -= 1
            removed += 1
    return [m.view(s.shape) for m, s in zip(masks, scores)]


def layerwise_masks(scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Remove ``floor(ratio * C)`` lowest-scoring channels of each unit, one more where the
    remainder is largest until ``floor(ratio * N)`` are gone overall (keep >= 1 per unit)."""
    ratio = check_fraction("--channel-sparsity", ratio)
    sizes = [s.numel() for s in scores]
    counts = [min(removal_count(ratio, n), n - 1) for n in sizes]
    extra = removal_count(ratio, sum(sizes)) - sum(counts)
    by_remainder = sorted(range(len(sizes)), key=lambda i: -removal_remainder(ratio, sizes[i]))
    while extra > 0:  # one more per unit in remainder order, again if units that keep one channel block it
        grew = False
        for i in by_remainder:
            if extra > 0 and counts[i] < sizes[i] - 1:
                counts[i] += 1
                extra -= 1
                grew = True
        if not grew:
            break
    masks = []
    for s, n_prune in zip(scores, counts):
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
