"""The knobs of an accelerator template: what a profile's ``[template]`` section may declare.

:func:`check_section` validates the section (read by ``costmodels.profiles`` when it loads a profile);
:class:`Knob` checks one value against its range or choices. What the knobs mean, and the rates,
energies and area derived from them, live in :mod:`costmodels.templates`. Imports only
``technology`` and ``errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import technology as tech
from .errors import CodesignError, ProfileError

KNOWN_KNOBS = ("pes", "agg_lanes", "buffer_mb", "buffer_tech", "dram_gbs", "dram", "clock_ghz", "node_nm",
               "vdd_v", "precision_bits", "weight_sparsity")
INTEGER_KNOBS = ("pes", "agg_lanes")  # counts: a grid over them takes whole values
NUMERIC_KNOBS = ("pes", "agg_lanes", "buffer_mb", "dram_gbs", "clock_ghz", "node_nm", "vdd_v", "precision_bits")
CHOICES = {"buffer_tech": tech.BUFFER_TECHS, "dram": tech.DRAM_TECHS, "weight_sparsity": ("none", "unstructured"),
           "precision_bits": (8, 16, 32)}
UNITS = {"pes": "PEs", "agg_lanes": "lanes", "buffer_mb": "MB", "dram_gbs": "GB/s", "clock_ghz": "GHz",
         "node_nm": "nm", "vdd_v": "V", "precision_bits": "bit"}


@dataclass(frozen=True)
class Knob:
    """One template knob: a default plus a numeric range [low, high] or a tuple of choices."""

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        unit = UNITS.get(self.name, "")
        if self.choices:
            return f"{self.name}={self.default} ({'|'.join(map(str, self.choices))})"
        return f"{self.name}={self.default:g} [{self.low:g}..{self.high:g}{' ' + unit if unit else ''}]"

    def check(self, value: Any, where: str) -> Any:
        """``value`` converted to the knob's type, or a one-line error naming the range."""
        if np.ndim(value) == 0 and isinstance(value, np.generic):  # a grid value: named as a plain number
            value = value.item()
        if self.choices:
            conv = type(self.choices[0])
            try:
                v = conv(float(value)) if conv is int and float(value).is_integer() else conv(value)
            except (TypeError, ValueError, OverflowError):
                v = value
            if v not in self.choices:
                raise CodesignError(f"{where}: hardware knob {self.name}={value!r} is not one of "
                                    f"{', '.join(map(str, self.choices))}")
            return v
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise CodesignError(f"{where}: hardware knob {self.name}={value!r} is not a number") from None
        assert self.low is not None and self.high is not None
        if not np.all(np.isfinite(np.asarray(v))):
            raise CodesignError(f"{where}: hardware knob {self.name}={value!r} is not a finite number")
        if self.name in INTEGER_KNOBS and not float(v).is_integer():
            raise CodesignError(f"{where}: hardware knob {self.name}={value!r} is a count; give a whole number, e.g. "
                                f"{self.name}={int(round(v))}")
        arr = np.asarray(v)
        if np.any(arr < self.low) or np.any(arr > self.high):
            raise CodesignError(f"{where}: hardware knob {self.name}={value} is outside its range "
                                f"{self.low:g}..{self.high:g}; pick a value inside it (see `codesign devices`)")
        return int(v) if isinstance(self.default, int) and float(v).is_integer() else v


def _knob_from_toml(name: str, spec: Any, origin: str) -> Knob:
    if name not in KNOWN_KNOBS:
        raise ProfileError(f"{origin}: [template] unknown knob {name!r}; known knobs: {', '.join(KNOWN_KNOBS)}")
    if not isinstance(spec, dict) or "default" not in spec:
        raise ProfileError(f"{origin}: [template] {name} must be an inline table with a default, "
                           "e.g. {default = 4096, min = 256, max = 65536}")
    extra = set(spec) - {"default", "min", "max", "choices"}
    if extra:
        raise ProfileError(f"{origin}: [template] {name}: unknown field(s) {', '.join(sorted(extra))}; "
                           "allowed: default, min, max, choices")
    if "choices" in spec:
        choices = tuple(spec["choices"])
        allowed = CHOICES.get(name, ())
        bad = [c for c in choices if c not in allowed]
        if bad or spec["default"] not in choices:
            raise ProfileError(f"{origin}: [template] {name}: choices {list(choices)} / default "
                               f"{spec['default']!r} must come from {list(allowed)}")
        return Knob(name, spec["default"], choices=choices)
    if name not in NUMERIC_KNOBS or "min" not in spec or "max" not in spec:
        raise ProfileError(f"{origin}: [template] {name} needs min and max (or choices for {', '.join(CHOICES)})")
    lo, hi, d = (spec[k] for k in ("min", "max", "default"))
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi, d)) or not 0 < lo <= d <= hi:
        raise ProfileError(f"{origin}: [template] {name}: need numbers 0 < min <= default <= max, got "
                           f"min={lo!r} default={d!r} max={hi!r}")
    return Knob(name, d, float(lo), float(hi))


def check_section(section: Mapping[str, Any], origin: str) -> tuple[Knob, ...]:
    """Validate a ``[template]`` section; returns its knobs (every known knob must be declared)."""
    knobs = tuple(_knob_from_toml(k, v, origin) for k, v in section.items() if k != "source")
    if not isinstance(section.get("source"), str):
        raise ProfileError(f"{origin}: [template] missing required key 'source'")
    missing = [k for k in KNOWN_KNOBS if k not in {kn.name for kn in knobs}]
    if missing:
        raise ProfileError(f"{origin}: [template] missing knob(s) {', '.join(missing)}")
    return knobs
