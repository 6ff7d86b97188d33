"""Where retraining starts (``--retrain-init``): the ticket's weights (paper), the initial weights
(``rewind``, lottery-ticket style) or a fresh initialisation (``reinit``)."""

from __future__ import annotations

from torch import Tensor

from ..models import GNN
from .common import RunContext


def retrain_model(ctx: RunContext, ticket_state: dict[str, Tensor], init_state: dict[str, Tensor]) -> GNN:
    kind = ctx.config.retrain_init
    if kind == "reinit":
        return ctx.new_model(seed_offset=1_000_003)
    model = ctx.new_model()
    model.load_state_dict(ticket_state if kind == "ticket" else init_state)
    return model
