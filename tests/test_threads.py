"""Thread policy: the choices of codesign.runtime.threads (cores, workers, workload size, --threads, the user's
OpenMP variables), the worker registry, and the thread count recorded in a train result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codesign.cli import main
from codesign.graphs.epoch_flops import dataset_epoch_flops, gnn_epoch_flops
from codesign.runtime.threads import (
    FLOPS_PER_THREAD,
    LocalWorkers,
    ThreadedEvaluator,
    choose_threads,
    prepare_environment,
)
from costmodels.errors import CodesignError

CORA = dataset_epoch_flops("cora")
SBM_1M = dataset_epoch_flops("sbm:n=1000000,avg_degree=10,features=128,classes=8")


def test_workload_estimates_place_cora_below_and_the_million_node_graph_above_one_thread():
    # 3 x (2·N·F·H·d + 2·E·H + 2·N·H·C + 2·E·C), N=2708, E=10556, F=1433, H=16, C=7, d = 0.012683 (the
    # non-zero fraction of Cora's features, which train as CSR)
    assert CORA == pytest.approx(3 * (2 * 2708 * 1433 * 16 * 0.012683 + 2 * 10556 * 16 + 2 * 2708 * 16 * 7
                                      + 2 * 10556 * 7), rel=1e-12)
    assert CORA == pytest.approx(8.001e6, rel=1e-3) and CORA < FLOPS_PER_THREAD
    # dense features: the whole transform
    assert gnn_epoch_flops(2708, 10556, 1433, 16, 7) == pytest.approx(3.758e8, rel=1e-3)
    assert SBM_1M == pytest.approx(gnn_epoch_flops(10**6, 10**7, 128, 16, 8)) == pytest.approx(1.4496e10, rel=1e-3)
    assert dataset_epoch_flops("no-such-graph") is None and dataset_epoch_flops("sbm:n=oops") is None


@pytest.mark.parametrize(
    "cores, workers, flops, threads",
    [
        (1, 1, SBM_1M, 1),      # one usable core: one thread
        (2, 1, SBM_1M, 2),      # a large graph takes both cores
        (8, 1, SBM_1M, 8),
        (8, 2, SBM_1M, 4),      # two workers split eight cores
        (8, 3, SBM_1M, 2),      # workers x threads <= cores
        (2, 4, SBM_1M, 1),      # more workers than cores: one thread each (never 0)
        (8, 1, CORA, 1),        # Cora: its 0.008 GFLOP epoch (sparse features) pays for one thread
        (2, 1, CORA, 1),
        (8, 1, 3.758e8, 2),     # one thread per 0.15 GFLOP of a 0.38 GFLOP epoch
        (8, 1, 1e8, 1),         # a tiny graph: one thread
        (8, 1, 4.6e8, 3),       # one thread per 0.15 GFLOP/epoch, up to the share
        (8, 2, 9.9e9, 4),       # ... capped by the share
        (8, 1, None, 8),        # unknown workload (CNNs): the whole share
    ],
)
def test_auto_choice(cores, workers, flops, threads):
    p = choose_threads(cores, workers, flops, environ={})
    assert (p.threads, p.source, p.cores, p.workers) == (threads, "auto", cores, workers)
    assert p.threads * workers <= max(cores, workers)


def test_explicit_threads_win_and_oversubscription_is_said():
    p = choose_threads(2, 1, CORA, explicit=3, environ={"OMP_NUM_THREADS": "1"})
    assert (p.threads, p.source, p.interop_threads) == (3, "--threads", 2) and "oversubscribed" in p.reason
    assert "oversubscribed" not in choose_threads(8, 2, CORA, explicit=4, environ={}).reason
    with pytest.raises(CodesignError, match="--threads 0: must be at least 1"):
        choose_threads(2, explicit=0, environ={})


def test_users_omp_num_threads_is_honoured():
    p = choose_threads(8, 1, CORA, environ={"OMP_NUM_THREADS": "3"})
    assert (p.threads, p.source) == (3, "OMP_NUM_THREADS")
    with pytest.raises(CodesignError, match="OMP_NUM_THREADS='two'"):
        choose_threads(8, environ={"OMP_NUM_THREADS": "two"})


@pytest.mark.parametrize("value", ["100000", "0", "-1", "1025"])
def test_users_omp_num_threads_out_of_range_is_refused(value):
    # OMP_NUM_THREADS=100000 went to torch.set_num_threads (a segfault, exit 139, no message); 0 and -1 were
    # dropped silently for the automatic choice. Now refused like --threads: 1 to THREADS_MAX
    with pytest.raises(CodesignError, match=f"OMP_NUM_THREADS='{value}' is not a whole number from 1 to 1024"):
        choose_threads(8, environ={"OMP_NUM_THREADS": value})
    assert choose_threads(8, environ={"OMP_NUM_THREADS": "1024"}).threads == 1024
    assert choose_threads(8, explicit=2, environ={"OMP_NUM_THREADS": value}).threads == 2  # --threads wins


def test_cli_refuses_a_bad_omp_num_threads_in_one_line_before_torch(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "100000", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = ("import sys\nfrom codesign.cli import main\nrc = main(sys.argv[1:])\n"
            "print('torch' in sys.modules)\nsys.exit(rc)")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", code, "train", "--dataset", "sbm:n=300,avg_degree=6,features=8,"
                           "classes=3", "--epochs", "1", "--out", str(out)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == ["codesign: error: OMP_NUM_THREADS='100000' is not a whole number from 1 to "
                                        "1024; unset it or set it to e.g. 1"]
    assert proc.stdout.strip() == "False" and not out.exists()


def test_wait_policy_is_passive_unless_the_user_set_it():
    env: dict[str, str] = {}
    assert prepare_environment(env) == "PASSIVE (set by codesign)" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert prepare_environment(dict(env)) == "PASSIVE (set by codesign)"  # a child sees our mark, not the user's
    for user in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "100000"}):
        env = dict(user)
        assert prepare_environment(env).startswith("user's ") and env == user  # untouched


def test_local_workers_count_live_processes_only(tmp_path):
    (tmp_path / str(os.getppid())).write_text("2")  # another live search process with --n-jobs 2
    (tmp_path / "999999999").write_text("4")  # a dead one: ignored and tidied
    with LocalWorkers(1, tmp_path) as w:
        assert (tmp_path / str(os.getpid())).read_text() == "1"
        assert w.total() == 3
    assert not (tmp_path / "999999999").exists() and not (tmp_path / str(os.getpid())).exists()
    assert choose_threads(2, w.total(), SBM_1M, environ={}).threads == 1


def _count_in_child(workers, queue):
    queue.put(workers.total())


def test_a_worker_process_counts_its_owners_workers_once(tmp_path):
    """--n-jobs 2: the registry holds the owner's "2"; a worker process (another pid) finds it and
    must count 2 workers, not its own 2 on top of them (issue 22: thread_workers said 4)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with LocalWorkers(2, tmp_path) as w:
        queue = ctx.Queue()
        child = ctx.Process(target=_count_in_child, args=(w, queue))
        child.start()
        child.join(30)
        assert queue.get(timeout=5) == 2
        assert w.total() == 2
        assert (tmp_path / str(os.getpid())).exists()  # the child did not tidy the owner's file away


def _wait_in_child(workers, out, go):
    workers.set_waiting(True)
    out.put(workers.total())
    go.get()  # stay alive (the marker counts only while this worker lives) until the parent looked
    workers.set_waiting(False)
    out.put(workers.total())


def test_a_worker_that_only_waits_gives_its_share_to_the_others(tmp_path):
    """--n-jobs 2: a worker process with no trial left to start leaves the count (2 -> 1) while it
    lives and waits, so the other worker's last trial may take its cores; back to 2 when it trains."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with LocalWorkers(2, tmp_path) as w:
        out, go = ctx.Queue(), ctx.Queue()
        child = ctx.Process(target=_wait_in_child, args=(w, out, go))
        child.start()
        assert out.get(timeout=30) == 1
        assert w.total() == 1  # the owner sees it too
        go.put("go")
        assert out.get(timeout=30) == 2
        child.join(30)
        assert w.total() == 2
        assert choose_threads(2, 1, SBM_1M, environ={}).threads == 2


def test_threaded_evaluator_records_threads_per_trial(tmp_path):
    import torch

    from search import Evaluation

    before = torch.get_num_threads()
    try:
        with LocalWorkers(2, tmp_path) as w:
            ev = ThreadedEvaluator(lambda params, seed: Evaluation(0.5, 1.0, attrs={"x": 1}), None, w, SBM_1M)
            out = ev({}, 0)
        half = max(1, len(os.sched_getaffinity(0)) // 2)
        assert out.attrs == {"x": 1, "torch_threads": half, "torch_threads_at_end": half, "thread_workers": 2}
        assert torch.get_num_threads() == out.attrs["torch_threads"]
    finally:
        torch.set_num_threads(before)


def test_a_trial_takes_the_cores_of_a_process_that_only_waits(tmp_path, monkeypatch):
    """Two search processes share the cores; when the other has no trial left to start it says so in
    the registry, and the running trial's next epoch takes its cores (refresh_threads)."""
    import torch

    from codesign.runtime import threads
    from search import Evaluation

    cores = threads.available_cores()
    if cores < 2:
        pytest.skip("needs two usable cores")
    other = tmp_path / str(os.getppid())  # a live process standing in for the other search
    other.write_text("1")
    monkeypatch.setattr(threads, "REFRESH_S", 0.0)
    seen = []

    def trial(params, seed):
        seen.append(torch.get_num_threads())
        other.write_text("0")  # the other search now only waits for this trial
        threads.refresh_threads()  # what every training loop calls after an epoch
        seen.append(torch.get_num_threads())
        return Evaluation(0.5, 1.0)

    before = torch.get_num_threads()
    try:
        with LocalWorkers(1, tmp_path) as w:
            out = ThreadedEvaluator(trial, None, w, SBM_1M)({}, 0)
            threads.refresh_threads()  # outside a trial: nothing to follow
        assert seen == [cores // 2, cores] and out.attrs["torch_threads"] == cores // 2
        assert out.attrs["torch_threads_at_end"] == cores
    finally:
        torch.set_num_threads(before)


def test_train_result_records_the_thread_count(capsys, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["train", "--dataset", "sbm:n=300,avg_degree=4,features=8,classes=3", "--method", "dense",
                     "--epochs", "2", "--threads", "1", "--out", str(tmp_path), "--json"]) == 0
    finally:
        torch.set_num_threads(before)
    result = json.loads(capsys.readouterr().out)
    assert result["torch_threads"] == 1 and result["thread_policy"]["threads"] == 1
    assert result["thread_policy"]["source"] == "--threads"
    stored = json.loads((tmp_path / "result.json").read_text())
    assert stored["torch_threads"] == 1 and stored["thread_policy"] == result["thread_policy"]  # the file says it too


@pytest.mark.parametrize("command", ["train", "search", "profile", "calibrate"])
def test_bad_threads_is_one_line_before_anything_runs(command, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main([command, "--threads", "0", *(["--out", str(tmp_path / "x")] if command != "calibrate" else [])])
    assert exc.value.code == 2 and not (tmp_path / "x").exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--threads must be a whole number from 1 to 1024, got '0'" in err


def test_a_search_worker_holds_no_semaphore_a_stop_could_leak(tmp_path):
    """A fork-server worker that builds a progress bar and is then stopped without clean-up leaves no
    semaphore to the resource tracker (its warning broke the one-line Ctrl-C message)."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp, os
        def child():
            from codesign.pipelines.graph_search import init_search_worker
            from tqdm import tqdm
            init_search_worker(1)
            tqdm(total=1, disable=True)
            os._exit(0)  # stopped: no finalizers run
        if __name__ == "__main__":
            p = mp.get_context("forkserver").Process(target=child); p.start(); p.join()
            assert p.exitcode == 0
    """))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 0, run.stderr
    assert "leaked semaphore" not in run.stderr and run.stderr.strip() == ""
