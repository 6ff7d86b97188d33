"""Match the machine a meter sees to a device profile (for ``--device-profile auto``).

GPU: the NVML device name is matched against patterns of the built-in profiles (``H100`` ->
``h100``, ...). CPU: ``cloud-cpu-2core`` when the CPU is an AMD EPYC slice with 2 usable cores
(this project's development machine). A calibrated copy wins over the shipped profile when one
exists: the user's (``user_profile_dir()/calibrated/<name>.toml``, what ``codesign calibrate``
writes) first, then a shipped ``calibrated/<name>``.

:func:`detect_profile` goes on where :func:`match_profile` stops: a CPU that no shipped profile
matches gets a profile built for it (``costmodels.measure.host``: measured GEMM rate, bandwidth and
per-op overhead, labelled uncalibrated), or the user's calibrated copy of that one. A GPU with no
match is a one-line error asking for ``--device-profile``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from costmodels.errors import MeasurementError
from costmodels.gpus import gpu_family
from costmodels.profiles import (
    DeviceProfile,
    ResolvedProfile,
    list_profiles,
    resolve_profile,
    user_profile_dir,
)


def match_profile(device_name: str, *, kind: str, cores: int | None = None,
                  prefer_calibrated: bool = True, available: list[str] | None = None) -> str:
    """The profile name for ``device_name`` (``kind`` = ``gpu`` or ``cpu``), or raise."""
    names = available if available is not None else list_profiles()
    base: str | None = None
    if kind == "gpu":
        base = gpu_family(device_name)
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


def user_calibrated_path(name: str) -> Path:
    """Where ``codesign calibrate`` writes the calibrated copy of profile ``name`` (user-writable)."""
    return user_profile_dir() / "calibrated" / f"{name.removeprefix('calibrated/')}.toml"


def detect_profile(device_name: str, *, kind: str, cores: int | None = None, prefer_calibrated: bool = True,
                   build_host: Callable[[], dict[str, Any]] | None = None) -> ResolvedProfile:
    """The profile of this device (``--device-profile auto``): the matched shipped profile (or the
    user's calibrated copy of it), or for a CPU no shipped profile matches, a profile measured on this
    host (or the user's calibrated copy of it). ``build_host`` makes the host profile data (default:
    ``host_cpu_profile()``). Named profiles resolve through ``costmodels.profiles.resolve_profile``."""
    try:
        base = match_profile(device_name, kind=kind, cores=cores, prefer_calibrated=False)
    except MeasurementError:
        if kind != "cpu":
            raise
        from .host import host_cpu_profile, host_profile_name

        base = host_profile_name(device_name, cores)
        mine = user_calibrated_path(base)
        if prefer_calibrated and mine.is_file():
            return ResolvedProfile(f"calibrated/{base}", "calibrated", str(mine), DeviceProfile.from_toml(mine))
        data = build_host() if build_host is not None else host_cpu_profile(cpu_model=device_name, cores=cores)
        origin = f"<measured on this host: {data['name']}>"
        return ResolvedProfile(data["name"], "measured-host", "measured on this host, not saved",
                               DeviceProfile.from_dict(data, origin))
    mine = user_calibrated_path(base)
    if prefer_calibrated and mine.is_file():
        return ResolvedProfile(f"calibrated/{base}", "calibrated", str(mine), DeviceProfile.from_toml(mine))
    return resolve_profile(match_profile(device_name, kind=kind, cores=cores, prefer_calibrated=prefer_calibrated))
