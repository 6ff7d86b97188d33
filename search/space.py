"""Search spaces: named parameters, which methods they apply to, and ``--space`` overrides.

A space is a tuple of :class:`Param`: a categorical ``choices`` list or a numeric range
``[low, high]`` (optionally ``step``; ``integer`` ranges are sampled as integers, e.g. epochs);
``applies_to`` names the values of the ``method`` parameter
for which the parameter exists (``None`` = every method), so a dense run never samples a sparsity.
A parameter that does not apply takes its ``default`` (recorded, never sampled).

``--space`` text narrows or fixes parameters, ``;``-separated::

    method=gebt,random; graph_sparsity=0.2:0.6; weight_sparsity=0.5; threshold=0.1

``name=a,b`` is a choice list (a subset of the categorical's choices), ``name=lo:hi`` a range inside
the default one, ``name=v`` fixes the value. This module knows nothing about GNNs: the codesign
pipelines build the default spaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from costmodels.errors import CodesignError, unknown


class SuggestsParams(Protocol):
    """The part of ``optuna.trial.Trial`` a space uses (kept as a protocol: no optuna import here)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int: ...


@dataclass(frozen=True)
class Param:
    """One searchable parameter: categorical (``choices``) or numeric range (``low``..``high``, ints when
    ``integer``)."""

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    applies_to: frozenset[str] | None = None
    default: Any = None
    help: str = ""
    integer: bool = False

    def __post_init__(self) -> None:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError(f"param {self.name}: give either choices or low/high")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"param {self.name}: low > high")

    @property
    def fixed(self) -> bool:
        """True when only one value is possible (nothing to sample)."""
        if self.choices is not None:
            return len(self.choices) == 1
        return self.low == self.high

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ",".join(map(str, self.choices)) + "}"
        text = f"{self.low:g}" if self.low == self.high else f"[{self.low:g}, {self.high:g}]"
        return text + (f" step {self.step:g}" if self.integer and self.step and self.low != self.high else "")

    def value_for(self, wanted: Any) -> Any:
        """``wanted`` if this parameter can take it, else the nearest value it can take."""
        if self.choices is not None:
            return wanted if wanted in self.choices else self.choices[0]
        assert self.low is not None and self.high is not None
        v = min(max(wanted, self.low), self.high)
        if self.integer:
            step = int(self.step or 1)
            v = int(self.low) + round((v - self.low) / step) * step
            return int(min(v, self.high))
        return float(v)


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of parameters; ``method`` (if present) is sampled first and gates the rest."""

    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def get(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise unknown("search parameter", name, self.names)

    def suggest(self, trial: SuggestsParams) -> dict[str, Any]:
        """Sample one configuration: each applicable parameter through ``trial.suggest_*``.

        Fixed parameters are still suggested (a one-value distribution) so the study records them.
        """
        values: dict[str, Any] = {}
        method = None
        for p in self.params:
            if p.applies_to is not None and method is not None and method not in p.applies_to:
                values[p.name] = p.default
                continue
            if p.choices is not None:
                v = trial.suggest_categorical(p.name, list(p.choices))
            elif p.integer:
                assert p.low is not None and p.high is not None
                v = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1))
            else:
                assert p.low is not None and p.high is not None
                v = trial.suggest_float(p.name, p.low, p.high, step=p.step)
            values[p.name] = v
            if p.name == "method":
                method = v
        return values

    def complete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Fill the non-applicable parameters of a stored trial with their defaults."""
        out = dict(params)
        method = out.get("method")
        for p in self.params:
            if p.name not in out:
                if p.applies_to is None or method in p.applies_to:
                    raise CodesignError(f"stored trial lacks parameter {p.name!r} that the space samples")
                out[p.name] = p.default
        return out

    def to_dict(self) -> dict[str, str]:
        return {p.name: p.describe() for p in self.params}

    def reference(self, method: str, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The parameters of ``method``'s reference run (``values`` where the space allows them, else the
        nearest allowed value), or None when the space's ``method`` choices leave ``method`` out."""
        if "method" in self.names and method not in (self.get("method").choices or ()):
            return None
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name == "method":
                out[p.name] = method
            elif p.applies_to is None or method in p.applies_to:
                out[p.name] = p.value_for(values.get(p.name, p.default if p.default is not None else p.low))
        return out

    def narrow(self, text: str | None) -> SearchSpace:
        """Apply ``--space`` text (see the module docstring); returns a new space."""
        if not text:
            return self
        params = {p.name: p for p in self.params}
        for item in filter(None, (s.strip() for s in text.replace("\n", ";").split(";"))):
            if "=" not in item:
                raise CodesignError(f"--space item {item!r} is not NAME=VALUE; e.g. 'graph_sparsity=0.2:0.6'")
            name, value = (s.strip() for s in item.split("=", 1))
            if name not in params:
                raise unknown("search parameter", name, list(params))
            params[name] = _narrow_param(params[name], value)
        return SearchSpace(tuple(params[p.name] for p in self.params))


def _float(p: Param, text: str, value: str) -> float:
    """``text``, one end of the ``--space`` item ``p.name=value``, as a number (one line naming ``value`` if not)."""
    try:
        return float(text)
    except ValueError:
        raise CodesignError(f"--space {p.name}={value!r}: {text!r} is not a number; give a value or LOW:HIGH, "
                            f"e.g. {p.name}={p.low:g}:{p.high:g}") from None


def _narrow_param(p: Param, value: str) -> Param:
    if p.choices is not None:
        by_str = {str(c): c for c in p.choices}
        picked = [s.strip() for s in value.split(",") if s.strip()]
        bad = [s for s in picked if s not in by_str]
        if bad or not picked:
            raise CodesignError(
                f"--space {p.name}={value!r}: allowed values are {', '.join(by_str)} (comma-separated)"
            )
        return replace(p, choices=tuple(by_str[s] for s in dict.fromkeys(picked)))
    assert p.low is not None and p.high is not None
    if ":" in value:
        lo_s, hi_s = value.split(":", 1)
        lo, hi = _float(p, lo_s, value), _float(p, hi_s, value)
    else:
        lo = hi = _float(p, value, value)
    if not (p.low <= lo <= hi <= p.high):
        raise CodesignError(
            f"--space {p.name}={value!r} must lie within [{p.low:g}, {p.high:g}] with low <= high"
        )
    if p.integer and not (lo.is_integer() and hi.is_integer()):
        raise CodesignError(
            f"--space {p.name}={value!r}: {p.name} takes whole numbers, e.g. {int(p.low)}:{int(p.high)}"
        )
    if p.integer and p.step and lo != hi and (hi - lo) % p.step:
        hi = lo + (hi - lo) // p.step * p.step  # Optuna needs (high - low) divisible by step
    return replace(p, low=lo, high=hi, step=None if lo == hi else p.step)
