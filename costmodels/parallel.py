"""How a CPU's thread count changes its prices: a profile's optional ``[threads]`` section.

A CPU profile's ``[efficiency]`` is fitted at one thread count (``fitted_threads``, 1 for
``codesign calibrate``'s default). A run with more threads spreads each operator's arithmetic over
more cores, but not evenly: the dispatcher issues operations one at a time, small operators do not
split, OpenMP forks and joins once per parallel operator. ``[threads]`` holds a second fit of the
same model at ``parallel_threads`` (the same workloads measured again with that many threads, wall
time): per op class the efficiency ``η_k(P)`` and the per-kernel overhead ``t_k(P)`` (and, where the
sweep had serial work, the serial step time ``t_s(P)``). Between the two counts the *time per unit
of work* is interpolated linearly in the thread count ``n``::

    w = (n - f) / (P - f),   1/η_k(n) = (1 - w) / η_k(f) + w / η_k(P),   t_k(n) = (1 - w) t_k(f) + w t_k(P)

with ``f`` = ``fitted_threads``. Below ``f`` the ``[efficiency]`` values hold, above ``P`` the
``[threads]`` ones (no extrapolation: a thread beyond what was measured is assumed to add nothing).
:func:`at_threads` returns the profile priced at ``n`` threads; ``codesign profile`` applies it with
the thread count it runs.

Section keys: ``fitted_threads``, ``parallel_threads``, ``gemm``, ``conv``, ``aggregation``,
``elementwise`` (fractions of peak in (0, 1]), ``kernel_overhead_us``, ``serial_step_ns`` (optional),
``source``.
"""

from __future__ import annotations

from typing import Any

from .errors import ProfileError

CLASSES = ("gemm", "conv", "aggregation", "elementwise")
NUM = (int, float)
SECTION: dict[str, tuple[tuple[type, ...], bool]] = {
    "fitted_threads": (NUM, True),
    "parallel_threads": (NUM, True),
    **{k: (NUM, True) for k in CLASSES},
    "kernel_overhead_us": (NUM, True),
    "serial_step_ns": (NUM, False),
    "source": ((str,), True),
}


def check_section(section: dict[str, Any], origin: str) -> None:
    """Range checks beyond the key/type schema (the profile validator calls it)."""
    f, p = section["fitted_threads"], section["parallel_threads"]
    if not (float(f).is_integer() and float(p).is_integer() and 1 <= f < p):
        raise ProfileError(f"{origin}: [threads] fitted_threads = {f!r}, parallel_threads = {p!r} must be whole "
                           "numbers with 1 <= fitted_threads < parallel_threads")
    for key in CLASSES:
        if not 0 < section[key] <= 1:
            raise ProfileError(f"{origin}: [threads] {key} = {section[key]!r} must be a fraction of peak in (0, 1]")


def weight(section: dict[str, Any], threads: int) -> float:
    """``w`` of the module docstring: 0 at or below ``fitted_threads``, 1 at or above ``parallel_threads``."""
    f, p = float(section["fitted_threads"]), float(section["parallel_threads"])
    return min(1.0, max(0.0, (threads - f) / (p - f)))


def efficiency_at(efficiency: dict[str, Any], section: dict[str, Any], threads: int) -> dict[str, Any]:
    """The ``[efficiency]`` values at ``threads`` threads (module docstring's interpolation)."""
    w = weight(section, threads)
    out = dict(efficiency)
    if w == 0.0:
        return out
    for k in CLASSES:
        out[k] = 1.0 / ((1.0 - w) / float(efficiency[k]) + w / float(section[k]))
    out["kernel_overhead_us"] = (1.0 - w) * float(efficiency["kernel_overhead_us"]) + w * float(
        section["kernel_overhead_us"])
    if "serial_step_ns" in section:
        out["serial_step_ns"] = (1.0 - w) * float(efficiency.get("serial_step_ns", 0.0)) + w * float(
            section["serial_step_ns"])
    out["source"] = (f"{efficiency.get('source', '')}; priced at {threads} thread(s) from [threads] "
                     f"(fits at {section['fitted_threads']:g} and {section['parallel_threads']:g} threads)")
    return out


def at_threads(profile: Any, threads: int) -> Any:
    """``profile`` (a ``DeviceProfile``) priced at ``threads`` threads: its ``[efficiency]`` replaced by
    :func:`efficiency_at`; the profile itself where it has no ``[threads]`` section."""
    section = profile.sections.get("threads")
    if not section or weight(section, threads) == 0.0:
        return profile
    data: dict[str, Any] = {"name": profile.name, "display_name": profile.display_name, "kind": profile.kind,
                            "source": profile.source, **{k: dict(v) for k, v in profile.sections.items()}}
    data["efficiency"] = efficiency_at(profile.sections["efficiency"], section, threads)
    return type(profile).from_dict(data, profile.path or profile.name)


def threads_section(efficiency: dict[str, float], kernel_overhead_us: float, serial_step_ns: float | None, *,
                    fitted_threads: int, parallel_threads: int, note: str) -> dict[str, Any]:
    """A ``[threads]`` section from a fit at ``parallel_threads`` (values rounded as calibrate writes them)."""
    section: dict[str, Any] = {"fitted_threads": int(fitted_threads), "parallel_threads": int(parallel_threads)}
    section.update({k: round(float(efficiency[k]), 6) for k in CLASSES})
    section["kernel_overhead_us"] = round(float(kernel_overhead_us), 4)
    if serial_step_ns is not None:
        section["serial_step_ns"] = round(float(serial_step_ns), 4)
    section["source"] = note
    return section
