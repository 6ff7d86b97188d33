"""``ugs``: unified graph sparsification (Chen et al. 2021), iterative, on edge lists.

Per round ``r = 1..R`` (``--rounds``; default: fewest rounds with ``1 - 0.8^R >= p_w``, or with
``1 - 0.95^R >= p_g`` when ``p_w = 0``):

1. Mask training (``epochs``, UGS default ``UGS_EPOCHS`` = 200): from the initial weights, train ``W`` together with
   real-valued masks ``m_A [E/2]`` (edges still alive) and ``m_W`` (weights still alive), both
   initialised to 1, with loss ``CE + s1 * ||m_A||_1 + s2 * ||m_W||_1`` (``s1 = s2 = 1e-2``); edge
   weights are ``relu(m_A)``, weights ``W * m_W``. Keep the masks of the best-validation epoch.
2. Prune the remaining edges (smallest ``m_A``; equal values in ``--tie-break`` order, as the ticket
   search's graph masks) and weights (smallest ``|m_W|``, global) down to
   the round's target density: the paper's steps (5% of the remaining edges, 20% of the remaining
   weights), a larger even step when that is needed to reach the requested sparsity in ``R``
   rounds, and never past the requested sparsity, so round ``R`` ends exactly at ``p_g`` / ``p_w``
   (exact counts among the alive entries; ``p = 0`` prunes nothing).
3. Rewind ``W`` to the initialisation (``--retrain-init reinit``: a fresh one) and retrain (``epochs``)
   with the binary masks frozen.

The reported accuracy is the last round's retraining. Every round's two phases are costed.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call

from codesign.runtime.optim import Adam

from ..config import UGS_EPOCHS
from ..masks import global_weight_mask, keep_count, magnitude_mask, sparsity
from .common import MethodResult, PhaseRecord, RunContext, edge_weight, fit, record_phase, state_of
from .retrain import retrain_model
from .search import edge_tiebreak

EDGE_STEP, WEIGHT_STEP, S1, S2 = 0.05, 0.20, 1e-2, 1e-2


def default_rounds(p_w: float, p_g: float) -> int:
    """Fewest rounds reaching the weight ratio (or the graph ratio when ``p_w = 0``), at least 1."""
    if p_w > 0:
        return max(1, math.ceil(math.log(1 - p_w) / math.log(1 - WEIGHT_STEP)))
    if p_g > 0:
        return max(1, math.ceil(math.log(1 - p_g) / math.log(1 - EDGE_STEP)))
    return 1


def round_targets(p: float, step: float, rounds: int) -> list[float]:
    """Pruning ratio (of all entries) after each round: the step ``step`` of the remaining entries,
    larger when ``rounds`` such steps would not reach ``p``, capped at ``p`` (the last is ``p``)."""
    if p <= 0:
        return [0.0] * rounds
    step = max(step, 1 - (1 - p) ** (1 / rounds))
    return [min(p, 1 - (1 - step) ** r) if r < rounds else p for r in range(1, rounds + 1)]


def _among_ratio(alive: int, total: int, target: float) -> float:
    """The ratio of the ``alive`` entries to prune so exactly ``keep_count(total, target)`` stay."""
    keep = min(keep_count(total, target), alive)
    return (alive - keep) / alive if alive else 0.0


def mask_epoch(model, data, opt, mask_opt, edge_index, und, m_a, m_w, alive_g, alive_w) -> float:  # type: ignore[no-untyped-def]
    """One epoch of UGS mask training: weights and masks (``m_a`` on the alive undirected edges
    ``und``, ``m_w`` per maskable weight) step together under the L1 terms; returns the validation
    accuracy of the masked network after the step (the weights and masks the caller then holds)."""
    model.train()
    params = {k: p * m_w[k] * alive_w[k] for k, p in model.maskable().items()}
    out = functional_call(model, params, (data.x, edge_index, edge_weight(m_a, und)))
    loss = F.nll_loss(out[data.train_mask], data.y[data.train_mask])
    loss = loss + S1 * m_a[alive_g].abs().sum() + S2 * sum(m[alive_w[k]].abs().sum() for k, m in m_w.items())
    opt.zero_grad()
    mask_opt.zero_grad()
    loss.backward()
    opt.step()
    mask_opt.step()
    with torch.no_grad():  # the network after this step: the one whose masks a best epoch keeps
        model.eval()
        params = {k: p * m_w[k] * alive_w[k] for k, p in model.maskable().items()}
        pred = functional_call(model, params, (data.x, edge_index, edge_weight(m_a, und)))
        return float((pred.argmax(-1) == data.y)[data.val_mask].float().mean())


def run(ctx: RunContext) -> MethodResult:
    c, data = ctx.config, ctx.data
    epochs = c.phase_epochs(UGS_EPOCHS)
    rounds = c.rounds or default_rounds(c.weight_sparsity, c.graph_sparsity)
    model = ctx.new_model()
    init = state_of(model)
    alive_g = torch.ones(data.num_undirected, dtype=torch.bool, device=ctx.device)
    alive_w = {k: torch.ones_like(p, dtype=torch.bool) for k, p in model.maskable().items()}
    graph_targets = round_targets(c.graph_sparsity, EDGE_STEP, rounds)
    weight_targets = round_targets(c.weight_sparsity, WEIGHT_STEP, rounds)
    n_weights = sum(m.numel() for m in alive_w.values())
    # equal mask values (edges that got the same updates, e.g. only the L1 term) go by --tie-break: by index a
    # tie would prune the highest node ids' edges first (Planetoid's test nodes). On Cora none reaches the threshold.
    tiebreak = edge_tiebreak(data, c.tie_break, c.seed)
    phases: list[PhaseRecord] = []
    result = None
    for r in range(1, rounds + 1):
        # 1. mask training from the initial weights
        start = time.perf_counter()
        model.load_state_dict(init)
        edge_index, und = data.edges_for(alive_g)
        m_a = torch.ones(data.num_undirected, device=ctx.device, requires_grad=True)
        m_w = {k: torch.ones_like(p, requires_grad=True) for k, p in model.maskable().items()}
        opt = ctx.optimizer(model)
        mask_opt = Adam([m_a, *m_w.values()], lr=c.lr)
        best_val, best_a, best_w = -1.0, m_a.detach().clone(), {k: v.detach().clone() for k, v in m_w.items()}
        with ctx.bar(epochs, f"ugs mask r{r}") as bar:
            for _ in range(epochs):
                val = mask_epoch(model, data, opt, mask_opt, edge_index, und, m_a, m_w, alive_g, alive_w)
                if val > best_val:
                    best_val, best_a = val, m_a.detach().clone()
                    best_w = {k: v.detach().clone() for k, v in m_w.items()}
                ctx.epoch_done(bar)
        phases.append(record_phase(f"ugs-mask-r{r}", epochs, time.perf_counter() - start,
                                  1 - sparsity(alive_g), 1 - sparsity(alive_w),
                                  trainable_graph=True, mask_update=True))

        # 2. prune the remaining edges and weights down to this round's targets
        g_ratio = _among_ratio(int(alive_g.sum()), alive_g.numel(), graph_targets[r - 1])
        w_ratio = _among_ratio(sum(int(m.sum()) for m in alive_w.values()), n_weights, weight_targets[r - 1])
        alive_g = magnitude_mask(best_a.clamp(min=0), g_ratio, among=alive_g, tiebreak=tiebreak)
        alive_w = global_weight_mask(best_w, w_ratio, among=alive_w, scores=best_w)

        # 3. rewind and retrain with frozen masks
        model = retrain_model(ctx, init, init)
        start_state = state_of(model)  # what this round retrains from (init, or a fresh draw for reinit)
        result = fit(ctx, model, c.final_epochs(epochs), f"ugs retrain r{r}", alive_g, alive_w)
        phases.append(record_phase(f"ugs-retrain-r{r}", c.final_epochs(epochs), result.wall_s,
                                  1 - sparsity(alive_g), 1 - sparsity(alive_w)))
    assert result is not None  # rounds >= 1 (validated in the config)
    return MethodResult(
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        graph_mask=alive_g,
        weight_masks=alive_w,
        ticket_state=start_state,  # a saved ticket retrains from the last round's start
        init_state=init,
        final_state=result.best_state,
        phases=phases,
        extra={"rounds": rounds},
    )
