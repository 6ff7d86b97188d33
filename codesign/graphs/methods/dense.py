"""``dense``: Kipf & Welling training on the full graph (100 epochs, Adam 0.01, dropout 0.5)."""

from __future__ import annotations

from .common import MethodResult, RunContext, fit, record_phase, state_of


def run(ctx: RunContext) -> MethodResult:
    model = ctx.new_model()
    init = state_of(model)
    epochs = ctx.config.final_epochs()
    result = fit(ctx, model, epochs, "train")
    return MethodResult(
        val_accuracy=result.val_accuracy,
        test_accuracy=result.test_accuracy,
        graph_mask=None,
        weight_masks=None,
        ticket_state=None,
        init_state=init,
        final_state=result.best_state,
        phases=[record_phase("train", epochs, result.wall_s)],
    )
