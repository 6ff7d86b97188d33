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
                  kernel_overhead_us* (device launch latency per kernel), host_overhead_us (framework
                  host cost per dispatched op; 0 if absent) with host_overhead_source, serial_step_ns
                  (one serial step: a sort comparison; 0 if absent), source*
    [sparsity]*   weight_sparsity_support* (none | 2:4 | unstructured: the pattern the hardware
                  exploits), weight_sparsity_dtypes (the dtypes it applies to; required for 2:4,
                  all dtypes if absent otherwise), stores_sparse_weights*, sparse_index_bytes*,
                  sparse_feature_storage (input features stored and read sparse; false if absent),
                  sparse_feature_compute (products with input features of at most 10% non-zeros
                  run sparse, as codesign trains on a CPU; false if absent),
                  source*
    [calibration] date, machine, sweep, mape_before, mape_after, load (readings before and during the
                  sweep), busy (fitted with --allow-busy over the limits), forced (written with --force
                  although the held-out error did not drop), source   (written by calibrate)
    [template]    accelerator knobs {default, min, max | choices}, source   (costmodels.templates)
    [threads]     a CPU's second fit at more threads: fitted_threads, parallel_threads, per-class
                  efficiencies, kernel_overhead_us, serial_step_ns, source   (costmodels.parallel;
                  ``DeviceProfile.at_threads(n)`` prices at n threads)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import parallel
from .context import EAGER_KINDS, ExecContext
from .errors import ProfileError, unknown
from .gpus import gpu_family
from .knobs import check_section

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
        "host_overhead_us": (NUM, False),
        "host_overhead_source": ((str,), False),
        "serial_step_ns": (NUM, False),
        "source": ((str,), True),
    },
    "sparsity": {
        "weight_sparsity_support": ((str,), True),
        "weight_sparsity_dtypes": ((list,), False),
        "sparse_feature_storage": ((bool,), False),
        "sparse_feature_compute": ((bool,), False),
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
        "load": ((str,), False),
        "busy": ((bool,), False),
        "forced": ((bool,), False),
        "source": ((str,), False),
    },
}
SCHEMA["threads"] = parallel.SECTION
OPTIONAL_SECTIONS = {"calibration", "template", "threads"}
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
        if p.is_dir():
            raise ProfileError(f"{p}: is a folder, not a profile file; give a .toml file")
        try:
            data = tomllib.loads(p.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ProfileError(f"{p}: profile file not found") from None
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{p}: not UTF-8 text (byte {exc.start}); save the profile as UTF-8 TOML") from None
        except OSError as exc:
            raise ProfileError(f"{p}: cannot read the profile ({exc.strerror or exc})") from None
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

    @property
    def host_overhead_s(self) -> float:
        """Framework host-side cost per dispatched operation [s] (0 where the profile gives none)."""
        return float(self.sections["efficiency"].get("host_overhead_us", 0.0)) * 1e-6

    @property
    def serial_step_s(self) -> float:
        """Time of one serial step (a sort comparison; ``ops.RNG_STEPS_PER_DRAW`` per random draw); 0 if unlisted."""
        return float(self.sections["efficiency"].get("serial_step_ns", 0.0)) * 1e-9

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

    def weight_sparsity_for(self, dtype: str) -> str:
        """The weight sparsity the hardware exploits in ``dtype``: its support where the dtype is
        listed in ``weight_sparsity_dtypes`` (all dtypes when the key is absent), else ``none``."""
        s = self.sections["sparsity"]
        dtypes = s.get("weight_sparsity_dtypes")
        if dtypes is not None and dtype not in dtypes:
            return "none"
        return str(s["weight_sparsity_support"])

    @property
    def sparse_feature_storage(self) -> bool:
        """Input features stored and read sparse (values + indices of the non-zeros)."""
        return bool(self.sections["sparsity"].get("sparse_feature_storage", False))

    @property
    def sparse_feature_compute(self) -> bool:
        """Products with sparse input features run as sparse-dense (``context.SPARSE_FEATURES_MAX_DENSITY``)."""
        return bool(self.sections["sparsity"].get("sparse_feature_compute", False))

    def exec_context(self, dtype: str = "fp32", training: bool = True) -> ExecContext:
        s = self.sections["sparsity"]
        return ExecContext(
            dtype_bytes=DTYPE_BYTES[dtype],
            onchip_bytes=self.onchip_bytes,
            weight_sparsity=self.weight_sparsity_for(dtype),
            sparse_weight_storage=bool(s["stores_sparse_weights"]),
            sparse_index_bytes=float(s["sparse_index_bytes"]),
            training=training,
            sparse_feature_storage=self.sparse_feature_storage,
            sparse_feature_compute=self.sparse_feature_compute,
            eager_messages=self.kind in EAGER_KINDS,
            # torch's dropout on a CPU tensor draws its noise into a tensor like the input and keeps that for
            # the backward (aten::_dropout); on CUDA the fused native_dropout keeps a bool mask
            mask_bytes=DTYPE_BYTES[dtype] if self.kind == "cpu" else 1.0,
        )

    def at_threads(self, threads: int) -> DeviceProfile:
        """This profile priced at ``threads`` CPU threads (``costmodels.parallel``; itself without ``[threads]``)."""
        return parallel.at_threads(self, threads)  # type: ignore[no-any-return]

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


MIN_RATE = 1e-6  # TFLOP/s or GB/s: below this (a typo, a denormal) latencies overflow to inf


def _validate(data: dict[str, Any], origin: str) -> None:
    for section, value in data.items():
        if isinstance(value, dict):
            if section not in SCHEMA or section == "":
                allowed = ", ".join(s for s in SCHEMA if s)
                raise ProfileError(f"{origin}: unknown section [{section}]; allowed sections: {allowed}")
            if section == "template":
                check_section(value, origin)
                continue
            _check_keys(value, SCHEMA[section], origin, f"[{section}]")
            if section == "threads":
                parallel.check_section(value, origin)
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
    dtypes = data["sparsity"].get("weight_sparsity_dtypes")
    if support == "2:4" and dtypes is None:
        raise ProfileError(f"{origin}: [sparsity] weight_sparsity_support = '2:4' needs weight_sparsity_dtypes "
                           "(the dtypes the sparse units take, e.g. [\"tf32\", \"fp16\", \"bf16\", \"int8\", \"fp8\"])")
    if dtypes is not None and not all(isinstance(d, str) for d in dtypes):
        raise ProfileError(f"{origin}: [sparsity] weight_sparsity_dtypes = {dtypes!r} must be a list of dtype names")
    if "host_overhead_us" in data["efficiency"] and "host_overhead_source" not in data["efficiency"]:
        raise ProfileError(f"{origin}: [efficiency] host_overhead_us needs host_overhead_source (where it comes from)")
    for key in ("gemm", "conv", "aggregation", "elementwise"):
        v = data["efficiency"][key]
        if not 0 < v <= 1:
            raise ProfileError(f"{origin}: [efficiency] {key} = {v!r} must be a fraction of peak in (0, 1]")
    # rates the roofline divides by: a zero peak or bandwidth would give infinite latency
    for section, keys in (("compute", [k for k in data["compute"] if k.endswith("_tflops")]),
                          ("memory", ["dram_bandwidth_gbs"])):
        for key in keys:
            if not data[section][key] >= MIN_RATE:  # a denormal rate would price every run at inf seconds
                raise ProfileError(f"{origin}: [{section}] {key} = {data[section][key]!r} must be >= {MIN_RATE:g} "
                                   f"(a finite rate; give the device's datasheet value)")


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
        if types is NUM and isinstance(v, (int, float)) and not (0 <= v < float("inf")):
            raise ProfileError(f"{origin}: {where} {key} = {v!r} must be a finite number >= 0")
    for key, (_, required) in schema.items():
        if required and key not in values:
            raise ProfileError(f"{origin}: {where} missing required key {key!r}")


# -- discovery and resolution ----------------------------------------------------------------

PROFILE_KINDS = ("datasheet", "calibrated", "measured-host")
_SUBDIR_KIND = {"": "datasheet", "calibrated": "calibrated", "measured": "measured-host"}


def user_profile_dir() -> Path:
    """User-writable profiles: $CODESIGN_PROFILE_HOME, else $XDG_DATA_HOME/codesign/profiles, else ~/.local/share/codesign/profiles (not created here)."""  # noqa: E501
    env = os.environ.get("CODESIGN_PROFILE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "codesign" / "profiles"


def shipped_profile_dir() -> Path:
    """The datasheet profiles that come with the code (the repo's or the package's profiles/)."""
    return Path(__file__).resolve().parents[1] / "profiles"


def profile_dirs() -> list[Path]:
    """Where profiles are looked up, first match wins: $CODESIGN_PROFILES, the user profile dir
    (its ``calibrated/`` and ``measured/`` only), the repo's profiles/, the installed copy."""
    dirs = []
    env = os.environ.get("CODESIGN_PROFILES")
    if env:
        dirs.append(Path(env))
    dirs.append(user_profile_dir())
    dirs.append(shipped_profile_dir())
    dirs.append(Path(sys.prefix) / "share" / "codesign" / "profiles")
    return [d for d in dirs if d.is_dir()]


def _index() -> dict[str, Path]:
    found: dict[str, Path] = {}
    user = user_profile_dir()
    for d in profile_dirs():
        for sub in ("", "calibrated", "measured"):
            if not sub and d == user:  # datasheets ship with the code; the user dir holds fitted/measured ones
                continue
            folder = d / sub if sub else d
            for f in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
                if not f.is_file():  # a folder named x.toml is not a profile
                    continue
                found.setdefault(f.stem if not sub else f"{sub}/{f.stem}", f)
    return found


def list_profiles() -> list[str]:
    """Names of all known profiles (calibrated ones as ``calibrated/<name>``)."""
    return sorted(_index())


@dataclass(frozen=True)
class ResolvedProfile:
    """The profile a ``--device`` / ``--device-profile`` value means: no substitution, ever.

    ``name`` is the label rows carry (``h100``, ``calibrated/h100``, or the TOML path given);
    ``kind`` is one of :data:`PROFILE_KINDS`; ``path`` the file it was read from.
    """

    name: str
    kind: str
    path: str
    profile: DeviceProfile = field(repr=False)

    def describe(self) -> str:
        """``calibrated/h100 (calibrated profile, <user dir>/calibrated/h100.toml)``: label, kind, file."""
        return f"{self.name} ({self.kind} profile, {self.path})"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "path": self.path}


def _kind_of_file(path: Path, data_has_calibration: bool) -> str:
    if data_has_calibration or path.parent.name == "calibrated":
        return "calibrated"
    return "measured-host" if path.parent.name == "measured" else "datasheet"


def resolve_profile(name_or_path: str) -> ResolvedProfile:
    """Resolve a profile name (``h100``, ``calibrated/cloud-cpu-2core``) or TOML path to exactly that
    file: a datasheet name never silently becomes its calibrated copy (ask for ``calibrated/<name>``)."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path and Path(name_or_path).exists():
        prof = DeviceProfile.from_toml(name_or_path)
        path = Path(name_or_path).resolve()
        return ResolvedProfile(name_or_path, _kind_of_file(path, "calibration" in prof.sections), str(path), prof)
    index = _index()
    if name_or_path not in index:
        raise unknown("device", name_or_path, list(index))
    path = index[name_or_path]
    sub = name_or_path.split("/", 1)[0] if "/" in name_or_path else ""
    return ResolvedProfile(name_or_path, _SUBDIR_KIND.get(sub, "datasheet"), str(path), DeviceProfile.from_toml(path))


def load_profile(name_or_path: str) -> DeviceProfile:
    """Load a profile by name (``h100``, ``calibrated/cloud-cpu-2core``) or by TOML path."""
    return resolve_profile(name_or_path).profile


MEASURED_KINDS = {"cpu": ("cpu",), "cuda": ("gpu", "edge")}


def check_calibration_target(profile: DeviceProfile, run_on: str, measured_device: str,
                             matches: str | None = None, action: str = "calibrate") -> None:
    """Refuse to fit ``profile`` to measurements of another device (one line naming both and the fix).

    ``run_on`` is what the sweep measures (``cpu`` or ``cuda``), ``measured_device`` its name;
    ``matches`` the profile name this device was detected as (GPUs; found by name when not given).
    ``action``: ``calibrate`` (fit) or ``profile`` (compare measured with predicted: only this device's
    own profile is a fair comparison; other devices are priced by ``codesign estimate``).
    """
    if action == "profile":
        why = "measurements are compared only with the profile of the device that ran them"
        what = "this profile run measures"
        other = "; for another device's prediction use `codesign estimate --device " + profile.name + "`"
    else:
        why, what, other = "a profile is fitted only to the device it describes", "this calibration measures", ""
    allowed = MEASURED_KINDS.get(run_on, ())
    if profile.kind not in allowed:
        fix = ("use --device-profile auto (this machine's CPU profile) with --run-on cpu" if run_on == "cpu"
               else "use --run-on cpu with a CPU profile, or --device-profile auto for this GPU")
        if profile.kind in ("gpu", "edge"):
            fix = f"run `codesign {action} --run-on cuda` on a machine with a {profile.display_name}, or {fix}"
        raise ProfileError(
            f"--device-profile {profile.name} is a {profile.kind} profile ({profile.display_name}) but {what} "
            f"{run_on} {measured_device!r}: {why}; {fix}{other}"
        )
    # a GPU profile names its GPU (costmodels.gpus, by its name and display name): it must be this one
    this = (matches.split("/")[-1] if matches else gpu_family(measured_device)) if run_on == "cuda" else None
    if run_on == "cuda" and gpu_family(f"{profile.name} {profile.display_name}") != this:
        fix = "use --device-profile auto" if this else "pass a profile of this GPU (no shipped profile matches it)"
        raise ProfileError(
            f"--device-profile {profile.name} ({profile.display_name}) but this GPU is {measured_device!r} "
            f"(profile {this or 'none'}): {why}; {fix}{other}"
        )
