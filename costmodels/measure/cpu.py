"""Host (CPU) meter: wall time, process CPU time, peak RSS, and RAPL energy or an estimate.

Energy, in order of preference:

1. ``rapl``: the package domains under ``/sys/class/powercap/intel-rapl:N/energy_uj`` (µJ since
   boot; AMD exposes the same interface); a top-level ``psys`` domain (the whole platform, packages
   included) is left out. The counter wraps at ``max_energy_range_uj``:
   ``ΔE = e1 - e0`` if ``e1 >= e0`` else ``e1 + max_range - e0``; domains are summed.
2. ``estimated`` (when a :class:`CPUPowerModel` is given, usually from the device profile):
   ``E = P_static * wall_s + (P_max - P_static) / cores * cpu_time_s``, i.e. static power for the
   whole window plus a per-busy-core dynamic share (``cpu_time_s`` counts every thread of the
   process). It is labelled ``estimated`` and carries the flag ``estimated-from:<source>``.
3. ``none``: ``energy_j`` is ``None`` (never a silent 0 J).

RAPL is often unreadable (VMs, containers, non-root since CVE-2020-8694): then it is skipped.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

from .base import Measurement, Meter, Window, cpu_count

POWERCAP_ROOT = "/sys/class/powercap"


@dataclass(frozen=True)
class CPUPowerModel:
    """A two-number CPU power model for estimated energy (both in watts), with its source."""

    static_power_w: float
    max_power_w: float
    cores: int
    source: str

    def energy_j(self, wall_s: float, cpu_time_s: float) -> float:
        """``P_static * wall + (P_max - P_static) / cores * cpu_time`` (see module docstring)."""
        dyn_per_core = max(0.0, self.max_power_w - self.static_power_w) / max(1, self.cores)
        return self.static_power_w * wall_s + dyn_per_core * cpu_time_s


class RaplReader:
    """Sums the package-level RAPL energy counters that are readable; empty when none are."""

    def __init__(self, root: str = POWERCAP_ROOT) -> None:
        self.domains: list[tuple[str, int]] = []
        for d in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
            if os.path.basename(d).count(":") != 1:  # sub-domains (core, uncore, dram) double count
                continue
            if not _domain_name(d).startswith("package"):  # psys (the platform) contains the packages
                continue
            path = os.path.join(d, "energy_uj")
            try:
                with open(path) as fh:
                    int(fh.read())
                with open(os.path.join(d, "max_energy_range_uj")) as fh:
                    max_range = int(fh.read())
            except (OSError, ValueError):
                continue
            self.domains.append((path, max_range))

    @property
    def available(self) -> bool:
        return bool(self.domains)

    def read_uj(self) -> list[int]:
        out = []
        for path, _ in self.domains:
            with open(path) as fh:
                out.append(int(fh.read()))
        return out

    def delta_j(self, start: list[int], end: list[int]) -> float:
        total = 0
        for (_, max_range), e0, e1 in zip(self.domains, start, end):
            total += e1 - e0 if e1 >= e0 else e1 + max_range - e0
        return total / 1e6


class CPUMeter(Meter):
    """Meter for work on the host CPU.

    ``power_model`` (optional) gives estimated energy where RAPL is unreadable; without it and
    without RAPL, energy is ``None`` with source ``none``.
    """

    def __init__(self, power_model: CPUPowerModel | None = None, *, rapl_root: str = POWERCAP_ROOT,
                 device_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.power_model = power_model
        self.rapl = RaplReader(rapl_root)
        self._name = device_name or cpu_model_name()

    @property
    def device_name(self) -> str:
        return self._name

    @property
    def can_measure_energy(self) -> bool:
        return self.rapl.available

    @property
    def energy_source(self) -> str:
        if self.rapl.available:
            return "rapl"
        return "estimated" if self.power_model is not None else "none"

    def _begin(self, w: Window) -> None:
        if self.rapl.available:
            w.state["rapl0"] = self.rapl.read_uj()

    def _end(self, w: Window, common: dict[str, Any]) -> Measurement:
        flags = list(common.pop("flags"))
        wall, cpu = common["wall_s"], common["cpu_time_s"]
        energy: float | None = None
        idle: float | None = None
        source = self.energy_source
        if source == "rapl":
            energy = self.rapl.delta_j(w.state["rapl0"], self.rapl.read_uj())
            if self.power_model is not None:
                idle = self.power_model.static_power_w
        elif source == "estimated":
            assert self.power_model is not None
            energy = self.power_model.energy_j(wall, cpu)
            idle = self.power_model.static_power_w
            flags.append(f"estimated-from:{self.power_model.source}")
        above = None if energy is None or idle is None else max(0.0, energy - idle * wall)
        avg = None if energy is None or wall <= 0 else energy / wall
        return Measurement(
            energy_source=source, energy_j=energy, energy_above_idle_j=above, idle_power_w=idle,
            avg_power_w=avg, device_name=self._name, flags=tuple(flags), **common,
        )


def _domain_name(domain: str) -> str:
    """A powercap domain's ``name`` (``package-0``, ``psys``, ...); ``package`` where it has none."""
    try:
        with open(os.path.join(domain, "name")) as fh:
            return fh.read().strip()
    except OSError:
        return "package"


def cpu_model_name() -> str:
    """The CPU model string from /proc/cpuinfo (``cpu`` when unknown), e.g. ``AMD EPYC``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def host_summary() -> dict[str, Any]:
    """CPU model and usable core count (for provenance and profile auto-detection)."""
    return {"cpu_model": cpu_model_name(), "cores": cpu_count()}
