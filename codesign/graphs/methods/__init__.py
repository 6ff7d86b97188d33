"""One module per method, each with ``run(ctx: RunContext) -> MethodResult`` reading top to bottom.

``dense`` (Kipf & Welling), ``geb`` (graph early-bird, Alg. 1), ``gebt`` (joint graph-network
early-bird, Alg. 2), and the baselines ``sgcn`` (pretrain + ADMM sparsify + retrain), ``random``
(uniform pruning at the same ratios) and ``ugs`` (iterative unified graph sparsification).
They share one loop (``common.fit`` / ``common.train_step``) and one Adam (``codesign.runtime.optim``).
"""

from __future__ import annotations

from collections.abc import Callable

from costmodels.errors import unknown

from .common import MethodResult, RunContext


def get_method(name: str) -> Callable[[RunContext], MethodResult]:
    """The ``run`` function of method ``name`` (imported on demand)."""
    from . import dense, geb, gebt, random, sgcn, ugs

    table = {"dense": dense.run, "geb": geb.run, "gebt": gebt.run, "sgcn": sgcn.run, "random": random.run,
             "ugs": ugs.run}
    if name not in table:
        raise unknown("method", name, list(table))
    return table[name]
