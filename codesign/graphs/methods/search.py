"""The ticket search loop shared by GEB, GEBT (joint-EB) and SGCN's sparsification phase.

Per epoch ``t`` (You et al. 2022, Alg. 2; Alg. 1 when ``train_weights`` is False):

1. (joint only) one Adam step on the weights ``W`` with the current edge weights ``relu(theta)``;
2. one Adam step (lr ``graph_lr``) on the edge values ``theta [G, E/2]``:
   ``L = CE(W, theta) + sparsifier.penalty(theta)`` (network in eval mode: no dropout), then
   ``sparsifier.after_step(theta)``;
3. graph mask ``m_t = sparsifier.mask(theta)`` at ``p_g``; weight mask ``n_t`` = global magnitude at
   ``p_w`` (joint only; ``W`` itself stays dense during the search);
4. ``detector.step(m_t, n_t)``; the ticket is ``(m_t, n_t, W_t)`` of the epoch it fires, or of the
   last epoch when it never fires (``fired = False``).

``ctx.search_limit`` (set by a budgeted search, :mod:`codesign.pipelines.graph_search`): a search that
has run that many epochs without firing raises :class:`SearchStopped` - its run is then known to be
over the budget whatever epoch the detector would fire at.

``G`` (``--graph-sharing``): ``per-layer`` (default) keeps one row of edge values per layer, as the
dense public code keeps one trainable adjacency per layer; each row gets its own mask at ``p_g``
(exact count per layer) and layer ``l`` aggregates over row ``l``. ``shared``: one row for all layers
(the ticket's graph mask is then ``[E/2]`` instead of ``[L, E/2]``). Measured (GCN, p_g 0.2 / p_w 0.5,
15 seeds, ``benchmarks/gebt_accuracy.py``): per-layer Cora 80.08 vs shared 79.47 (dense 81.09);
CiteSeer 70.14 vs 70.03 (dense 70.19).
Memory and time are O(G E): ``theta``, the masks and the FIFO are vectors over edges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from codesign.runtime.optim import Adam

from ..aggregate import mark_symmetric
from ..data import GraphData
from ..detector import EarlyBirdDetector
from ..masks import flat, global_weight_mask, nm_weight_mask, parse_pattern
from ..models import GNN
from ..sparsify import make_sparsifier
from .common import RunContext, edge_weight, state_of, train_step


def edge_tiebreak(data: GraphData, kind: str, seed: int) -> Tensor | None:
    """Secondary key for edges whose values tie (larger = kept first).

    Edges outside the training nodes' receptive field get no cross-entropy gradient, so their
    values stay tied at 1 (and ADMM's first ``Z`` step, which uses this order, then pushes the same
    edges down every epoch); without a rule the tie would go by edge index, i.e. by node id, which in
    Planetoid prunes the test nodes' edges first. Removing edge ``(u, v)`` takes about ``1/d_u`` of
    ``u``'s aggregate and ``1/d_v`` of ``v``'s (``d`` the degree counting the self-loop):

    * ``min-degree`` (default): keep the larger ``1/min(d_u, d_v)`` (the larger of the two shares),
      ties by ``1/max(d_u, d_v)``: an edge goes first only when both ends keep many neighbours, so
      no low-degree node loses a large part of its neighbourhood. O(E).
    * ``resistance``: keep the larger ``1/d_u + 1/d_v`` (the sum of the shares; the degree term of the
      edge's effective resistance, Lovász: ``(1/d_u + 1/d_v)/2 <= R_uv <= (1/d_u + 1/d_v)/(1 -
      lambda_2)``). O(E).
    * ``norm``: keep the larger normalised weight ``1 / sqrt(d_u d_v)`` (prune between hubs first);
    * ``random``: a seeded random order;  ``index``: by index.

    Measured (GCN, p_g 0.2 / p_w 0.5, per-layer graphs, 15 seeds, single-thread runs; README):
    ``min-degree`` Cora 80.13 / CiteSeer 70.17, ``resistance`` 80.07 / 69.90 - within seed noise.
    """
    if kind == "index":
        return None
    if kind == "random":
        return torch.rand(data.num_undirected, generator=torch.Generator().manual_seed(seed)).to(data.x.device)
    deg = torch.bincount(data.edge_index[0], minlength=data.num_nodes).float() + 1
    du, dv = deg[data.undirected[0]], deg[data.undirected[1]]
    if kind == "min-degree":  # smaller min degree first, then smaller max degree (exact integer keys)
        lo, hi = torch.minimum(du, dv).long(), torch.maximum(du, dv).long()
        return -(lo * (int(deg.max()) + 1) + hi)
    if kind == "resistance":
        return 1 / du + 1 / dv
    return (du * dv).rsqrt()


class SearchStopped(Exception):
    """The search reached ``ctx.search_limit`` epochs without its detector firing (the run stops)."""

    def __init__(self, epochs: int) -> None:
        super().__init__(f"no early-bird ticket after {epochs} search epochs (the limit this run was given)")
        self.epochs = epochs


@dataclass
class SearchResult:
    graph_mask: Tensor  # bool [E/2] (shared) or [L, E/2] (per layer)
    weight_masks: dict[str, Tensor] | None
    ticket_state: dict[str, Tensor]
    epochs: int
    fired: bool
    detector: dict[str, object]
    wall_s: float
    theta: Tensor
    epoch_wall_s: list[float]  # measured, per search epoch (the first includes one-time warm-up)

    @property
    def graph_copies(self) -> int:
        return 1 if self.graph_mask.dim() == 1 else self.graph_mask.size(0)


class SearchLoop:
    """The search's state (edge values, sparsifier, optimizers, detector) and one epoch of it, in
    steps: :meth:`weight_step`, :meth:`graph_step`, :meth:`draw_masks` (``codesign profile`` times
    them one by one; :func:`search` runs them in a loop)."""

    def __init__(self, ctx: RunContext, model: GNN, train_weights: bool, weight_ratio: float | None) -> None:
        c, data = ctx.config, ctx.data
        self.ctx, self.model, self.weight_ratio = ctx, model, weight_ratio
        rows = c.layers if c.graph_sharing == "per-layer" else 1
        self.theta = torch.ones(rows, data.num_undirected, device=ctx.device, requires_grad=True)
        self.sparsifier = make_sparsifier(c.sparsifier, c.graph_sparsity, self.theta.detach(), c.admm_rho,
                                          edge_tiebreak(data, c.tie_break, c.seed))
        self.theta_opt = Adam([self.theta], lr=c.graph_lr)
        self.w_opt = ctx.optimizer(model) if train_weights else None
        self.detector = EarlyBirdDetector(c.detector)
        self.graph_mask = self.sparsifier.mask(self.theta)
        self.weight_masks: dict[str, Tensor] | None = None
        self._weights: tuple[int, Tensor | list[Tensor]] | None = None

    def edge_weights(self) -> Tensor | list[Tensor]:
        """The directed edge weights ``relu(theta)`` (one per layer), with autograd to ``theta``; built once
        per value of ``theta`` (its in-place version), so the weight step and the edge-value step of an
        epoch share one gather of ``E`` values per layer (at 10^6 nodes ~0.1 s each on one core)."""
        version = self.theta._version
        if self._weights is None or self._weights[0] != version:
            data = self.ctx.data
            self._weights = (version, layer_weights(self.theta, data.dir_to_und, data.undirected))
        return self._weights[1]

    def weight_step(self) -> None:
        """(joint only) one Adam step on the weights with the current edge weights ``relu(theta)``."""
        if self.w_opt is not None:
            data = self.ctx.data
            w = self.edge_weights()
            fixed = ([mark_symmetric(row.detach()) for row in w] if isinstance(w, list)
                     else mark_symmetric(w.detach()))
            train_step(self.model, self.w_opt, data, data.edge_index, fixed)

    def graph_step(self) -> None:
        """One Adam step on the edge values (gradients to theta only; dropout off, so the edge
        gradient is a deterministic function of (W, theta); the public code keeps dropout on: +0.7
        points here), then the sparsifier's update."""
        data = self.ctx.data
        self.model.eval()
        # the weights are constants in this step: with requires_grad off, no backward product computes a
        # gradient only they would use (the first layer's dh = A^T g, an SpMM over every edge)
        weights = [p for p in self.model.parameters() if p.requires_grad]
        for p in weights:
            p.requires_grad_(False)
        try:
            out = self.model(data.x, data.edge_index, self.edge_weights())
        finally:
            for p in weights:
                p.requires_grad_(True)
        loss = F.nll_loss(out[data.train_mask], data.y[data.train_mask]) + self.sparsifier.penalty(self.theta)
        self.theta_opt.zero_grad()
        (grad,) = torch.autograd.grad(loss, [self.theta])
        self.theta.grad = grad
        self.theta_opt.step()
        self.sparsifier.after_step(self.theta)

    def draw_masks(self) -> None:
        """This epoch's graph mask(s) and global weight mask."""
        self.graph_mask = self.sparsifier.mask(self.theta)
        if self.weight_ratio is not None:
            nm = parse_pattern(self.ctx.config.weight_pattern)
            params = dict(self.model.maskable())
            self.weight_masks = (global_weight_mask(params, self.weight_ratio) if nm is None
                                 else nm_weight_mask(params, self.weight_ratio, *nm))

    def detect(self) -> bool:
        """Feed the detector this epoch's masks; True when it fires. At weight sparsity 0 the weight mask keeps
        everything every epoch: it is not fed (a distance of 0 averaged in would halve the graph's, and the
        detector would fire at twice the graph distance ``eta`` allows), so the graph mask alone decides."""
        weights = None if self.weight_masks is None or not self.weight_ratio else flat(self.weight_masks)
        return self.detector.step(self.graph_mask, weights)

    def epoch(self, detect: bool = True) -> bool:
        """One search epoch; True when the detector fires (``detect=False``: never)."""
        self.weight_step()
        self.graph_step()
        self.draw_masks()
        return detect and self.detect()


def search(ctx: RunContext, model: GNN, max_epochs: int, name: str, train_weights: bool,
           weight_ratio: float | None, detect: bool = True) -> SearchResult:
    """Run the search (see the module docstring); ``detect=False`` runs all ``max_epochs`` (SGCN)."""
    start = time.perf_counter()
    loop = SearchLoop(ctx, model, train_weights, weight_ratio)
    fired, epochs_run = False, 0
    epoch_wall: list[float] = []
    with ctx.bar(max_epochs, name) as bar:
        for epoch in range(1, max_epochs + 1):
            epochs_run, tick = epoch, time.perf_counter()
            stop = loop.epoch(detect)
            ctx.epoch_done(bar)
            epoch_wall.append(time.perf_counter() - tick)
            if stop:
                fired = True
                break
            if detect and ctx.search_limit is not None and epoch >= ctx.search_limit:
                raise SearchStopped(epoch)
    graph_mask, theta = loop.graph_mask, loop.theta
    if theta.size(0) == 1:  # shared: one mask for every layer
        graph_mask, theta = graph_mask[0], theta[0]
    return SearchResult(graph_mask, loop.weight_masks, state_of(model), epochs_run, fired, loop.detector.summary(),
                        time.perf_counter() - start, theta.detach(), epoch_wall)


def layer_weights(theta: Tensor, und: Tensor, pairs: Tensor | None = None) -> Tensor | list[Tensor]:
    """Directed edge weights from ``theta [G, E/2]``: one tensor when ``G = 1``, else one per layer
    (``pairs``: see ``common.edge_weight``)."""
    if theta.size(0) == 1:
        return edge_weight(theta[0], und, pairs)
    # unbind, not a loop of row selects: one backward node that stacks the rows' gradients, instead of
    # a zero-filled [G, E/2] gradient per row added together
    return [edge_weight(row, und, pairs) for row in theta.unbind(0)]
