"""Running a search from the command line: progress (a bar on a terminal, else one line per trial),
the confirmation stage after the trials (one line per retraining), and what Ctrl-C leaves behind
(the tables of the trials that finished). Used by :mod:`codesign.cli.search`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from costmodels.atomic import write_text


def any_finished(config, space) -> bool:  # type: ignore[no-untyped-def]
    from search.study import count_states, open_study

    try:
        return count_states(open_study(config, space))[0] > 0
    except Exception:  # noqa: BLE001 - unreadable: keep the folder
        return True


def interrupted(config, space, out: Path, policy) -> str:  # type: ignore[no-untyped-def]
    """After Ctrl-C: trials.csv and the rest for the trials that finished; the tail of the one-line message."""
    import signal

    from search.outputs import write_outputs
    from search.study import count_states, open_study

    resume = "; rerun the same command to resume the study"
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the tables in half
    except ValueError:  # not the main thread
        previous = None
    try:
        study = open_study(config, space)
        if count_states(study)[0] == 0:
            return resume + " (no trial had finished)"
        summary = write_outputs(study, out)
        summary["thread_policy"] = policy.to_dict()
        write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
        return resume + f" ({summary['n_trials']} finished trials in {out}/trials.csv)"
    except Exception:  # noqa: BLE001 - the interruption is what the user sees, not a follow-up error
        return resume
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def confirm(study, config, evaluator, n_seeds: int) -> None:  # type: ignore[no-untyped-def]
    """The confirmation stage (``search.confirm``), one progress line per retraining."""
    from search.confirm import run_confirmation

    if n_seeds <= 0:
        return
    run_confirmation(study, config, evaluator, n_seeds, on_run=confirm_printer())


def confirm_printer():  # type: ignore[no-untyped-def]
    """``on_run(done, total)``: one ``[confirm]`` progress line per call, seconds counted from the first."""
    t0: list[float] = []

    def on_run(done: int, total: int) -> None:
        t0[:] = t0 or [time.perf_counter()]
        print(f"[confirm] {done}/{total} retrainings on further seeds, {time.perf_counter() - t0[0]:.0f}s",
              file=sys.stderr, flush=True)
    return on_run


def run_with_progress(config, space, evaluator, unit, format_si, *, predict=None,  # type: ignore[no-untyped-def]
                       reference=None, early=(), worker_init=None, waiting=None, confirm_seeds=0):
    from tqdm import tqdm

    from search import run_search

    bar = tqdm(total=config.n_trials, desc="trials", unit="trial", file=sys.stderr, disable=None,
               dynamic_ncols=True)
    shown = [-1]
    t0 = time.perf_counter()
    first = [0]

    def on_trial(p) -> None:  # type: ignore[no-untyped-def]
        if shown[0] < 0:  # the first call reports where a resumed study starts
            first[0] = shown[0] = p.complete
            bar.update(min(p.complete, p.target))
        else:
            bar.update(max(0, min(p.complete, p.target) - shown[0]))
            shown[0] = max(shown[0], p.complete)
        best = "none yet" if p.best_accuracy is None else f"{p.best_accuracy:.3f} @ {format_si(p.best_cost, unit)}"
        screened = f", {p.screened} screened" if p.screened else ""
        bar.set_postfix_str(f"best feasible acc {best}{screened}")
        if bar.disable:  # not a terminal: one plain line per trial instead of a bar
            elapsed = time.perf_counter() - t0
            done_here = p.complete - first[0]
            left = (f"~{elapsed / done_here * max(0, p.target - p.complete):.0f}s left" if done_here > 0
                    else "time left unknown")
            print(f"[search] {p.complete}/{p.target} trained{screened}, best feasible acc {best}, "
                  f"{elapsed:.0f}s elapsed, {left}", file=sys.stderr, flush=True)

    try:
        return run_search(config, space, evaluator, on_trial=on_trial, predict=predict, reference=reference,
                          early=early, worker_init=worker_init, waiting=waiting, confirm_seeds=confirm_seeds,
                          on_confirm=confirm_printer())  # worker processes' confirmation runs (--n-jobs > 1)
    finally:
        bar.close()
