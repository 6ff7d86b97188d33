"""A fake NVML module (same function names as ``pynvml``) driven by a fake clock, for meter tests."""

from __future__ import annotations

import math


class FakeClock:
    """A clock that moves only when told to (``advance``), so energy windows are exact."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class FakeNVMLError(Exception):
    pass


class FakeNVML:
    """One GPU drawing ``power_w`` (a number or a function of time).

    The energy counter (mJ) is the exact integral of power, updated only every ``period_s``
    (like the real one); ``has_counter=False`` makes it raise NOT_SUPPORTED; ``present=False``
    makes ``nvmlInit`` fail like a machine without the driver.
    """

    NVMLError = FakeNVMLError
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, clock: FakeClock, power_w: float = 200.0, *, has_counter: bool = True,
                 period_s: float = 0.1, present: bool = True, start_mj: int = 5_000_000) -> None:
        self.clock = clock
        self.power = power_w
        self.has_counter = has_counter
        self.period_s = period_s
        self.present = present
        self.start_mj = start_mj
        self.t0 = clock()
        self.shutdown_called = False

    def nvmlInit(self) -> None:
        if not self.present:
            raise FakeNVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdown_called = True

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetName(self, h: str) -> bytes:
        return b"Fake H100 80GB HBM3"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetEnforcedPowerLimit(self, h: str) -> int:
        return 700_000

    def nvmlDeviceGetClockInfo(self, h: str, kind: int) -> int:
        return 1980 if kind == self.NVML_CLOCK_SM else 2619

    def power_at(self, t: float) -> float:
        return self.power(t) if callable(self.power) else float(self.power)

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:
        return int(round(self.power_at(self.clock()) * 1000))

    def nvmlDeviceGetTotalEnergyConsumption(self, h: str) -> int:
        if not self.has_counter:
            raise FakeNVMLError("Not Supported")
        # Quantised to the update period; only constant power is integrated exactly here.
        t = math.floor((self.clock() - self.t0) / self.period_s + 1e-9) * self.period_s
        return self.start_mj + int(round(self.power_at(self.t0) * t * 1000))
