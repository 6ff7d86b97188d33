"""Checks on a finished run that a user must not have to make themselves.

* :func:`check_sparsity` — a method must reach the sparsity it was asked for, within
  ``tolerance`` (0.01), or the run fails with the reason (a ``SparsityNotReached``, a ``CodesignError``
  naming the method, both values and what to change).
* :func:`chance_warning` — a test accuracy no better than guessing says so: the run's result gets
  ``at_chance: true`` and a line in ``warnings``. "No better than chance" = below the accuracy of
  always answering the most frequent class plus three binomial standard errors (at least two points),
  i.e. what a network that learned nothing reaches on that test set.
"""

from __future__ import annotations

import math

from costmodels.errors import CodesignError

SPARSITY_TOLERANCE = 0.01


class SparsityNotReached(CodesignError):
    """A method cannot reach, or did not reach, the sparsity one configuration asked for: that
    configuration's failure (a search fails its one trial and goes on), not a bad option of the command."""


def check_sparsity(method: str, kind: str, requested: float | None, achieved: float, entries: int,
                   tolerance: float = SPARSITY_TOLERANCE, *, verb: str = "reached", why: str | None = None) -> None:
    """Raise unless ``achieved`` is within ``tolerance`` of ``requested`` (None = not asked for).

    ``entries`` is the number of prunable entries (edges, weights, channels): with fewer than
    ``1 / tolerance`` of them the achievable sparsities are too coarse, which the message says.
    """
    if requested is None or abs(achieved - requested) <= tolerance + 1e-12:
        return
    if why is None:
        coarse = entries and 1 / entries > tolerance
        why = (f"there are only {entries} prunable {kind} entries, so sparsity moves in steps of {1 / entries:.3g}"
               if coarse else f"{method} could not prune to it")
    raise SparsityNotReached(f"--method {method} {verb} {kind} sparsity {achieved:.4f}, not the requested "
                        f"{requested:.4f} (tolerance {tolerance}): {why}; ask for a sparsity it can reach")


def chance_level(counts: list[int]) -> tuple[float, float]:
    """(accuracy of always predicting the most frequent class, the 'no better than that' bound)."""
    n = sum(counts)
    if n == 0:
        return 0.0, 0.0
    p = max(counts) / n
    return p, p + max(0.02, 3 * math.sqrt(p * (1 - p) / n))


def chance_warning(test_accuracy: float | None, counts: list[int]) -> str | None:
    """A one-line warning when ``test_accuracy`` is no better than chance on a test set with these class counts."""
    if test_accuracy is None or math.isnan(test_accuracy):
        return None
    p, bound = chance_level(counts)
    if test_accuracy >= bound:
        return None
    return (f"test accuracy {100 * test_accuracy:.1f} % is no better than chance ({100 * p:.1f} % for always "
            f"answering the most frequent class): the network did not learn; train longer (--epochs) or "
            f"prune less")
