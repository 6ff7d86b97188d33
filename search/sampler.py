"""The study's sampler: Optuna's TPE seeded per slot (see :mod:`search.screening` for slots), so a search
resumed after a stop samples every slot as one uninterrupted serial search. Several workers sample the
same slots alike only while TPE draws at random (its first ``n_startup_trials`` = 10 trials); after that
a slot's draw depends on the trials finished when it is sampled, which parallel workers change (a
serial search has finished every earlier slot, a worker not the ones still training elsewhere)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .screening import slot_of
from .storage import WORKER_ATTR, worker_tag

if TYPE_CHECKING:
    import optuna


def _seed_for(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number * 7919 + 17) % (2**31 - 1)


def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    class PerSlotTPE(optuna.samplers.BaseSampler):
        """Optuna's TPE (its default sampler), seeded per slot (see the module docstring); right after
        a repeated configuration, one random draw instead."""

        def __init__(self) -> None:
            self._by_number: dict[int, optuna.samplers.BaseSampler] = {}

        def _inner(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> optuna.samplers.BaseSampler:
            if trial.number not in self._by_number:
                trials = study.get_trials(deepcopy=False)
                slot_seed = _seed_for(seed, slot_of(trials, trial.number))
                # the trial of the slot before this one (a retry's slot is its original's: the original and any
                # trial holding no slot are left out, so a retry draws with the sampler its original would have)
                retried = {int(r) for t in trials if (r := t.user_attrs.get("retry_of")) is not None}
                before = [t for t in trials if t.number < trial.number and t.number not in retried
                          and not t.user_attrs.get("surplus")]
                if before and before[-1].user_attrs.get("duplicate_of") is not None:
                    # TPE does not see the repeat (a FAIL trial) and would draw it again: draw at random once
                    self._by_number[trial.number] = optuna.samplers.RandomSampler(seed=slot_seed)
                else:
                    self._by_number[trial.number] = optuna.samplers.TPESampler(seed=slot_seed)
            return self._by_number[trial.number]

        def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
            return self._inner(study, trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
            return self._inner(study, trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
            inner = self._inner(study, trial)
            return inner.sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
            # tagged as this process's at once (the objective tags it again): Ctrl-C while Optuna samples, before
            # the objective runs, leaves it RUNNING, and a resumed search then retries it first, in its slot,
            # as a dead worker's (storage.recover_dead_trials), instead of some 30 s later
            study._storage.set_trial_user_attr(trial._trial_id, WORKER_ATTR, worker_tag())
            self._inner(study, trial).before_trial(study, trial)

        def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
            self._inner(study, trial).after_trial(study, trial, state, values)
            self._by_number.pop(trial.number, None)

    return PerSlotTPE()
