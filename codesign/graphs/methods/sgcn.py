"""``sgcn`` baseline (Li et al. 2020): pretrain 100, ADMM-sparsify the graph 100, retrain 100.

Graph only (weights stay dense): the schedule GEBT's training-cost savings are measured against.
The sparsify phase is the GEB search loop without the detector, run for all its epochs; the graph
mask is the last epoch's. Retraining starts from ``--retrain-init`` (ticket = pretrained weights).
"""

from __future__ import annotations

from ..masks import sparsity
from .common import MethodResult, PhaseRecord, RunContext, fit, state_of
from .retrain import retrain_model
from .search import search


def run(ctx: RunContext) -> MethodResult:
    c = ctx.config
    model = ctx.new_model()
    init = state_of(model)
    epochs = c.phase_epochs()
    pre = fit(ctx, model, epochs, "pretrain")

    for p in model.parameters():
        p.requires_grad_(False)
    found = search(ctx, model, epochs, "sparsify", train_weights=False, weight_ratio=None, detect=False)

    retrain = retrain_model(ctx, found.ticket_state, init)
    start = state_of(retrain)
    result = fit(ctx, retrain, epochs, "retrain", found.graph_mask)
    return MethodResult(
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        graph_mask=found.graph_mask,
        weight_masks=None,
        ticket_state=start,
        init_state=init,
        final_state=result.best_state,
        phases=[
            PhaseRecord("pretrain", epochs, pre.wall_s),
            PhaseRecord("sparsify", found.epochs, found.wall_s, trainable_graph=True, mask_update=True),
            PhaseRecord("retrain", epochs, result.wall_s, 1 - sparsity(found.graph_mask)),
        ],
    )
