"""Early-bird detectors: when has the ticket stopped changing?

Both detectors keep a FIFO of snapshots and compare the newest with each older one:

* :class:`MaskDetector` (You et al. 2020): snapshots are channel masks at ratio p (global |gamma|
  threshold); distance = normalised Hamming distance between masks (fraction of entries that
  differ). FIFO of 5: the ticket is drawn when all 4 distances newest-vs-older are <= eps = 0.1.
* :class:`SplineDetector` (Spline-EB): snapshots are *partition codes* — the sign bits
  ``1[BN output > 0]`` of every BatchNorm on a fixed probe set, stored packed (8 units per byte).
  For two snapshots, d_l = (differing bits of layer l) / (bits of layer l); d = mean_l d_l (every
  layer weighs the same). The ticket is drawn when the newest code's distances to each of the
  previous ``lookback`` = 3 codes are all < threshold (0.16), i.e. their maximum is.

The probe set (:func:`probe_inputs`) follows the public code: a ``grid x grid`` lattice on the plane
through two images, x = a·x0 + b·x1 with a, b in [0, 1] (the code uses 100x100 and two test images;
we default to a smaller grid on CPU and take two validation images, keeping the test set unseen).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from torch import nn

from .prune import mask_distance


class MaskDetector:
    """EB detector over channel masks: fires when max distance(newest, older) <= ``eps``."""

    def __init__(self, fifo: int = 5, eps: float = 0.1) -> None:
        self.eps, self.queue = eps, deque(maxlen=fifo)
        self.last_distance: float | None = None

    def update(self, masks: list[torch.Tensor]) -> bool:
        """Push a mask snapshot; True once the FIFO is full and every distance is <= eps."""
        self.queue.append([m.clone() for m in masks])
        if len(self.queue) < self.queue.maxlen:
            self.last_distance = None
            return False
        newest = self.queue[-1]
        self.last_distance = max(mask_distance(newest, old) for old in list(self.queue)[:-1])
        return self.last_distance <= self.eps


def code_distance(a: list[tuple[np.ndarray, int]], b: list[tuple[np.ndarray, int]]) -> float:
    """Mean over layers of the normalised Hamming distance between packed sign codes."""
    ds = []
    for (pa, na), (pb, nb) in zip(a, b):
        if na != nb:
            raise ValueError(f"code lengths differ ({na} vs {nb}): compare codes of the same network")
        ds.append(int(np.unpackbits(np.bitwise_xor(pa, pb), count=na).sum()) / max(na, 1))
    return float(np.mean(ds))


class SplineDetector:
    """Spline-EB detector over partition codes: fires when max distance to the last ``lookback`` < thr."""

    def __init__(self, lookback: int = 3, threshold: float = 0.16) -> None:
        self.threshold, self.queue = threshold, deque(maxlen=lookback + 1)
        self.last_distance: float | None = None

    def update(self, codes: list[tuple[np.ndarray, int]]) -> bool:
        self.queue.append(codes)
        if len(self.queue) < self.queue.maxlen:
            self.last_distance = None
            return False
        newest = self.queue[-1]
        self.last_distance = max(code_distance(newest, old) for old in list(self.queue)[:-1])
        return self.last_distance < self.threshold


def probe_inputs(x0: torch.Tensor, x1: torch.Tensor, grid: int) -> torch.Tensor:
    """``[grid², C, H, W]`` images a·x0 + b·x1 on a ``grid x grid`` lattice of (a, b) in [0, 1]²."""
    t = torch.linspace(0.0, 1.0, grid)
    a, b = torch.meshgrid(t, t, indexing="ij")
    return a.reshape(-1, 1, 1, 1) * x0[None] + b.reshape(-1, 1, 1, 1) * x1[None]


@torch.no_grad()
def partition_codes(model: nn.Module, probe: torch.Tensor, batch_size: int = 256) -> list[tuple[np.ndarray, int]]:
    """Packed sign bits of every BatchNorm2d output on ``probe`` (eval mode), one entry per layer."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    bits: list[list[np.ndarray]] = [[] for _ in bns]
    hooks = [bn.register_forward_hook(lambda _m, _i, out, k=k: bits[k].append((out > 0).cpu().numpy()))
             for k, bn in enumerate(bns)]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(probe), batch_size):
            model(probe[i:i + batch_size])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    out = []
    for chunks in bits:
        flat = np.concatenate([c.reshape(-1) for c in chunks])
        out.append((np.packbits(flat), int(flat.size)))
    return out
