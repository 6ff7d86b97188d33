"""Which shipped GPU profile a GPU name belongs to: ``GPU_PATTERNS`` and :func:`gpu_family`.

A name is an NVML / torch device name (``NVIDIA H100 80GB HBM3``) or a profile's own name and display
name (``h200-2026-12-04 NVIDIA H200 SXM 141GB (calibrated)``); the first pattern that matches names the
shipped profile of that GPU. ``codesign profile`` and ``codesign calibrate`` compare the two to refuse a
profile of another GPU (``costmodels.profiles.check_calibration_target``); ``--device-profile auto``
detects by it (``costmodels.measure.detect``).
"""

from __future__ import annotations

import re

# GPU names (as torch/NVML report them) -> the profile that describes that GPU; first match wins.
GPU_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H200", "h200"),
    (r"H100", "h100"),
    (r"A100", "a100-80gb"),
    (r"V100", "v100"),
    (r"4090", "rtx-4090"),
    (r"Orin", "jetson-agx-orin"),
)


def gpu_family(name: str) -> str | None:
    """The shipped profile of the GPU ``name`` names (``GPU_PATTERNS``), or None when no pattern matches."""
    return next((profile for pattern, profile in GPU_PATTERNS if re.search(pattern, name, re.IGNORECASE)), None)
