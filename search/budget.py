"""Cost metrics and budgets: ``--metric train-energy`` and ``--budget "2 J"`` in SI base units.

A metric is ``{train,infer}-{energy,latency,flops,memory}``; each has one SI base unit
(energy: J, latency: s, flops: FLOP, memory: B) and one key in ``RunCost.to_dict()``
(``train_energy_j``, ``infer_latency_s``, ``train_flops``, ``infer_memory_bytes``, ...).

A budget is a number followed by a unit: ``value_si = number * scale(unit)``, e.g.
``"500 mJ" -> 0.5`` J, ``"0.1 Wh" -> 360`` J (1 Wh = 3600 J; ``"1 mWh" -> 3.6`` J), ``"5 min" -> 300`` s,
``"3 GFLOP" -> 3e9`` FLOP, ``"1.2 GB" -> 1.2e9`` B (decimal prefixes; ``GiB`` = 2^30 B).
The unit's dimension must match the metric's; a bare number is refused (say the unit).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from costmodels.errors import CodesignError, unknown

PHASES = ("train", "infer")
QUANTITIES = {
    # quantity: (SI base unit, RunCost key suffix, dimension)
    "energy": ("J", "energy_j", "energy"),
    "latency": ("s", "latency_s", "time"),
    "flops": ("FLOP", "flops", "flops"),
    "memory": ("B", "memory_bytes", "bytes"),
}
METRICS = tuple(f"{p}-{q}" for p in PHASES for q in QUANTITIES)

_SI = {"p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "K": 1e3, "M": 1e6,
       "G": 1e9, "T": 1e12, "P": 1e15}


def _unit_table() -> dict[str, tuple[str, float]]:
    """Every accepted unit spelling (case-sensitive first, see :func:`_lookup`) -> (dimension, scale)."""
    t: dict[str, tuple[str, float]] = {}
    for prefix in ("m", "u", "µ", "", "k", "K", "M", "G", "T"):
        t[f"{prefix}J"] = ("energy", _SI[prefix])
    for prefix in ("m", "", "k", "K", "M", "G"):
        t[f"{prefix}Wh"] = ("energy", 3600.0 * _SI[prefix])
    t.update({"joule": ("energy", 1.0), "joules": ("energy", 1.0)})
    for prefix in ("n", "u", "µ", "m", ""):
        t[f"{prefix}s"] = ("time", _SI[prefix])
    t.update({"sec": ("time", 1.0), "secs": ("time", 1.0), "min": ("time", 60.0), "mins": ("time", 60.0),
              "h": ("time", 3600.0), "hr": ("time", 3600.0), "hour": ("time", 3600.0),
              "hours": ("time", 3600.0)})
    for prefix in ("", "k", "K", "M", "G", "T", "P"):
        t[f"{prefix}FLOP"] = ("flops", _SI[prefix])
        t[f"{prefix}FLOPs"] = ("flops", _SI[prefix])
        t[f"{prefix}B"] = ("bytes", _SI[prefix])
    for i, prefix in enumerate(("Ki", "Mi", "Gi", "Ti"), start=1):
        t[f"{prefix}B"] = ("bytes", float(1024**i))
    t.update({"byte": ("bytes", 1.0), "bytes": ("bytes", 1.0)})
    return t


UNITS = _unit_table()
# what argparse must read as a value, not an option: a negative number with or without a unit
# ("-1J", "-5", "-0.5 kJ", "-1mm2"), so `--budget -1J` reaches parse_quantity and gets its one-line error
NEGATIVE_AMOUNT = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:\s*[^\d\s-]\S*)?$")
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\d\s].*?)?\s*$")


@dataclass(frozen=True)
class Metric:
    """One cost metric: ``phase`` in train|infer, ``quantity`` in energy|latency|flops|memory."""

    phase: str
    quantity: str

    @property
    def name(self) -> str:
        return f"{self.phase}-{self.quantity}"

    @property
    def unit(self) -> str:
        """SI base unit of the metric's values (J, s, FLOP, B)."""
        return QUANTITIES[self.quantity][0]

    @property
    def dimension(self) -> str:
        return QUANTITIES[self.quantity][2]

    @property
    def cost_key(self) -> str:
        """The key of this metric in ``RunCost.to_dict()``, e.g. ``train_energy_j``."""
        return f"{self.phase}_{QUANTITIES[self.quantity][1]}"


def parse_metric(name: str) -> Metric:
    """``"train-energy"`` -> ``Metric("train", "energy")``; unknown names raise a one-line error."""
    if name not in METRICS:
        raise unknown("metric", name, METRICS)
    phase, quantity = name.split("-", 1)
    return Metric(phase, quantity)


@dataclass(frozen=True)
class Budget:
    """A cost ceiling: ``value`` in the metric's SI base unit; ``text`` as the user wrote it."""

    value: float
    metric: Metric
    text: str

    def violation(self, cost: float) -> float:
        """Optuna constraint value ``cost - value`` (feasible iff <= 0), in SI units."""
        return float(cost) - self.value

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "unit": self.metric.unit, "metric": self.metric.name, "text": self.text}


_CASED_PREFIXES = "mMpP"  # milli/mega, pico/peta: the letter's case is the scale


def _lookup(unit: str) -> tuple[str, float] | None:
    """The unit as spelled, else the spelling that differs only in case, except that a prefix m, M, p or
    P must be written in its own case (``mwh`` is mWh and ``MWH`` MWh; ``mflop``, ``pB``, ``MS`` are refused)."""
    if unit in UNITS:
        return UNITS[unit]
    for key, found in UNITS.items():
        if key.lower() != unit.lower():
            continue
        if key[0] in _CASED_PREFIXES and key[1:] in UNITS and key[0] != unit[0]:
            continue  # the same letters with the other prefix case: a different scale (mWh vs MWh)
        return found
    return None


def parse_quantity(text: str) -> tuple[float, str, float]:
    """``"1.5kJ"`` -> ``(1500.0, "energy", 1.5)``: SI value, dimension and the number as written."""
    m = _NUMBER.match(str(text))
    if m is None:
        raise CodesignError(
            f"--budget {text!r} is not a number with a unit; "
            "write e.g. '2J', '500 mJ', '30s', '3 GFLOP', '1.2 GB'"
        )
    number, unit = float(m.group(1)), (m.group(2) or "").strip()
    if not unit:
        n = m.group(1)
        raise CodesignError(f"--budget {text!r} has no unit; add one, e.g. '{n} J' or '{n} s'")
    found = _lookup(unit)
    if found is None:
        raise CodesignError(
            f"--budget {text!r}: unknown unit {unit!r}; use J, kJ, Wh; s, ms, min, h; FLOP, GFLOP; B, MB, GB"
        )
    dimension, scale = found
    value = number * scale
    if not math.isfinite(value) or value <= 0:
        example = abs(number) if math.isfinite(abs(number) * scale) and number else 2
        raise CodesignError(f"--budget {text!r}: a budget must be a positive, finite amount, e.g. "
                            f"'{example:g} {unit}'")
    return value, dimension, number


def parse_budget(text: str, metric: Metric | str) -> Budget:
    """Parse ``text`` for ``metric``; the unit's dimension must be the metric's (J for *-energy...)."""
    metric = parse_metric(metric) if isinstance(metric, str) else metric
    value, dimension, _ = parse_quantity(text)
    if dimension != metric.dimension:
        raise CodesignError(
            f"--budget {text!r} measures {dimension} but --metric {metric.name} is in {metric.unit}; "
            f"give the budget in {metric.unit} (or change --metric)"
        )
    return Budget(value=value, metric=metric, text=str(text).strip())


def format_si(value: float | None, unit: str) -> str:
    """``format_si(0.0123, "J") == "12.3 mJ"``: three significant digits with an SI prefix."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return f"0 {unit}"
    prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                (1e-6, "u"), (1e-9, "n")]
    for scale, p in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {p}{unit}"
    return f"{value:.3g} {unit}"
