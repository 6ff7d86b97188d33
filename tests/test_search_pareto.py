"""Pareto extraction (O(n log n) skyline) against the O(n^2) definition; the budgeted choice."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from search.pareto import best_feasible, dominates, pareto_indices, pareto_indices_brute

coarse = st.integers(0, 6).map(lambda k: k / 6)  # few distinct values: many ties and duplicates


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(coarse, coarse), max_size=40))
def test_front_matches_brute_force_with_ties(points):
    acc = [p[0] for p in points]
    cost = [p[1] for p in points]
    assert pareto_indices(acc, cost) == pareto_indices_brute(acc, cost)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1e6)), max_size=60))
def test_front_matches_brute_force_continuous(points):
    acc = [p[0] for p in points]
    cost = [p[1] for p in points]
    front = pareto_indices(acc, cost)
    assert front == pareto_indices_brute(acc, cost)
    # every point off the front is dominated by a front point
    for i in set(range(len(points))) - set(front):
        assert any(dominates((acc[j], cost[j]), (acc[i], cost[i])) for j in front)


def test_front_by_hand():
    acc = [0.70, 0.80, 0.75, 0.80, 0.60, 0.81, float("nan")]
    cost = [1.0, 2.0, 2.0, 3.0, 0.5, 5.0, 0.1]
    # 0.60@0.5, 0.70@1, 0.80@2, 0.81@5; 0.75@2 and 0.80@3 are dominated by 0.80@2; NaN skipped
    assert pareto_indices(acc, cost) == [4, 0, 1, 5]


def test_best_feasible_picks_most_accurate_within_budget():
    acc = [0.70, 0.80, 0.80, 0.60, 0.81]
    cost = [1.0, 2.5, 2.0, 0.5, 5.0]
    assert best_feasible(acc, cost, 2.0) == 2  # 0.80 at 2.0 (the 0.80 at 2.5 is over budget)
    assert best_feasible(acc, cost, 2.6) == 2  # tie on accuracy: the cheaper one
    assert best_feasible(acc, cost, None) == 4
    assert best_feasible(acc, cost, 0.4) is None
    assert best_feasible([math.inf], [1.0], None) is None
