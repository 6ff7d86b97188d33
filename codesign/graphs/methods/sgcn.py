"""``sgcn`` baseline (Li et al. 2020): pretrain 100, ADMM-sparsify the graph 100, retrain 100.

Graph only (weights stay dense): the schedule GEBT's training-cost savings are measured against.
The sparsify phase is the GEB search loop without the detector, run for all its epochs; the graph
mask is the last epoch's. Retraining starts from ``--retrain-init`` (ticket = pretrained weights).
"""

from __future__ import annotations

from .common import MethodResult, RunContext
from .geb import pretrain_sparsify_retrain


def run(ctx: RunContext) -> MethodResult:
    return pretrain_sparsify_retrain(ctx, "sparsify", detect=False)
