"""Device profiles: one TOML file per device, strictly validated.

Every number carries its unit in its key (``dram_bandwidth_gbs``, ``idle_power_w``) and every
section a ``source`` string saying where the numbers come from. Unknown keys, missing required
keys, wrong types and out-of-range values are errors that name the file, the key path, the bad
value and the accepted keys (the Timeloop/Accelergy front-end habit).

Sections (``*`` = required)::

    name*, display_name*, kind* (gpu | cpu | edge | accelerator), source*
    [compute]*    peak_{fp32*,tf32,fp16,bf16}_tflops, aggregation_peak_fp32_tflops, source*
    [memory]*     dram_bandwidth_gbs*, dram_capacity_gb*, onchip_buffer_mb*, source*
    [power]*      board_power_w*, idle_power_w*, static_power_w*, source*
    [energy]*     pj_per_flop_fp32*, pj_per_flop_fp16, pj_per_flop_bf16, pj_per_flop_tf32,
                  pj_per_dram_byte*, source*
    [efficiency]* gemm*, conv*, aggregation*, elementwise* (fractions of peak in (0, 1]),
                  kernel_overhead_us*, source*
    [sparsity]*   weight_sparsity_support* (none | 2:4 | unstructured), stores_sparse_weights*,
                  sparse_index_bytes*, source*
    [calibration] date, machine, sweep, mape_before, mape_after, source   (written by calibrate)
    [template]    accelerator knobs {default, min, max | choices}, source   (costmodels.templates)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProfileError, unknown
from .ops import ExecContext

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NUM = (int, float)
# section -> key -> (types, required)
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "": {
        "name": ((str,), True),
        "display_name": ((str,), True),
        "kind": ((str,), True),
        "source": ((str,), True),
    },
    "compute": {
        "peak_fp32_tflops": (NUM, True),
        "peak_tf32_tflops": (NUM, False),
        "peak_fp16_tflops": (NUM, False),
        "peak_bf16_tflops": (NUM, False),
        "aggregation_peak_fp32_tflops": (NUM, False),
        "source": ((str,), True),
    },
    "memory": {
        "dram_bandwidth_gbs": (NUM, True),
        "dram_capacity_gb": (NUM, True),
        "onchip_buffer_mb": (NUM, True),
        "source": ((str,), True),
    },
    "power": {
        "board_power_w": (NUM, True),
        "idle_power_w": (NUM, True),
        "static_power_w": (NUM, True),
        "source": ((str,), True),
    },
    "energy": {
        "pj_per_flop_fp32": (NUM, True),
        "pj_per_flop_tf32": (NUM, False),
        "pj_per_flop_fp16": (NUM, False),
        "pj_per_flop_bf16": (NUM, False),
        "pj_per_dram_byte": (NUM, True),
        "pj_per_aggregation_flop": (NUM, False),
        "source": ((str,), True),
    },
    "efficiency": {
        "gemm": (NUM, True),
        "conv": (NUM, True),
        "aggregation": (NUM, True),
        "elementwise": (NUM, True),
        "kernel_overhead_us": (NUM, True),
        "source": ((str,), True),
    },
    "sparsity": {
        "weight_sparsity_support": ((str,), True),
        "stores_sparse_weights": ((bool,), True),
        "sparse_index_bytes": (NUM, True),
        "source": ((str,), True),
    },
    "calibration": {
        "date": ((str,), False),
        "machine": ((str,), False),
        "sweep": ((str,), False),
        "mape_before": (NUM, False),
        "mape_after": (NUM, False),
        "source": ((str,), False),
    },
}
OPTIONAL_SECTIONS = {"calibration", "template"}
# [template] (accelerators): knobs with defaults and ranges, validated by costmodels.templates.
SCHEMA["template"] = {}
KINDS = ("gpu", "cpu", "edge", "accelerator")
SPARSITY_SUPPORT = ("none", "2:4", "unstructured")
DTYPES = ("fp32", "tf32", "fp16", "bf16")
DTYPE_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class DeviceProfile:
    """A validated device profile. Accessors return SI units (FLOP/s, B/s, W, J, s)."""

    name: str
    display_name: str
    kind: str
    source: str
    sections: dict[str, dict[str, Any]] = field(repr=False)
    path: str = ""

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> DeviceProfile:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ProfileError(f"{p}: profile file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{p}: not valid TOML ({exc}); fix the syntax") from None
        return cls.from_dict(data, str(p))

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<dict>") -> DeviceProfile:
        _validate(data, origin)
        sections = {k: dict(v) for k, v in data.items() if isinstance(v, dict)}
        return cls(data["name"], data["display_name"], data["kind"], data["source"], sections, origin)

    # -- accessors ----------------------------------------------------------------------------
    def value(self, section: str, key: str, default: Any = None) -> Any:
        return self.sections.get(section, {}).get(key, default)

    def peak_flops(self, dtype: str = "fp32", op_class: str = "gemm") -> float:
        """Peak FLOP/s for ``dtype`` (falls back to fp32 where the profile lists none) and op class
        (an accelerator may give its aggregation engine its own peak)."""
        c = self.sections["compute"]
        if op_class == "aggregation" and "aggregation_peak_fp32_tflops" in c:
            return float(c["aggregation_peak_fp32_tflops"]) * 1e12
        return float(c.get(f"peak_{dtype}_tflops", c["peak_fp32_tflops"])) * 1e12

    @property
    def dram_bandwidth_bps(self) -> float:
        return float(self.sections["memory"]["dram_bandwidth_gbs"]) * 1e9

    @property
    def onchip_bytes(self) -> float:
        return float(self.sections["memory"]["onchip_buffer_mb"]) * 1e6

    @property
    def memory_capacity_bytes(self) -> float:
        return float(self.sections["memory"]["dram_capacity_gb"]) * 1e9

    def efficiency(self, op_class: str) -> float:
        return float(self.sections["efficiency"][op_class])

    @property
    def kernel_overhead_s(self) -> float:
        return float(self.sections["efficiency"]["kernel_overhead_us"]) * 1e-6

    def joules_per_flop(self, dtype: str = "fp32", op_class: str = "gemm") -> float:
        e = self.sections["energy"]
        if op_class == "aggregation" and "pj_per_aggregation_flop" in e:
            return float(e["pj_per_aggregation_flop"]) * 1e-12
        return float(e.get(f"pj_per_flop_{dtype}", e["pj_per_flop_fp32"])) * 1e-12

    @property
    def joules_per_byte(self) -> float:
        return float(self.sections["energy"]["pj_per_dram_byte"]) * 1e-12

    @property
    def static_power_w(self) -> float:
        return float(self.sections["power"]["static_power_w"])

    @property
    def weight_sparsity_support(self) -> str:
        return str(self.sections["sparsity"]["weight_sparsity_support"])

    def exec_context(self, dtype: str = "fp32", training: bool = True) -> ExecContext:
        s = self.sections["sparsity"]
        return ExecContext(
            dtype_bytes=DTYPE_BYTES[dtype],
            onchip_bytes=self.onchip_bytes,
            weight_sparsity=str(s["weight_sparsity_support"]),
            sparse_weight_storage=bool(s["stores_sparse_weights"]),
            sparse_index_bytes=float(s["sparse_index_bytes"]),
            training=training,
        )

    def summary(self) -> dict[str, Any]:
        """One row for ``codesign devices``."""
        return {
            "name": self.name,
            "device": self.display_name,
            "kind": self.kind,
            "peak_fp32_tflops": self.sections["compute"]["peak_fp32_tflops"],
            "peak_fp16_tflops": self.sections["compute"].get("peak_fp16_tflops"),
            "dram_bandwidth_gbs": self.sections["memory"]["dram_bandwidth_gbs"],
            "board_power_w": self.sections["power"]["board_power_w"],
            "weight_sparsity": self.weight_sparsity_support,
            "calibrated": "calibration" in self.sections,
        }


def _validate(data: dict[str, Any], origin: str) -> None:
    for section, value in data.items():
        if isinstance(value, dict):
            if section not in SCHEMA or section == "":
                allowed = ", ".join(s for s in SCHEMA if s)
                raise ProfileError(f"{origin}: unknown section [{section}]; allowed sections: {allowed}")
            if section == "template":
                from .templates import check_section  # lazy: templates imports this module

                check_section(value, origin)
                continue
            _check_keys(value, SCHEMA[section], origin, f"[{section}]")
        elif section not in SCHEMA[""]:
            allowed = ", ".join(list(SCHEMA[""]) + [f"[{s}]" for s in SCHEMA if s])
            raise ProfileError(f"{origin}: unknown top-level key {section!r}; allowed keys: {allowed}")
    _check_keys({k: v for k, v in data.items() if not isinstance(v, dict)}, SCHEMA[""], origin, "top level")
    for section in SCHEMA:
        if section and section not in OPTIONAL_SECTIONS and section not in data:
            raise ProfileError(f"{origin}: missing section [{section}] (required)")
    if data["kind"] not in KINDS:
        raise ProfileError(f"{origin}: kind = {data['kind']!r} is not one of {', '.join(KINDS)}")
    support = data["sparsity"]["weight_sparsity_support"]
    if support not in SPARSITY_SUPPORT:
        raise ProfileError(
            f"{origin}: [sparsity] weight_sparsity_support = {support!r}; allowed: {', '.join(SPARSITY_SUPPORT)}"
        )
    for key in ("gemm", "conv", "aggregation", "elementwise"):
        v = data["efficiency"][key]
        if not 0 < v <= 1:
            raise ProfileError(f"{origin}: [efficiency] {key} = {v!r} must be a fraction of peak in (0, 1]")


def _check_keys(values: dict[str, Any], schema: dict[str, tuple[tuple[type, ...], bool]], origin: str,
                where: str) -> None:
    for key, v in values.items():
        if key not in schema:
            raise ProfileError(
                f"{origin}: {where} unknown key {key!r}; allowed keys: {', '.join(schema)}"
            )
        types, _ = schema[key]
        if isinstance(v, bool) and bool not in types or not isinstance(v, types):
            want = " or ".join(t.__name__ for t in types)
            raise ProfileError(f"{origin}: {where} {key} = {v!r} must be a {want}")
        if types is NUM and isinstance(v, (int, float)) and v < 0:
            raise ProfileError(f"{origin}: {where} {key} = {v!r} must be >= 0")
    for key, (_, required) in schema.items():
        if required and key not in values:
            raise ProfileError(f"{origin}: {where} missing required key {key!r}")


# -- discovery -------------------------------------------------------------------------------

def profile_dirs() -> list[Path]:
    """Where profiles are looked up: $CODESIGN_PROFILES, the repo's profiles/, the installed copy."""
    dirs = []
    env = os.environ.get("CODESIGN_PROFILES")
    if env:
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parents[1] / "profiles")
    dirs.append(Path(sys.prefix) / "share" / "codesign" / "profiles")
    return [d for d in dirs if d.is_dir()]


def _index() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in profile_dirs():
        for sub in ("", "calibrated", "measured"):
            folder = d / sub if sub else d
            for f in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
                found.setdefault(f.stem if not sub else f"{sub}/{f.stem}", f)
    return found


def list_profiles() -> list[str]:
    """Names of all known profiles (calibrated ones as ``calibrated/<name>``)."""
    return sorted(_index())


def load_profile(name_or_path: str) -> DeviceProfile:
    """Load a profile by name (``h100``, ``calibrated/cloud-cpu-2core``) or by TOML path."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path and Path(name_or_path).exists():
        return DeviceProfile.from_toml(name_or_path)
    index = _index()
    if name_or_path not in index:
        raise unknown("device", name_or_path, list(index))
    return DeviceProfile.from_toml(index[name_or_path])
