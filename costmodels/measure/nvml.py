"""NVIDIA GPU meter through NVML (``nvidia-ml-py``, import name ``pynvml``).

Energy sources, in order (costs.md §2; Zeus):

* ``nvml-counter``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load, Volta+).
  ``E = (c1 - c0) / 1000`` J. The counter updates only every ~20-100 ms, so a window shorter than
  ``counter_period_s`` (or one whose counter did not move) is *not* reported from the counter:
  it falls back to power x time, ``E = mean(P_begin, P_end) * wall_s``, with source
  ``power-integration`` and the flag ``short-window``. Use :meth:`Meter.measure` with
  ``min_window_s`` to repeat short work instead.
* ``power-integration`` (no counter, pre-Volta): a sampling thread reads
  ``nvmlDeviceGetPowerUsage`` (mW) every ``sample_period_s``; energy is the trapezoid rule over the
  samples ``E = Σ (t_{k+1} - t_k) (P_k + P_{k+1}) / 2``, bracketed by samples at the window's start
  and end. On Ampere+ the reading is itself a 1 s average, so windows should be seconds long.
* Idle power ``P_idle`` is measured once when the meter opens (mean of power samples over
  ``idle_s`` with the GPU idle) and ``energy_above_idle_j = max(0, E - P_idle * wall_s)``.

Missing NVML (library not found, no driver, no device) raises :class:`MeasurementError` with what
is missing and what to do; :func:`costmodels.measure.make_meter` turns that into a quiet CPU
fallback unless measured energy was asked for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from costmodels.errors import MeasurementError

from .base import DeviceHooks, Measurement, Meter, Window

COUNTER_PERIOD_S = 0.1  # costs.md §2: the energy counter updates every ~20-100 ms
POWER_AVERAGE_S = 1.0  # costs.md §2: nvmlDeviceGetPowerUsage is a 1 s average on Ampere+ (not GA100)


def load_nvml() -> Any:
    """Import ``pynvml`` or raise a one-line :class:`MeasurementError` saying how to get it."""
    try:
        import pynvml
    except ImportError:
        raise MeasurementError(
            "NVML is not installed (import pynvml failed); `pip install nvidia-ml-py` on a machine with "
            "an NVIDIA driver, or run without --measure-energy"
        ) from None
    return pynvml


class NVMLMeter(Meter):
    """Meter for one NVIDIA GPU. ``nvml`` may be a fake module with the same functions (tests)."""

    def __init__(
        self,
        device_index: int = 0,
        *,
        nvml: Any = None,
        hooks: DeviceHooks | None = None,
        clock: Callable[[], float] = time.perf_counter,
        idle_power_w: float | None = None,
        idle_s: float = 0.5,
        sample_period_s: float = 0.02,
        counter_period_s: float = COUNTER_PERIOD_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(hooks=hooks, clock=clock)
        self.nvml = nvml if nvml is not None else load_nvml()
        self.sample_period_s = sample_period_s
        self.counter_period_s = counter_period_s
        self._sleep = sleep
        try:
            self.nvml.nvmlInit()
            count = self.nvml.nvmlDeviceGetCount()
            if not 0 <= device_index < count:
                raise MeasurementError(
                    f"GPU index {device_index} not found: NVML sees {count} device(s); pick 0..{count - 1}"
                )
            self.handle = self.nvml.nvmlDeviceGetHandleByIndex(device_index)
            self._name = _text(self.nvml.nvmlDeviceGetName(self.handle))
            self.driver_version = _text(self.nvml.nvmlSystemGetDriverVersion())
            self.power_limit_w = self._optional(self.nvml.nvmlDeviceGetEnforcedPowerLimit)
            if self.power_limit_w is not None:
                self.power_limit_w /= 1000.0
        except self.nvml.NVMLError as exc:
            raise MeasurementError(
                f"NVML unavailable ({exc}); run on a machine with an NVIDIA driver and GPU, "
                "or run without --measure-energy"
            ) from None
        self.has_counter = self._optional(self.nvml.nvmlDeviceGetTotalEnergyConsumption) is not None
        self.idle_power_w = idle_power_w if idle_power_w is not None else self.measure_idle_power(idle_s)

    # -- readings ------------------------------------------------------------------------------
    def _optional(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(handle)`` or ``None`` when the device does not support it."""
        try:
            return fn(self.handle)
        except self.nvml.NVMLError:
            return None

    def power_w(self) -> float:
        return float(self.nvml.nvmlDeviceGetPowerUsage(self.handle)) / 1000.0

    def energy_counter_j(self) -> float:
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) / 1000.0

    def measure_idle_power(self, idle_s: float) -> float:
        """Mean power over ``idle_s`` seconds with nothing running (call before any work)."""
        self.hooks.sync()
        samples = [self.power_w()]
        t0 = self.clock()
        while self.clock() - t0 < idle_s:
            self._sleep(self.sample_period_s)
            samples.append(self.power_w())
        return sum(samples) / len(samples)

    def clocks_mhz(self) -> tuple[int | None, int | None]:
        sm = self._optional(lambda h: self.nvml.nvmlDeviceGetClockInfo(h, self.nvml.NVML_CLOCK_SM))
        mem = self._optional(lambda h: self.nvml.nvmlDeviceGetClockInfo(h, self.nvml.NVML_CLOCK_MEM))
        return sm, mem

    # -- meter interface -----------------------------------------------------------------------
    @property
    def device_name(self) -> str:
        return self._name

    @property
    def can_measure_energy(self) -> bool:
        return True

    def _begin(self, w: Window) -> None:
        w.state["p0"] = self.power_w()
        if self.has_counter:
            w.state["c0"] = self.energy_counter_j()
            return
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(self.sample_period_s):
                samples.append((self.clock(), self.power_w()))

        thread = threading.Thread(target=sample, name=f"nvml-power-{w.name}", daemon=True)
        w.state.update(samples=samples, stop=stop, thread=thread)
        thread.start()

    def _end(self, w: Window, common: dict[str, Any]) -> Measurement:
        flags = list(common.pop("flags"))
        wall = common["wall_s"]
        p1 = self.power_w()
        if self.has_counter:
            delta = self.energy_counter_j() - w.state["c0"]
            if delta > 0 and wall >= self.counter_period_s:
                energy, source = delta, "nvml-counter"
            else:
                # Too short for the counter: never report its 0 J; use power x time and say so.
                energy, source = 0.5 * (w.state["p0"] + p1) * wall, "power-integration"
                flags.append("short-window")
                if delta <= 0:
                    flags.append("counter-did-not-move")
        else:
            w.state["stop"].set()
            w.state["thread"].join()
            # Integrate over exactly [t0, t0 + wall]: the window's own start and end readings
            # bracket the thread's samples taken inside it.
            t0, t1 = w.t0, w.t0 + wall
            inside = [(t, p) for t, p in w.state["samples"] if t0 < t < t1]
            energy = trapezoid_j([(t0, w.state["p0"]), *inside, (t1, p1)])
            source = "power-integration"
            flags.append("no-energy-counter")
            if wall < POWER_AVERAGE_S:
                flags.append("short-window")
        sm, mem = self.clocks_mhz()
        return Measurement(
            energy_source=source,
            energy_j=energy,
            energy_above_idle_j=max(0.0, energy - self.idle_power_w * wall),
            idle_power_w=self.idle_power_w,
            avg_power_w=energy / wall if wall > 0 else p1,
            device_name=self._name,
            driver_version=self.driver_version,
            power_limit_w=self.power_limit_w,
            sm_clock_mhz=sm,
            memory_clock_mhz=mem,
            flags=tuple(flags),
            **common,
        )

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass


def trapezoid_j(samples: list[tuple[float, float]]) -> float:
    """Energy in J from ``(t_s, power_w)`` samples by the trapezoid rule (sorted by time)."""
    samples = sorted(samples)
    return sum((t1 - t0) * (p0 + p1) / 2.0 for (t0, p0), (t1, p1) in zip(samples, samples[1:]))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
