"""The measurement window API: a meter opens named windows and closes each into a frozen record.

Contract (every meter follows it)::

    with meter.window("epoch") as w:
        train_one_epoch()
    m = w.measurement            # Measurement, frozen; also meter.measurements[-1]

* The device is synchronised (``hooks.sync()``) before *every* timestamp, so asynchronous work
  queued inside the window is charged to it.
* Every number says where it came from: ``energy_source`` is one of
  ``nvml-counter | power-integration | rapl | estimated | none``; ``energy_j`` is ``None`` exactly
  when the source is ``none``. A window too short for the energy counter is never reported as
  0 J: it falls back to power x time and carries the ``short-window`` flag (see ``nvml.py``).
* ``energy_above_idle_j = max(0, energy_j - idle_power_w * wall_s)`` when idle power is known.

Meters are thin: they only gather numbers. The device layer (CUDA events, peak device memory,
synchronisation) is a :class:`DeviceHooks` object, so tests replace hardware with fakes.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import os
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

EnergySource = Literal["nvml-counter", "power-integration", "rapl", "estimated", "none"]
ENERGY_SOURCES: tuple[str, ...] = ("nvml-counter", "power-integration", "rapl", "estimated", "none")
MEASURED_SOURCES: tuple[str, ...] = ("nvml-counter", "power-integration", "rapl")


@dataclass(frozen=True)
class Measurement:
    """What one window measured. Units are in the names; ``None`` means "not measured here"."""

    name: str
    wall_s: float
    cpu_time_s: float
    energy_source: str
    energy_j: float | None = None
    energy_above_idle_j: float | None = None
    idle_power_w: float | None = None
    avg_power_w: float | None = None
    gpu_time_s: float | None = None
    peak_memory_bytes: int | None = None
    peak_rss_bytes: int | None = None
    device_name: str = "cpu"
    driver_version: str | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: int | None = None
    memory_clock_mhz: int | None = None
    repeats: int = 1
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.energy_source not in ENERGY_SOURCES:
            raise ValueError(f"energy_source {self.energy_source!r} not in {ENERGY_SOURCES}")
        if (self.energy_j is None) != (self.energy_source == "none"):
            raise ValueError("energy_j must be None exactly when energy_source is 'none'")

    @property
    def energy_measured(self) -> bool:
        """True when the energy came from a hardware counter or power sensor (not an estimate)."""
        return self.energy_source in MEASURED_SOURCES

    def per_repeat(self, repeats: int) -> Measurement:
        """This window divided over ``repeats`` identical repetitions of the work inside it.

        Extensive quantities (time, energy) are divided; intensive ones (power, peaks, clocks) kept.
        """
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")

        def div(x: float | None) -> float | None:
            return None if x is None else x / repeats

        return dataclasses.replace(
            self,
            wall_s=self.wall_s / repeats,
            cpu_time_s=self.cpu_time_s / repeats,
            energy_j=div(self.energy_j),
            energy_above_idle_j=div(self.energy_above_idle_j),
            gpu_time_s=div(self.gpu_time_s),
            repeats=self.repeats * repeats,
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["flags"] = list(self.flags)
        return d


class DeviceHooks:
    """The device layer a meter calls: synchronise, time on the device, peak device memory.

    The base class is the host (CPU): synchronisation is a no-op and there is no device timer or
    device memory. ``costmodels.measure.torch_hooks.CudaHooks`` implements them with CUDA events.
    """

    def sync(self) -> None:
        """Block until all queued device work is done (no-op on the CPU)."""

    def start(self) -> Any:
        """Record a device start mark; returns a token for :meth:`elapsed_s`."""
        return None

    def elapsed_s(self, token: Any) -> float | None:
        """Device time since ``token`` (after a sync), or ``None`` without a device timer."""
        return None

    def reset_peak_memory(self) -> None:
        """Start a new peak-device-memory interval."""

    def peak_memory_bytes(self) -> int | None:
        """Peak device memory since the last reset, or ``None`` without a device."""
        return None


class PeakRSS:
    """Peak resident set size of this process within a window.

    Linux: writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM`` (the RSS high-water mark), so
    the value read at the end belongs to the window. Where that is not allowed the process-lifetime
    peak (``getrusage``) is reported and the window is flagged ``rss-lifetime-peak``.
    """

    def __init__(self) -> None:
        self.windowed = False

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.windowed = True
        except OSError:
            self.windowed = False

    def read(self) -> int:
        if self.windowed:
            with contextlib.suppress(OSError), open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        # ru_maxrss is KiB on Linux.
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


@dataclass
class Window:
    """An open window; ``measurement`` is set when it closes."""

    name: str
    t0: float = 0.0
    cpu0: float = 0.0
    device_token: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    measurement: Measurement | None = None


class Meter(abc.ABC):
    """A meter opens windows and closes them into :class:`Measurement` records.

    Subclasses implement :meth:`_begin` (read counters at the start) and :meth:`_end` (read them
    at the end and build the record from the common timing fields passed in).
    """

    def __init__(self, hooks: DeviceHooks | None = None, clock: Callable[[], float] = time.perf_counter):
        self.hooks = hooks or DeviceHooks()
        self.clock = clock
        self.measurements: list[Measurement] = []
        self._rss = PeakRSS()

    @property
    @abc.abstractmethod
    def device_name(self) -> str:
        """Human-readable name of the measured device."""

    @property
    def can_measure_energy(self) -> bool:
        """True when windows carry measured (not estimated) energy."""
        return False

    @abc.abstractmethod
    def _begin(self, w: Window) -> None: ...

    @abc.abstractmethod
    def _end(self, w: Window, common: dict[str, Any]) -> Measurement: ...

    def begin_window(self, name: str) -> Window:
        """Open a window: synchronise, then take every start reading."""
        w = Window(name)
        self.hooks.sync()
        self.hooks.reset_peak_memory()
        self._rss.reset()
        self._begin(w)
        w.device_token = self.hooks.start()
        w.cpu0 = time.process_time()
        w.t0 = self.clock()
        return w

    def end_window(self, w: Window) -> Measurement:
        """Close a window: synchronise, then read everything and freeze the record."""
        self.hooks.sync()
        t1 = self.clock()
        cpu1 = time.process_time()
        common: dict[str, Any] = {
            "name": w.name,
            "wall_s": t1 - w.t0,
            "cpu_time_s": cpu1 - w.cpu0,
            "gpu_time_s": self.hooks.elapsed_s(w.device_token),
            "peak_memory_bytes": self.hooks.peak_memory_bytes(),
            "peak_rss_bytes": self._rss.read(),
        }
        flags = [] if self._rss.windowed else ["rss-lifetime-peak"]
        common["flags"] = tuple(flags)
        m = self._end(w, common)
        w.measurement = m
        self.measurements.append(m)
        return m

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[Window]:
        """``with meter.window("epoch") as w: ...``; afterwards ``w.measurement`` is set."""
        w = self.begin_window(name)
        yield w
        self.end_window(w)

    def measure(self, fn: Callable[[], Any], name: str, *, min_window_s: float = 0.0,
                max_repeats: int = 1000) -> Measurement:
        """Run ``fn`` once, or repeatedly until the window lasts ``min_window_s``, and return the
        per-call measurement (the window divided by the repeat count, ``repeats`` set).

        This is how short work is measured with a coarse counter: repeat it, then divide.
        """
        w = self.begin_window(name)
        n = 0
        while True:
            fn()
            n += 1
            self.hooks.sync()
            if n >= max_repeats or self.clock() - w.t0 >= min_window_s:
                break
        m = self.end_window(w)
        self.measurements.pop()
        m = m.per_repeat(n)
        self.measurements.append(m)
        return m

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for meters holding nothing
        """Release the device (no-op by default)."""


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
