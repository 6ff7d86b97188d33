"""Resuming a study: what must match (the stored context) and what an older study lacks."""

from __future__ import annotations

import pytest
from test_search_study import SPACE, config, fake_evaluator, load

from costmodels.errors import CodesignError
from search import run_search
from search.study import count_states


@pytest.mark.parametrize("changed, key", [({"seed": 1}, "seed"), ({"screen": False}, "screen"),
                                          ({"repeats": 2}, "trainings_per_config")])
def test_a_resume_with_another_seed_screening_or_repeat_count_is_refused(tmp_path, changed, key):
    """Each decides which configurations the slots train or what a result means: mixed in one study, the
    trials of two searches would be read as one."""
    cfg = config(tmp_path, 2)
    run_search(cfg, SPACE, fake_evaluator)
    with pytest.raises(CodesignError, match=rf"was run with {key}=.*pick a new --study"):
        run_search(config(tmp_path, 3, **changed), SPACE, fake_evaluator)
    assert count_states(load(cfg)) == (2, 0)


def test_a_study_stored_before_seed_and_screening_were_recorded_resumes(tmp_path):
    from search.config import CONTEXT_ATTR, LATER_CONTEXT

    cfg = config(tmp_path, 2)
    run_search(cfg, SPACE, fake_evaluator)
    study = load(cfg)
    old = {k: v for k, v in study.user_attrs[CONTEXT_ATTR].items() if k not in LATER_CONTEXT}
    study.set_user_attr(CONTEXT_ATTR, old)  # as an older codesign stored it
    run_search(config(tmp_path, 3), SPACE, fake_evaluator)
    assert count_states(load(cfg)) == (3, 0)
