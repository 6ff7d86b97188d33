"""Is this machine quiet enough to calibrate on? Load readings and the rule that judges them.

A calibration fits efficiency factors to measured epoch times; measured on a busy machine every
factor absorbs the waiting (CPU time too: caches, memory bandwidth and SMT siblings are shared), and
the profile comes out slow for the quiet machine it will be used on (issue #20: +98% to +156%). So
``codesign calibrate`` reads the load before and during its sweep and stops when any reading is over
its threshold (``--allow-busy`` fits anyway and marks the profile's ``[calibration]``).

Readings (:class:`LoadReading`), all plain Python (``os``, ``/proc``), no torch:

* ``busy_fraction``: the CPU time other processes used over a short window (``/proc/stat``: every
  column but idle, iowait and steal, less this process's own CPU time), as a fraction of all CPUs; it
  reads the machine *now*, where the load average lags by a minute (right after a sweep of our own it
  still reads ~0.5-0.8 on a quiet 2-core VM). Judged where the kernel reports it;
* ``load_per_core`` = (1-minute load average - the sweep's own threads) / usable cores
  (``os.sched_getaffinity``); the load average counts runnable and uninterruptible tasks. Judged only
  where no ``busy_fraction`` can be read (not Linux);
* ``steal_fraction``: CPU time the hypervisor gave to other guests over a short window, from the
  ``steal`` column of ``/proc/stat`` (None where the kernel reports none);
* per measurement (:func:`judge_measurements`): ``cpu_time / wall`` of one-thread epochs (below
  :data:`MIN_CPU_PER_WALL` the process waited for a CPU) and the repeat spread ``IQR / median``.

Thresholds (:class:`LoadLimits`, one place): others' load per core 0.25 (busy fraction or load
average), steal 2%, CPU / wall 0.90 (one thread), spread 15%. A quiet 2-core cloud VM reads load
~0.0-0.1 per core, no steal, CPU / wall ~0.98, spread a few per cent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import CodesignError

PROC_STAT = "/proc/stat"


@dataclass(frozen=True)
class LoadLimits:
    """Above any of these the machine is too busy to calibrate on."""

    load_per_core: float = 0.25
    steal_fraction: float = 0.02
    cpu_per_wall: float = 0.90  # one-thread measurements only
    spread: float = 0.15  # IQR / median of one workload's repeats


LIMITS = LoadLimits()


@dataclass(frozen=True)
class LoadReading:
    """One reading of the machine's load (see the module docstring)."""

    load_avg_1m: float
    usable_cores: int
    own_threads: int
    steal_fraction: float | None
    window_s: float
    busy_fraction: float | None = None  # others' CPU use over the window, fraction of all CPUs (None: unknown)

    @property
    def load_per_core(self) -> float:
        return max(self.load_avg_1m - self.own_threads, 0.0) / max(self.usable_cores, 1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "load_per_core": self.load_per_core}

    def summary(self) -> str:
        steal = "n/a" if self.steal_fraction is None else f"{self.steal_fraction:.1%}"
        busy = "" if self.busy_fraction is None else f"CPUs {self.busy_fraction:.0%} busy besides us over " \
                                                      f"{self.window_s:g} s, "
        return (f"{busy}load average {self.load_avg_1m:.2f} on {self.usable_cores} usable cores "
                f"({self.load_per_core:.2f} per core besides our {self.own_threads} thread(s)), steal {steal}")


def _cpu_times(path: str = PROC_STAT) -> tuple[float, float, float] | None:
    """(total, steal, idle + iowait) jiffies of the ``cpu`` line, None without ``/proc/stat`` or a steal column."""
    try:
        with open(path) as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    values = [float(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal (guest is in user)
    return sum(values[:8]), values[7], values[3] + values[4]


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def read_load(own_threads: int = 0, window_s: float = 0.5) -> LoadReading:
    """Read the load now: load average, usable cores, and over ``window_s`` seconds the steal and the CPU
    time other processes used."""
    own, first = _own_cpu_s(), _cpu_times()
    time.sleep(window_s if first is not None else 0.0)
    second, own = _cpu_times(), _own_cpu_s() - own
    steal = busy = None
    if first is not None and second is not None and second[0] > first[0]:
        total = second[0] - first[0]
        steal = (second[1] - first[1]) / total
        used = total - (second[2] - first[2]) - (second[1] - first[1])
        busy = max(used - own * os.sysconf("SC_CLK_TCK"), 0.0) / total
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return LoadReading(load, usable_cores(), own_threads, steal, window_s, busy)


def judge(reading: LoadReading, limits: LoadLimits = LIMITS) -> list[str]:
    """Why ``reading`` is too busy to calibrate on (empty: quiet enough)."""
    why = []
    if reading.busy_fraction is not None:
        if reading.busy_fraction > limits.load_per_core:
            why.append(f"CPUs {reading.busy_fraction:.0%} busy besides us over {reading.window_s:g} s "
                       f"(load average {reading.load_avg_1m:.2f} on {reading.usable_cores} cores) > "
                       f"{limits.load_per_core:.0%}")
    elif reading.load_per_core > limits.load_per_core:
        why.append(f"load {reading.load_per_core:.2f} per core besides ours (load average {reading.load_avg_1m:.2f}"
                   f" on {reading.usable_cores} cores) > {limits.load_per_core:g}")
    if reading.steal_fraction is not None and reading.steal_fraction > limits.steal_fraction:
        why.append(f"steal time {reading.steal_fraction:.1%} > {limits.steal_fraction:.0%}")
    return why


@dataclass(frozen=True)
class MeasurementLoad:
    """What one measured workload says about the machine: ``cpu_per_wall`` (one thread) and spread."""

    label: str
    wall_s: float
    cpu_time_s: float
    wall_iqr_s: float


def judge_measurements(rows: Sequence[MeasurementLoad], threads: int, limits: LoadLimits = LIMITS,
                       whole: tuple[float, float] | None = None) -> list[str]:
    """Why these measurements were taken on a busy machine: a one-thread epoch whose CPU time falls
    below ``cpu_per_wall`` of its wall time (it waited for a CPU), or repeats spread more than
    ``spread`` (IQR / median) in the median workload: one workload's spread alone does not say the
    machine is busy (a quiet 2-core VM measured 29% on one GEBT search epoch, whose mask updates vary,
    while every other workload spread a few per cent). The CPU/wall rule reports the worst workload.
    ``whole``: ``(wall, CPU time of the measuring thread)`` of the whole one-thread sweep, gaps between
    windows included, judged by the same rule: epochs of a few ms can each fit inside the scheduler's
    time slice beside a busy process, so that every window reads ~1.0 while the thread waits between
    them (a sweep sharing its CPU with a spinning process was judged quiet so, now and then)."""
    why = []
    if threads == 1:
        ratios = [(r.cpu_time_s / r.wall_s, r.label) for r in rows if r.wall_s > 0]
        if whole is not None and whole[0] > 0:
            ratios.append((whole[1] / whole[0], f"the whole sweep, {whole[0]:.1f} s"))
        if ratios:
            worst, label = min(ratios)
            if worst < limits.cpu_per_wall:
                why.append(f"CPU time / wall {worst:.2f} < {limits.cpu_per_wall:g} ({label}: the one thread waited "
                           "for a CPU)")
    spreads = sorted((r.wall_iqr_s / r.wall_s, r.label) for r in rows if r.wall_s > 0)
    if spreads:
        typical, label = spreads[(len(spreads) - 1) // 2]  # the median workload (the lower one of an even count)
        label = f"median of {len(spreads)} workloads, e.g. {label}" if len(spreads) > 1 else label
        if typical > limits.spread:
            why.append(f"repeat spread (IQR / median) {typical:.0%} > {limits.spread:.0%} ({label})")
    return why


class MachineBusy(CodesignError):
    """The machine is too busy to calibrate on (one line: why, and how to proceed)."""


def busy_error(when: str, why: Sequence[str]) -> MachineBusy:
    return MachineBusy(f"machine too busy to calibrate ({when}): {'; '.join(why)}; calibrate on a quiet machine "
                       "(stop other jobs; `uptime` shows the load average), or pass --allow-busy to fit anyway "
                       "(the profile's [calibration] then says so)")
