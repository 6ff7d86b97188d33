"""Parametric accelerator templates: knobs -> peak rates, energies, area (mm^2) and power (W).

A profile of kind ``accelerator`` may carry a ``[template]`` section declaring knobs, each an
inline table with a default and a range (``{default = 4096, min = 256, max = 65536}``) or a
choice (``{default = "edram", choices = ["edram", "sram"]}``). Knobs this module understands:

=================  =====================================================================
``pes``            combination-engine MAC PEs (weight-stationary 1 x 128 arrays)
``agg_lanes``      aggregation-engine SIMD lanes (one MAC each)
``buffer_mb``      on-chip buffer capacity [MB], banked one bank per engine port
``buffer_tech``    ``edram`` or ``sram`` (density, see ``technology.BUFFER_DENSITY``)
``dram_gbs``       off-chip bandwidth [GB/s]; ``dram``: hbm2, lpddr4, gddr5, ddr3 (pJ/bit)
``clock_ghz``      clock [GHz]; ``node_nm`` process node [nm]; ``vdd_v`` supply [V]
``precision_bits`` datapath width (8, 16, 32; integer/fixed point)
``weight_sparsity`` ``none`` or ``unstructured`` (zero weights skipped, 16-bit index per PE)
=================  =====================================================================

Derived (``technology`` supplies every energy and area)::

    peak (combination) = 2 * pes * clock            peak (aggregation) = 2 * agg_lanes * clock
    area_mm2  = (pes + agg_lanes) * PE area + buffer_mb * density(buffer_tech, node)
    power_w   = clock * [(pes + agg_lanes) * E_mac + (3 * agg_lanes + pes / 128) * E_word(bank)]
    bank      = buffer bytes / (agg_lanes + pes / 128)      (one bank per engine port)
    pJ/FLOP   = (E_mac + E_word / 128) / 2 (combination), (E_mac + 3 E_word) / 2 (aggregation)

``power_w`` is the dynamic power with both engines busy every cycle: each aggregation lane reads
a neighbour value and reads and writes a partial sum (3 buffer words per MAC), each combination
array reads one input word per cycle (weights stay in the PEs). Leakage is not modelled
(``static_power_w = 0``) and DRAM energy is not part of ``power_w`` (it is charged per byte).
All functions broadcast over numpy arrays of knob values (vectorised grids).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import technology as tech
from .errors import CodesignError
from .knobs import Knob, check_section
from .profiles import DeviceProfile

ARRAY_WIDTH = 128  # PEs per combination array (weight-stationary 1 x 128 rows)
AGG_WORDS_PER_MAC = 3.0  # gather read + partial-sum read + partial-sum write
@dataclass(frozen=True)
class Template:
    """The knobs of one accelerator profile (``profile`` is the fixed profile at the defaults)."""

    profile: DeviceProfile
    knobs: tuple[Knob, ...]
    source: str = ""

    @property
    def name(self) -> str:
        return self.profile.name

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        raise CodesignError(f"{self.name}: unknown hardware knob {name!r}; knobs: "
                            f"{', '.join(k.name for k in self.knobs)}")

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.knobs}

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated by ``overrides``, every value checked against its knob."""
        values = self.defaults()
        for name, value in (overrides or {}).items():
            values[name] = self.knob(name).check(value, self.name)
        return values

    def describe(self) -> str:
        return "; ".join(k.describe() for k in self.knobs)


def template_of(profile: DeviceProfile) -> Template | None:
    """The profile's template, or None for a fixed profile."""
    section = profile.sections.get("template")
    if not section:
        return None
    return Template(profile, check_section(section, profile.path or profile.name), str(section["source"]))


def require_template(profile: DeviceProfile) -> Template:
    t = template_of(profile)
    if t is None:
        raise CodesignError(f"device {profile.name!r} is a fixed profile with no hardware knobs; --hw and "
                            "--hardware-space need a template (`codesign devices` lists each template's knobs)")
    return t


def parse_hw(text: str | None) -> dict[str, str]:
    """``"pes=2048,buffer_mb=8"`` (commas or semicolons) -> ``{"pes": "2048", "buffer_mb": "8"}``."""
    out: dict[str, str] = {}
    for part in re.split(r"[;,]", text or ""):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise CodesignError(f"--hw {part!r}: write knob=value pairs, e.g. 'pes=2048,buffer_mb=8'")
        k, v = (s.strip() for s in part.split("=", 1))
        if k in out:
            raise CodesignError(f"--hw {text!r}: knob {k!r} is given twice ({out[k]} and {v}); give it once")
        out[k] = v
    return out


# -- the derivation (vectorised) ---------------------------------------------------------------

def derive(values: Mapping[str, Any]) -> dict[str, Any]:
    """Rates, energies, area and power of a knob assignment; numeric knobs may be numpy arrays.

    Choice knobs (``buffer_tech``, ``dram``, ``weight_sparsity``) must be scalars.
    """
    pes, lanes = np.asarray(values["pes"], float), np.asarray(values["agg_lanes"], float)
    bits, node, vdd = values["precision_bits"], values["node_nm"], values["vdd_v"]
    clock_hz = np.asarray(values["clock_ghz"], float) * 1e9
    sparse = values["weight_sparsity"] == "unstructured"
    arrays = pes / ARRAY_WIDTH
    ports = lanes + arrays
    bank_bytes = np.asarray(values["buffer_mb"], float) * 1e6 / ports
    e_mac = tech.mac_energy_pj(bits, node, vdd, sparse)
    e_word = tech.buffer_word_pj(bank_bytes, bits, node, vdd)
    pe_um2 = tech.pe_area_um2(bits, node, sparse)
    area = {
        "combination_compute": pes * pe_um2 * 1e-6,
        "aggregation_compute": lanes * pe_um2 * 1e-6,
        "buffers": tech.buffer_area_mm2(values["buffer_mb"], values["buffer_tech"], node),
    }
    power = {
        "combination_compute": clock_hz * pes * e_mac * 1e-12,
        "aggregation_compute": clock_hz * lanes * e_mac * 1e-12,
        "combination_buffers": clock_hz * arrays * e_word * 1e-12,
        "aggregation_buffers": clock_hz * AGG_WORDS_PER_MAC * lanes * e_word * 1e-12,
    }
    return {
        "peak_tflops": 2.0 * pes * clock_hz / 1e12,
        "aggregation_peak_tflops": 2.0 * lanes * clock_hz / 1e12,
        "pj_per_flop": (e_mac + e_word / ARRAY_WIDTH) / 2.0,
        "aggregation_pj_per_flop": (e_mac + AGG_WORDS_PER_MAC * e_word) / 2.0,
        "pj_per_dram_byte": tech.dram_pj_per_byte(values["dram"]),
        "dram_gbs": np.asarray(values["dram_gbs"], float),
        "buffer_mb": np.asarray(values["buffer_mb"], float),
        "area_mm2": sum(area.values()),
        "power_w": sum(power.values()),
        "area_breakdown_mm2": area,
        "power_breakdown_w": power,
    }


@dataclass(frozen=True)
class HardwarePoint:
    """One configuration of a template: its knob values, area, power and derived profile."""

    device: str
    knobs: dict[str, Any]
    area_mm2: float
    power_w: float
    area_breakdown_mm2: dict[str, float] = field(default_factory=dict)
    power_breakdown_w: dict[str, float] = field(default_factory=dict)
    source: str = "estimate: costmodels.technology (Horowitz 2014, Accelergy, Hamzaoglu 2015; Dennard scaling)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _r(x: Any, digits: int = 4) -> float:
    return float(f"{float(x):.{digits}g}")


def derived_sections(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The profile sections a knob assignment sets (rounded to 4 significant digits, as in the TOMLs)."""
    d = derive(values)
    sparse = values["weight_sparsity"] == "unstructured"
    src = "derived by costmodels.templates from the [template] knobs (technology.py constants)"
    return {
        "compute": {"peak_fp32_tflops": _r(d["peak_tflops"]),
                    "aggregation_peak_fp32_tflops": _r(d["aggregation_peak_tflops"])},
        "memory": {"dram_bandwidth_gbs": _r(d["dram_gbs"]), "onchip_buffer_mb": _r(d["buffer_mb"])},
        "power": {"board_power_w": _r(d["power_w"]), "idle_power_w": 0.0, "static_power_w": 0.0},
        "energy": {"pj_per_flop_fp32": _r(d["pj_per_flop"]),
                   "pj_per_aggregation_flop": _r(d["aggregation_pj_per_flop"]),
                   "pj_per_dram_byte": _r(d["pj_per_dram_byte"])},
        "sparsity": {"weight_sparsity_support": "unstructured" if sparse else "none",
                     "stores_sparse_weights": bool(sparse), "sparse_index_bytes": 2 if sparse else 0},
        "_source": {"text": src},
    }


def configure(profile: DeviceProfile,
              overrides: Mapping[str, Any] | None = None) -> tuple[DeviceProfile, HardwarePoint]:
    """The profile at a hardware point (``overrides`` of the template's defaults) and its area/power."""
    t = require_template(profile)
    values = t.resolve(overrides)
    sections = derived_sections(values)
    data: dict[str, Any] = {"name": profile.name, "display_name": profile.display_name, "kind": profile.kind,
                            "source": profile.source}
    for name, sec in profile.sections.items():
        data[name] = dict(sec)
    note = sections.pop("_source")["text"]
    if overrides:
        for name, sec in sections.items():
            data[name].update(sec)
            data[name]["source"] = note
    derived = DeviceProfile.from_dict(data, profile.path or profile.name)
    d = derive(values)
    point = HardwarePoint(profile.name, values, float(d["area_mm2"]), float(d["power_w"]),
                          {k: float(v) for k, v in d["area_breakdown_mm2"].items()},
                          {k: float(v) for k, v in d["power_breakdown_w"].items()})
    return derived, point


def hardware_rows(profiles: list[DeviceProfile], hw: str | None) -> list[tuple[DeviceProfile, dict[str, Any]]]:
    """For ``codesign estimate``: each profile at ``--hw`` and the columns it adds to every row.

    Template devices get ``area_mm2``, ``power_w`` and ``hw.<knob>``; fixed profiles are priced as
    they are. ``--hw`` with no template device among ``profiles`` is an error.
    """
    if hw and profiles and not any(template_of(p) for p in profiles):
        require_template(profiles[0])
    return [_hardware_row(p, hw) for p in profiles]


def _hardware_row(profile: DeviceProfile, hw: str | None) -> tuple[DeviceProfile, dict[str, Any]]:
    if template_of(profile) is None:
        return profile, {}
    derived, point = configure(profile, parse_hw(hw) if hw else None)
    cols: dict[str, Any] = {"area_mm2": point.area_mm2, "power_w": point.power_w}
    cols.update({f"hw.{k}": v for k, v in point.knobs.items()})
    return derived, cols
