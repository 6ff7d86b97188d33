"""Device hooks for PyTorch CUDA: synchronise, CUDA-event timing, peak allocated memory.

Imported lazily (it imports torch); ``costmodels`` itself stays torch-free.
"""

from __future__ import annotations

from typing import Any

from .base import DeviceHooks


class CudaHooks(DeviceHooks):
    """``torch.cuda.synchronize`` before timestamps, ``torch.cuda.Event`` timing, and
    ``torch.cuda.max_memory_allocated`` as the window's peak device memory."""

    def __init__(self, device: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device if device is not None else "cuda")

    def sync(self) -> None:
        self.torch.cuda.synchronize(self.device)

    def start(self) -> Any:
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        return ev

    def elapsed_s(self, token: Any) -> float | None:
        if token is None:
            return None
        end = self.torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        return float(token.elapsed_time(end)) / 1000.0  # elapsed_time is in ms

    def reset_peak_memory(self) -> None:
        self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_bytes(self) -> int | None:
        return int(self.torch.cuda.max_memory_allocated(self.device))


def hooks_for(device: Any) -> DeviceHooks:
    """CUDA hooks for a CUDA torch device, host hooks otherwise."""
    import torch

    dev = torch.device(device)
    return CudaHooks(dev) if dev.type == "cuda" else DeviceHooks()
