"""Two worker processes on one study in a real PostgreSQL server (loopback).

`.ci/run` sources `.ci/postgres.sh`, which starts a throw-away server and exports
CODESIGN_TEST_POSTGRES_URL; without it this test skips and says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from test_search_workers import _worker_script

from search.storage import open_storage

URL = os.environ.get("CODESIGN_TEST_POSTGRES_URL")
REASON = os.environ.get("CODESIGN_TEST_POSTGRES_SKIP") or "CODESIGN_TEST_POSTGRES_URL is unset"

pytestmark = pytest.mark.skipif(
    not URL, reason=f"no PostgreSQL server: {REASON} (source .ci/postgres.sh to start one on 127.0.0.1)"
)


def test_two_processes_share_one_study_exactly(tmp_path):
    name = f"two-workers-{uuid.uuid4().hex[:8]}"
    n = 12
    script = _worker_script(URL, n, delay=0.25, study=name, barrier=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    deadline = time.time() + 120
    while len(list(tmp_path.iterdir())) < 2 and time.time() < deadline:  # both imported: start together
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name=name, storage=open_storage(URL))
    by_state: dict[str, list] = {}
    for t in study.trials:
        by_state.setdefault(t.state.name, []).append(t)
    assert len(by_state["COMPLETE"]) == n  # every trial recorded once, the target exactly
    assert "RUNNING" not in by_state and "WAITING" not in by_state  # none lost or left behind
    # only never-evaluated ones: surplus trials past the target, or repeats of a trained configuration
    assert all(t.user_attrs.get("surplus") or t.user_attrs.get("duplicate_of") is not None
               for t in by_state.get("FAIL", []))
    workers = {t.user_attrs["worker"] for t in by_state["COMPLETE"]}
    assert len(workers) == 2  # both processes did work
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    seeds = [t.user_attrs["seed"] for t in by_state["COMPLETE"]]
    assert len(seeds) == len(set(seeds))
