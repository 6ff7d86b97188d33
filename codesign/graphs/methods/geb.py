"""``geb``: graph early-bird ticket (You et al. 2022, Alg. 1), graph only.

1. Pretrain on the full graph (100 epochs).
2. Freeze ``W``; train the edge values with ADMM; graph mask at ``p_g`` each epoch; stop when
   ``d_g < eta`` (detector) or after ``epochs``.
3. Retrain the dense network on ``m_t ⊙ A`` from ``--retrain-init`` (ticket = the pretrained weights).
"""

from __future__ import annotations

from ..masks import sparsity
from .common import MethodResult, RunContext, fit, record_phase, state_of
from .retrain import retrain_model
from .search import search


def run(ctx: RunContext) -> MethodResult:
    return pretrain_sparsify_retrain(ctx, "search", detect=True)


def pretrain_sparsify_retrain(ctx: RunContext, phase: str, detect: bool) -> MethodResult:
    """Pretrain, graph search with ``W`` frozen (stopped by the detector when ``detect``), retrain.

    Shared by ``geb`` (detector on) and ``sgcn`` (the full sparsify schedule, no detector).
    """
    c = ctx.config
    model = ctx.new_model()
    init = state_of(model)
    epochs = c.phase_epochs()
    pre = fit(ctx, model, epochs, "pretrain")

    for p in model.parameters():  # W is frozen during the graph search
        p.requires_grad_(False)
    found = search(ctx, model, epochs, phase, train_weights=False, weight_ratio=None, detect=detect)

    retrain = retrain_model(ctx, found.ticket_state, init)
    start = state_of(retrain)
    result = fit(ctx, retrain, c.final_epochs(), "retrain", found.graph_mask)
    return MethodResult(
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        graph_mask=found.graph_mask,
        weight_masks=None,
        ticket_state=start,
        init_state=init,
        final_state=result.best_state,
        phases=[
            record_phase("pretrain", epochs, pre.wall_s),
            record_phase(phase, found.epochs, found.wall_s, trainable_graph=True, mask_update=True,
                        graph_copies=found.graph_copies, graph_training="frozen-weights"),
            record_phase("retrain", c.final_epochs(), result.wall_s, 1 - sparsity(found.graph_mask)),
        ],
        eb_epoch=found.epochs if detect and found.fired else None,
        detector=found.detector if detect else None,
        extra={"search_epoch_wall_s": found.epoch_wall_s} if detect else {},
    )
