"""``random``: prune edges and weights uniformly at random at the requested ratios, then train.

Same exact counts as the ticket methods (symmetric graph mask on undirected edges, one global
weight mask), drawn from a generator seeded with the run's seed; 100 epochs from initialisation.
"""

from __future__ import annotations

import torch

from ..masks import nm_weight_mask, parse_pattern, random_mask, random_weight_mask
from .common import MethodResult, RunContext, fit, record_phase, state_of


def run(ctx: RunContext) -> MethodResult:
    c = ctx.config
    model = ctx.new_model()
    init = state_of(model)
    g = torch.Generator().manual_seed(c.seed)
    graph_mask = random_mask(ctx.data.num_undirected, c.graph_sparsity, g)
    params = {k: v.detach().cpu() for k, v in model.maskable().items()}
    nm = parse_pattern(c.weight_pattern)
    if nm is None:
        weight_masks = random_weight_mask(params, c.weight_sparsity, g)
    else:  # random scores through the N:M rule: a random mask of that pattern
        weight_masks = nm_weight_mask(params, c.weight_sparsity, *nm,
                                      scores={k: torch.rand(v.shape, generator=g) for k, v in params.items()})
    weight_masks = {k: m.to(ctx.device) for k, m in weight_masks.items()}
    epochs = c.final_epochs()
    result = fit(ctx, model, epochs, "train", graph_mask.to(ctx.device), weight_masks)
    return MethodResult(
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        graph_mask=graph_mask,
        weight_masks=weight_masks,
        ticket_state=init,
        init_state=init,
        final_state=result.best_state,
        phases=[record_phase("train", epochs, result.wall_s, 1 - c.graph_sparsity, 1 - c.weight_sparsity)],
    )
