"""``gebt``: joint graph-network early-bird ticket (You et al. 2022, Alg. 2), then retraining.

1. From a fresh initialisation, search: each epoch one step on ``W``, one ADMM step on the edge
   values; graph mask at ``p_g``, global weight mask at ``p_w``; stop when the detector fires
   (``d_g``, ``d_w``, criterion ``--criterion``) or after ``epochs``.
2. Retrain the sparse network (weights masked by ``n_t``) on the sparse graph ``m_t ⊙ A`` (binary,
   original adjacency) for 100 epochs, starting from ``--retrain-init`` (default: the ticket).
"""

from __future__ import annotations

from ..masks import sparsity
from .common import MethodResult, RunContext, fit, record_phase, state_of
from .retrain import retrain_model
from .search import search


def run(ctx: RunContext) -> MethodResult:
    c = ctx.config
    model = ctx.new_model()
    init = state_of(model)
    epochs = c.phase_epochs()
    found = search(ctx, model, epochs, "search", train_weights=True, weight_ratio=c.weight_sparsity)

    retrain = retrain_model(ctx, found.ticket_state, init)
    start = state_of(retrain)
    result = fit(ctx, retrain, c.final_epochs(), "retrain", found.graph_mask, found.weight_masks)
    graph_density = 1 - sparsity(found.graph_mask)
    weight_density = 1 - sparsity(found.weight_masks)
    return MethodResult(
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        graph_mask=found.graph_mask,
        weight_masks=found.weight_masks,
        ticket_state=start,
        init_state=init,
        final_state=result.best_state,
        phases=[
            record_phase("search", found.epochs, found.wall_s, trainable_graph=True, mask_update=True,
                        graph_copies=found.graph_copies, graph_training="alternate"),
            record_phase("retrain", c.final_epochs(), result.wall_s, graph_density, weight_density),
        ],
        eb_epoch=found.epochs if found.fired else None,
        detector=found.detector,
        extra={"search_epoch_wall_s": found.epoch_wall_s},
    )
