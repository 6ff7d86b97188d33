"""Spline pruning: score each channel by how redundant its hyperplane is in its layer's partition.

A conv + BN + ReLU unit c is the two-piece max-affine spline z_c = max(0, <w_c, x> + b_c) over
the layer input x (the conv's receptive field, flattened). Folding BN (eval statistics):

    w_c = gamma_c · W_c / sqrt(var_c + eps),    b_c = beta_c − gamma_c · mu_c / sqrt(var_c + eps)

Unit c contributes the hyperplane H_c = {x : <w_c, x> + b_c = 0}. With unit normal
n_c = w_c / ||w_c|| and normalised offset o_c = b_c / ||w_c||, the distance between H_c and H_k is

    D(c, k) = (1 − |cos(n_c, n_k)|) + |o_c − s·o_k|,    s = sign(cos(n_c, n_k))

(0 when the two hyperplanes coincide, also with flipped orientation). The redundancy score of c is
its distance to the nearest other hyperplane of the same layer, score_c = min_{k≠c} D(c, k): a
small score means c hardly changes the partition, so it goes first. Units whose hyperplane misses
the data — constant code over the probe set, always on or always off — score 0 (removed first).
This is *our reading* of the paper's principle ("prune isolated groups of nodes that have a
redundant contribution in the forming of the spline partition"); its exact formula is unpublished.

Scores are invariant to a positive rescale of (w_c, b_c) (both n_c and o_c are). For a BN that
follows a residual sum (pre-activation blocks) there is no single conv: w_c = gamma_c/sqrt(var_c+eps)
times the c-th unit vector, so the normals are orthogonal and only offsets differ.

* layerwise: remove the same ratio in every layer (lowest scores first, >= 1 kept);
* global: divide scores by the layer's maximum, then one global threshold (>= 1 kept per layer).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .prune import global_threshold_masks, layerwise_masks

SPLINE_MODES = ("layerwise", "global")


def hyperplane_scores(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``score_c = min_{k≠c} (1 − |cos(n_c, n_k)|) + |o_c − sign(cos)·o_k|`` for ``w [C, D]``, ``b [C]``."""
    w, b = w.double(), b.double()
    norm = w.norm(dim=1).clamp_min(1e-12)
    n, o = w / norm[:, None], b / norm
    cos = n @ n.T                                     # [C, C]
    s = torch.where(cos >= 0, 1.0, -1.0).to(cos)
    d = (1.0 - cos.abs()) + (o[:, None] - s * o[None, :]).abs()
    d.fill_diagonal_(float("inf"))
    if len(b) == 1:
        return torch.ones(1, dtype=torch.float64)
    return d.min(dim=1).values


def folded_hyperplanes(bn: nn.BatchNorm2d, conv: nn.Conv2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(w ``[C, D]``, b ``[C]``) of the BN-folded pre-activation of every channel (see module doc)."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        b = bn.bias - scale * bn.running_mean
        if conv is None:
            w = torch.diag(scale)
        else:
            w = scale[:, None] * conv.weight.flatten(1)
            if conv.bias is not None:
                b = b + scale * conv.bias
    return w, b


def dead_units(codes: list[tuple[np.ndarray, int]], bns: list[nn.BatchNorm2d], units: list[nn.BatchNorm2d],
               probe_count: int) -> list[torch.Tensor]:
    """Per unit, True where the channel's sign code is constant over the probe set (always on/off).

    ``codes`` are :func:`codesign.cnn.detectors.partition_codes` outputs for the modules ``bns``;
    bits are laid out ``[probe, C, H, W]``.
    """
    where = {id(bn): i for i, bn in enumerate(bns)}
    out = []
    for bn in units:
        packed, nbits = codes[where[id(bn)]]
        bits = np.unpackbits(packed, count=nbits).reshape(probe_count, bn.num_features, -1)
        frac = bits.mean(axis=(0, 2))
        out.append(torch.from_numpy((frac == 0.0) | (frac == 1.0)))
    return out


def spline_scores(model: nn.Module, dead: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Redundancy score of every channel of every prunable unit (dead units scored 0)."""
    scores = []
    for i, u in enumerate(model.prunable_units()):
        w, b = folded_hyperplanes(u.bn, u.conv)
        s = hyperplane_scores(w.cpu(), b.cpu()).float()
        if dead is not None:
            s = torch.where(dead[i], torch.zeros_like(s), s)
        scores.append(s)
    return scores


def spline_masks(scores: list[torch.Tensor], ratio: float, mode: str) -> list[torch.Tensor]:
    """Masks at ``ratio`` from redundancy scores (low = redundant), ``mode`` in layerwise|global."""
    if mode == "layerwise":
        return layerwise_masks(scores, ratio)
    normed = [s / s.max().clamp_min(1e-12) for s in scores]
    return global_threshold_masks(normed, ratio)
