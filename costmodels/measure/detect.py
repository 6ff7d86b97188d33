"""Match the machine a meter sees to a device profile (for ``--device-profile auto``).

GPU: the NVML device name is matched against patterns of the built-in profiles (``H100`` ->
``h100``, ...). CPU: ``cloud-cpu-2core`` when the CPU is an AMD EPYC slice with 2 usable cores
(this project's development machine). A calibrated copy (``calibrated/<name>``) wins over the
shipped profile when one exists. No match is a one-line error asking for ``--device-profile``.
"""

from __future__ import annotations

import re

from costmodels.errors import MeasurementError
from costmodels.profiles import list_profiles

GPU_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H200", "h200"),
    (r"H100", "h100"),
    (r"A100", "a100-80gb"),
    (r"V100", "v100"),
    (r"4090", "rtx-4090"),
    (r"Orin", "jetson-agx-orin"),
)


def match_profile(device_name: str, *, kind: str, cores: int | None = None,
                  prefer_calibrated: bool = True, available: list[str] | None = None) -> str:
    """The profile name for ``device_name`` (``kind`` = ``gpu`` or ``cpu``), or raise."""
    names = available if available is not None else list_profiles()
    base: str | None = None
    if kind == "gpu":
        for pattern, name in GPU_PATTERNS:
            if re.search(pattern, device_name, re.IGNORECASE):
                base = name
                break
    elif "EPYC" in device_name.upper() and cores == 2:
        base = "cloud-cpu-2core"
    if base is None or base not in names:
        raise MeasurementError(
            f"no device profile matches this {kind} ({device_name!r}"
            f"{'' if cores is None else f', {cores} cores'}); pass --device-profile NAME "
            "(list them with `codesign devices`)"
        )
    calibrated = f"calibrated/{base}"
    return calibrated if prefer_calibrated and calibrated in names else base
