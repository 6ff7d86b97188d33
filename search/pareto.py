"""Pareto fronts of (accuracy up, cost down) points, and the budgeted choice.

Point ``i`` dominates ``j`` when ``acc_i >= acc_j`` and ``cost_i <= cost_j`` with at least one strict.
The front is the set of non-dominated points. Sorting by cost ascending (ties: accuracy descending)
and keeping each point whose accuracy is strictly above every cheaper point's gives the front in
O(n log n) (a 2-D skyline); exact duplicates of a front point are all kept (none dominates another).

The budgeted answer (:func:`best_feasible`) is the most accurate point with ``cost <= budget``
(ties: cheaper, then lower index); it is always on the front of the feasible points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when ``a = (acc, cost)`` is at least as good as ``b`` in both and better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def _valid(acc: float, cost: float) -> bool:
    return acc is not None and cost is not None and math.isfinite(acc) and math.isfinite(cost)


def pareto_indices(accuracy: Sequence[float], cost: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, ordered by cost ascending. NaN/inf points are skipped."""
    if len(accuracy) != len(cost):
        raise ValueError("accuracy and cost must have the same length")
    order = sorted(
        (i for i in range(len(cost)) if _valid(accuracy[i], cost[i])),
        key=lambda i: (cost[i], -accuracy[i], i),
    )
    front: list[int] = []
    best_acc = -math.inf
    last: tuple[float, float] | None = None
    for i in order:
        point = (accuracy[i], cost[i])
        if accuracy[i] > best_acc:
            front.append(i)
            best_acc = accuracy[i]
            last = point
        elif point == last:  # an exact duplicate of the latest front point is not dominated by it
            front.append(i)
    return front


def pareto_indices_brute(accuracy: Sequence[float], cost: Sequence[float]) -> list[int]:
    """O(n^2) reference: keep every valid point no other valid point dominates (for tests)."""
    pts = [(i, (accuracy[i], cost[i])) for i in range(len(cost)) if _valid(accuracy[i], cost[i])]
    return sorted(
        (i for i, p in pts if not any(dominates(q, p) for _, q in pts)),
        key=lambda i: (cost[i], -accuracy[i], i),
    )


def best_feasible(accuracy: Sequence[float], cost: Sequence[float], budget: float | None) -> int | None:
    """Index of the most accurate point with ``cost <= budget`` (no budget: most accurate overall).

    Ties go to the cheaper point, then the lower index. None when no point is feasible.
    """
    best: int | None = None
    for i in range(len(cost)):
        if not _valid(accuracy[i], cost[i]) or (budget is not None and cost[i] > budget):
            continue
        if best is None or (accuracy[i], -cost[i]) > (accuracy[best], -cost[best]):
            best = i
    return best
