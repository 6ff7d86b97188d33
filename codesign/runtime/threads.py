"""Thread policy, in one place: how many torch threads a run takes, and that waiting threads sleep.

Three inputs decide the torch intra-op thread count of a run (:func:`choose_threads`):

* the cores this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``);
* the workers sharing them (``--n-jobs`` workers, and other ``codesign search`` processes on this
  machine, counted by :class:`LocalWorkers`): workers x threads <= cores;
* the workload's size in FLOPs per training epoch (``codesign.graphs.epoch_flops``): a thread is worth it only
  for every ``FLOPS_PER_THREAD`` of work. With dense features Cora (0.38 GFLOP/epoch) trained 1.3-1.4x
  faster on two threads than on one on a quiet 2-core AMD EPYC (measured 2026-11-29); its bag-of-words
  features now train as CSR (``codesign.graphs.models.sparse_features``: 1.3% non-zero), which leaves
  ~0.01 GFLOP/epoch of small kernels, and it takes one thread (GEBT run: 0.95 s on one thread vs
  1.1-1.3 s on two, under load; issue 22), as does any graph below 0.3 GFLOP/epoch; the 10^6-node SBM
  graph (14.5 GFLOP/epoch, dense features) takes every core it may use.

During a search trial :func:`refresh_threads` (called by every training loop after an epoch, at most
every ``REFRESH_S``) re-chooses the count when the training workers on this machine change: a search
process with no trial left to start marks itself idle (``LocalWorkers.set_training``), and the last
trials of the others take its cores.

``--threads N`` overrides all of that; so does ``OMP_NUM_THREADS`` when the user set it (its first level: a
whole number from 1 to ``THREADS_MAX``, else refused in one line).

Waiting OpenMP threads spin by default (GNU OpenMP busy-waits before sleeping), which costs a run
beside any other CPU-bound job about 10x its time. :func:`prepare_environment` puts
``OMP_WAIT_POLICY=PASSIVE`` into the environment before torch starts OpenMP (the CLI calls it first
thing; child processes inherit it), unless the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``.
Nothing here imports torch at module level.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from costmodels.errors import CodesignError

FLOPS_PER_THREAD = 1.5e8
"""Work per training epoch (FLOPs) that pays for one more thread (see the module docstring)."""
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
"""If the user set one of these, the wait policy is theirs and left alone."""
_MARK = "CODESIGN_SET_OMP_WAIT_POLICY"  # tells children the PASSIVE policy came from us, not the user


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def prepare_environment(environ: MutableMapping[str, str] | None = None) -> str:
    """Make waiting OpenMP threads sleep: set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose.

    Must run before torch initialises OpenMP (the CLI's ``main`` does it before any handler imports
    torch); processes started afterwards inherit it. Returns the wait policy in words.
    """
    env = os.environ if environ is None else environ
    if env.get(_MARK) == "1":
        return "PASSIVE (set by codesign)"
    user = [k for k in WAIT_VARIABLES if k in env]
    if user:
        return "user's " + ", ".join(f"{k}={env[k]}" for k in user)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    env[_MARK] = "1"
    return "PASSIVE (set by codesign)"


@dataclass(frozen=True)
class ThreadPolicy:
    """The thread count a run uses and why (recorded in every result via :meth:`to_dict`)."""

    threads: int
    interop_threads: int
    cores: int
    workers: int
    workload_flops: float | None
    source: str  # "--threads", "OMP_NUM_THREADS" or "auto"
    reason: str
    wait_policy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


THREADS_MAX = 1024
"""Most torch threads a run may ask for (``--threads``, ``OMP_NUM_THREADS``): OpenMP aborts (a segfault, no
message) when asked for ~10^5 threads."""


def user_omp_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """The user's ``OMP_NUM_THREADS`` (its first, outer level) as a thread count; None when unset or empty.
    Anything but a whole number from 1 to :data:`THREADS_MAX` is a :class:`CodesignError` naming the value
    and the fix (the CLI checks it before torch starts OpenMP)."""
    env = os.environ if environ is None else environ
    omp = env.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if not omp:
        return None
    try:
        n = int(omp)
    except ValueError:
        n = 0
    if not 1 <= n <= THREADS_MAX:
        raise CodesignError(f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']!r} is not a whole number from 1 to "
                            f"{THREADS_MAX}; unset it or set it to e.g. 1")
    return n


def choose_threads(cores: int, workers: int = 1, workload_flops: float | None = None,
                   explicit: int | None = None, environ: Mapping[str, str] | None = None) -> ThreadPolicy:
    """The thread count for one worker (pure: no torch, no side effects; see the module docstring)."""
    env = os.environ if environ is None else environ
    cores, workers = max(1, int(cores)), max(1, int(workers))
    share = max(1, cores // workers)
    if explicit is not None:
        if explicit < 1:
            raise CodesignError(f"--threads {explicit}: must be at least 1 (or leave it out for the automatic choice)")
        over = " (more than this worker's share: cores are oversubscribed)" if explicit > share else ""
        return ThreadPolicy(explicit, min(explicit, share), cores, workers, workload_flops, "--threads",
                            f"--threads {explicit}{over}")
    n = user_omp_threads(env)
    if n is not None:
        return ThreadPolicy(n, min(n, share), cores, workers, workload_flops, "OMP_NUM_THREADS",
                            f"the user's OMP_NUM_THREADS={n}")
    threads, why = share, f"{cores} cores / {workers} worker(s)"
    if workload_flops is not None:
        worth = max(1, int(workload_flops // FLOPS_PER_THREAD))
        if worth < share:
            threads = worth
            why += (f"; {workload_flops / 1e9:.2g} GFLOP/epoch pays for {worth} thread(s) "
                    f"(one per {FLOPS_PER_THREAD / 1e9:g} GFLOP)")
    return ThreadPolicy(threads, threads, cores, workers, workload_flops, "auto", why)


_INTEROP_SET = [False]


def apply(policy: ThreadPolicy) -> ThreadPolicy:
    """Give torch the policy's thread counts (intra-op always; inter-op once, before it is in use)."""
    import torch

    torch.set_num_threads(policy.threads)
    if not _INTEROP_SET[0]:
        _INTEROP_SET[0] = True
        try:  # allowed only before any inter-op parallel work started; otherwise keep torch's
            torch.set_num_interop_threads(policy.interop_threads)
        except RuntimeError:
            pass
    return policy


def configure(explicit: int | None = None, *, workers: int = 1, workload_flops: float | None = None,
              cores: int | None = None) -> ThreadPolicy:
    """Choose (:func:`choose_threads`) and apply (:func:`apply`) the policy for this process."""
    wait = prepare_environment()
    policy = choose_threads(available_cores() if cores is None else cores, workers, workload_flops, explicit)
    return apply(ThreadPolicy(**{**policy.to_dict(), "wait_policy": wait}))


class LocalWorkers:
    """Search workers on this machine: each ``codesign search`` process registers its ``--n-jobs``
    here (a file per pid in a per-user folder) so processes sharing a study split the cores.

    ``with LocalWorkers(n_jobs) as w: w.total()`` counts the workers of every live registered process.
    """

    def __init__(self, n_jobs: int, folder: str | os.PathLike[str] | None = None) -> None:
        self.n_jobs = max(1, int(n_jobs))
        self.training = self.n_jobs  # of them, training now (see set_training)
        default = Path(tempfile.gettempdir()) / f"codesign-workers-{os.getuid() if hasattr(os, 'getuid') else 0}"
        self.folder = Path(folder or os.environ.get("CODESIGN_WORKER_DIR") or default)
        self.owner = os.getpid()  # the registering process; its worker processes count under its file
        self.file = self.folder / str(self.owner)

    def __enter__(self) -> LocalWorkers:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:  # an unwritable temp folder: count this process only
            pass
        self.set_training(True)
        return self

    def set_training(self, training: bool) -> None:
        """Say whether this process's workers are training (False: it only waits for other processes'
        last trials, so their runs may take its cores; see :func:`refresh_threads`)."""
        self.training = self.n_jobs if training else 0
        try:
            self.file.write_text(str(self.training))
        except OSError:
            pass

    def set_waiting(self, idle: bool) -> None:
        """A search loop's ``waiting`` callback (``search.study``): in the registering process, the same
        as ``set_training(not idle)``; in one of its ``--n-jobs`` worker processes, a marker file
        ``<owner>.idle.<pid>`` takes that one worker out of the owner's count while it only waits, so
        the last trial of the other worker takes its cores."""
        if os.getpid() == self.owner:
            self.set_training(not idle)
            return
        marker = self.folder / f"{self.owner}.idle.{os.getpid()}"
        try:
            if idle:
                marker.write_text("1")
            else:
                marker.unlink(missing_ok=True)
        except OSError:
            pass

    def __exit__(self, *exc: object) -> None:
        try:
            self.file.unlink()
        except OSError:
            pass

    def total(self) -> int:
        """Training workers of all live registered processes (at least one: the caller's). Called in a
        worker process of the registering one (``--n-jobs`` > 1), the registration it finds under the
        owner's pid is its own: the count is then the real number of workers, not twice it."""
        total, mine = 0, False
        idle = self._idle_workers()
        for f in self.folder.glob("[0-9]*") if self.folder.is_dir() else []:
            try:
                pid, n = int(f.name), int(f.read_text().strip() or 1)
                if pid not in (os.getpid(), self.owner):
                    os.kill(pid, 0)  # raises if that process is gone
            except (ValueError, OSError):
                try:  # a dead process's file: tidy it
                    if f.name.isdigit() and int(f.name) not in (os.getpid(), self.owner):
                        f.unlink()
                except OSError:
                    pass
                continue
            mine = mine or pid == self.owner
            total += max(0, n - idle.get(pid, 0))
        return max(1, total if mine else total + self.training)

    def _idle_workers(self) -> dict[int, int]:
        """Per registering pid, its live worker processes that said they only wait (``set_waiting``)."""
        idle: dict[int, int] = {}
        for f in self.folder.glob("[0-9]*.idle.[0-9]*") if self.folder.is_dir() else []:
            try:
                owner, _, worker = f.name.split(".")
                os.kill(int(worker), 0)
            except (ValueError, OSError):
                try:
                    f.unlink()
                except OSError:
                    pass
                continue
            idle[int(owner)] = idle.get(int(owner), 0) + 1
        return idle


@dataclass(frozen=True)
class ThreadedEvaluator:
    """Wraps a search evaluator: before each trial, re-choose this worker's threads (other search
    processes may have started or ended) and record them in the trial (``torch_threads``); during
    the trial, :func:`refresh_threads` follows the registry (``torch_threads_at_end``)."""

    inner: Any
    explicit: int | None
    workers: LocalWorkers
    workload_flops: float | None = None

    def __call__(self, params: dict[str, Any], seed: int) -> Any:
        import dataclasses

        policy = configure(self.explicit, workers=self.workers.total(), workload_flops=self.workload_flops)
        follow = _FOLLOW[0] = _Follow(self, policy.threads)
        try:
            ev = self.inner(params, seed)
        finally:
            _FOLLOW[0] = None
        return dataclasses.replace(ev, attrs={**dict(ev.attrs), "torch_threads": policy.threads,
                                              "torch_threads_at_end": follow.threads,
                                              "thread_workers": policy.workers})


@dataclass
class _Follow:
    """The trial in progress in this process: whose policy to re-apply, its threads, when last checked."""

    evaluator: ThreadedEvaluator
    threads: int
    checked: float = 0.0


_FOLLOW: list[_Follow | None] = [None]
REFRESH_S = 0.5
"""Seconds between two looks at the worker registry during a trial (a look reads a few small files)."""


def refresh_threads() -> None:
    """Between epochs of a search trial: re-choose its threads when the training workers on this
    machine changed (a process that has no trial left to start stops counting, so the last trials
    take its cores). Outside a search trial, and within ``REFRESH_S`` of the last look, does nothing."""
    follow = _FOLLOW[0]
    if follow is None:
        return
    import time

    now = time.monotonic()
    if now - follow.checked < REFRESH_S:
        return
    follow.checked = now
    ev = follow.evaluator
    policy = choose_threads(available_cores(), ev.workers.total(), ev.workload_flops, ev.explicit)
    if policy.threads != follow.threads:
        import torch

        torch.set_num_threads(policy.threads)
        follow.threads = policy.threads
