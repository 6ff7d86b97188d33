"""Graph sparsifiers: the regulariser that drives trainable edge values towards a sparse graph.

The trainable graph is ``theta [G, E/2]``, one value per undirected edge (initialised to 1, the
adjacency's value) for each of ``G`` graphs (one per layer, or one shared), mirrored to both
directions as GNN edge weights ``relu(theta)`` (an edge whose value drops to <= 0 carries nothing, as
in the dense public code). Self-loops are not in ``theta``. Every top-k below is per row.

Interface (one object per search, built by :func:`make_sparsifier`; :data:`SPARSIFIERS` names the
ones ``--sparsifier`` accepts, so a new one is a subclass, an entry there and a branch there):

* ``penalty(theta) -> scalar``: added to the cross-entropy before the edge-value step;
* ``after_step(theta)``: bookkeeping after the optimiser step (ADMM's Z and U updates);
* ``mask(theta) -> bool [G, E/2]``: the graph masks at the pruning ratio, exact count per row.

Implementations:

* ``admm`` (SGCN, Li et al. 2020, as in the GEBT code, on edge vectors):
  ``L = CE + rho * ||theta + U - Z||^2``;  ``Z <- prune_p(theta + U)`` (keep the top ``1 - p`` by
  magnitude, zero the rest);  ``U <- U + theta - Z``.
* ``l1`` (UGS, Chen et al. 2021): ``L = CE + s1 * ||theta||_1`` (sub-gradient ``s1 * sign(theta)``).

The mask keeps the largest ``theta`` values (``theta`` stays near 1, so this is its magnitude).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from costmodels.errors import unknown

from .masks import tiebreak_order, topk_rows


class GraphSparsifier(ABC):
    """One search's graph regulariser and mask rule (contract in the module docstring)."""

    def __init__(self, ratio: float, tiebreak: Tensor | None = None) -> None:
        self.ratio = ratio
        self.order = None if tiebreak is None else tiebreak_order(tiebreak)  # sorted once per search

    @abstractmethod
    def penalty(self, theta: Tensor) -> Tensor:
        """Sparsity regulariser added to the loss of the edge-value step."""

    def after_step(self, theta: Tensor) -> None:  # noqa: B027 - optional hook
        """Called after each optimiser step on ``theta``."""

    def mask(self, theta: Tensor) -> Tensor:
        """Graph mask at ``ratio``: keep the largest ``theta`` (exact count, stable ties).

        Signed, not ``|theta|``: a negative edge value carries nothing (weights are ``relu(theta)``).
        """
        return topk_rows(theta, self.ratio, order=self.order)


class ADMMSparsifier(GraphSparsifier):
    """SGCN's ADMM on the edge vector (``rho`` = 1e-3 as in the GEBT code)."""

    def __init__(self, ratio: float, theta: Tensor, rho: float = 1e-3, tiebreak: Tensor | None = None) -> None:
        super().__init__(ratio, tiebreak)
        self.rho = rho
        with torch.no_grad():
            self.z = theta.detach() * topk_rows(theta.detach().abs(), ratio, order=self.order)
            self.u = torch.zeros_like(self.z)

    def penalty(self, theta: Tensor) -> Tensor:
        return self.rho * (theta + self.u - self.z).pow(2).sum()

    @torch.no_grad()
    def after_step(self, theta: Tensor) -> None:
        v = theta.detach() + self.u
        self.z = v * topk_rows(v.abs(), self.ratio, order=self.order)
        self.u += theta.detach() - self.z


class L1Sparsifier(GraphSparsifier):
    """UGS-style L1 sub-gradient on the edge values (``s1`` = 1e-2)."""

    def __init__(self, ratio: float, theta: Tensor, s1: float = 1e-2, tiebreak: Tensor | None = None) -> None:
        super().__init__(ratio, tiebreak)
        self.s1 = s1

    def penalty(self, theta: Tensor) -> Tensor:
        return self.s1 * theta.abs().sum()


SPARSIFIERS = {"admm": ADMMSparsifier, "l1": L1Sparsifier}


def make_sparsifier(name: str, ratio: float, theta: Tensor, rho: float = 1e-3,
                    tiebreak: Tensor | None = None) -> GraphSparsifier:
    """Build the sparsifier ``name`` for a search at graph pruning ratio ``ratio``."""
    if name == "admm":
        return ADMMSparsifier(ratio, theta, rho, tiebreak)
    if name == "l1":
        return L1Sparsifier(ratio, theta, tiebreak=tiebreak)
    raise unknown("sparsifier", name, list(SPARSIFIERS))
