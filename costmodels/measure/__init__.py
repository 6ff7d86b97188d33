"""Measured cost: meters that open windows around real work and freeze what they measured.

``make_meter`` picks the meter for this machine: an :class:`NVMLMeter` when NVML sees a GPU, a
:class:`CPUMeter` otherwise (RAPL energy where readable, else energy estimated from a power model,
else none). Asking for measured energy where there is none is a one-line
:class:`~costmodels.errors.MeasurementError`; not asking degrades quietly (one INFO log line).
``detect`` names this machine's profile; ``load`` judges whether the machine is quiet enough to measure.
May import the rest of ``costmodels`` (torch and NVML lazily, inside the meters); never ``codesign`` or
``search``.
"""

from __future__ import annotations

import logging
from typing import Any

from costmodels.errors import MeasurementError

from .base import ENERGY_SOURCES, DeviceHooks, Measurement, Meter, PeakRSS, Window
from .cpu import CPUMeter, CPUPowerModel, RaplReader, cpu_model_name, host_summary
from .nvml import NVMLMeter, trapezoid_j

__all__ = [
    "ENERGY_SOURCES", "CPUMeter", "CPUPowerModel", "DeviceHooks", "Measurement", "MeasurementError",
    "Meter", "NVMLMeter", "PeakRSS", "RaplReader", "Window", "cpu_model_name", "host_summary", "make_meter",
    "trapezoid_j",
]

log = logging.getLogger(__name__)


def make_meter(
    target: str = "auto",
    *,
    require_energy: bool = False,
    power_model: CPUPowerModel | None = None,
    hooks: DeviceHooks | None = None,
    device_index: int = 0,
    nvml: Any = None,
    rapl_root: str = "/sys/class/powercap",
    **nvml_kwargs: Any,
) -> Meter:
    """The meter for ``target`` (``auto``, ``gpu`` or ``cpu``).

    ``auto`` tries NVML and falls back to the CPU meter; ``gpu`` requires NVML.
    ``require_energy=True`` (``--measure-energy``) raises unless energy is measured (NVML or RAPL),
    naming what is missing.
    """
    if target not in ("auto", "gpu", "cpu"):
        raise MeasurementError(f"meter target {target!r} unknown; use auto, gpu or cpu")
    nvml_problem = "NVML meters GPU work only (use --run-on cuda on a GPU machine)"
    if target in ("auto", "gpu"):
        try:
            return NVMLMeter(device_index, nvml=nvml, hooks=hooks, **nvml_kwargs)
        except MeasurementError as exc:
            if target == "gpu":
                raise
            nvml_problem = str(exc).split(";")[0]
            log.info("no GPU energy meter (%s); measuring on the CPU", nvml_problem)
    meter = CPUMeter(power_model, hooks=hooks, rapl_root=rapl_root)
    if require_energy and not meter.can_measure_energy:
        raise MeasurementError(
            f"--measure-energy: this machine has no energy counter: {nvml_problem}, and RAPL is "
            f"unreadable under {rapl_root}; drop --measure-energy to get energy estimated from the "
            "device profile"
        )
    return meter
