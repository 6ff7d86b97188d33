"""Device profiles: every shipped profile validates; bad ones fail naming the file and key."""

from __future__ import annotations

import re

import pytest

from costmodels import DeviceProfile, ProfileError, list_profiles, load_profile
from costmodels.errors import UnknownNameError
from costmodels.profiles import SCHEMA

REQUIRED_DEVICES = {"h100", "h200", "a100-80gb", "v100", "rtx-4090", "jetson-agx-orin", "cloud-cpu-2core",
                    "gcn-accelerator"}


def test_required_profiles_ship_and_validate():
    names = set(list_profiles())
    assert REQUIRED_DEVICES <= names
    for name in REQUIRED_DEVICES:
        p = load_profile(name)
        assert p.peak_flops() > 0 and p.dram_bandwidth_bps > 0
        for section in SCHEMA:
            if section and section in p.sections:
                assert p.sections[section]["source"], f"{name} [{section}] lacks a source"


def test_units_in_every_numeric_key():
    unit = re.compile(r"_(tflops|gbs|gb|mb|w|us|ns|bytes|byte|threads)$|^pj_per_|^(gemm|conv|aggregation|elementwise)$|"
                      r"^mape_")
    for section, keys in SCHEMA.items():
        for key, (types, _) in keys.items():
            if types not in ((str,), (bool,), (list,)):  # a list of names (dtypes) has no unit
                assert unit.search(key), f"[{section}] {key} has no unit in its name"


def _data():
    import copy

    return copy.deepcopy(load_profile("h100").sections) | {
        "name": "x", "display_name": "X", "kind": "gpu", "source": "test"}


def test_unknown_key_error_names_file_key_and_allowed_keys():
    data = _data()
    data["memory"]["dram_bandwith_gbs"] = 1.0  # typo
    with pytest.raises(ProfileError) as err:
        DeviceProfile.from_dict(data, "bad.toml")
    msg = str(err.value)
    assert "bad.toml" in msg and "dram_bandwith_gbs" in msg and "dram_bandwidth_gbs" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d["compute"].pop("peak_fp32_tflops"), "peak_fp32_tflops"),
        (lambda d: d["memory"].__setitem__("dram_bandwidth_gbs", "fast"), "dram_bandwidth_gbs"),
        (lambda d: d["efficiency"].__setitem__("gemm", 1.5), "gemm"),
        (lambda d: d["sparsity"].__setitem__("weight_sparsity_support", "4:8"), "weight_sparsity_support"),
        (lambda d: d.pop("power"), "[power]"),
        (lambda d: d.__setitem__("kind", "tpu"), "kind"),
        (lambda d: d.__setitem__("bogus", {"a": 1}), "[bogus]"),
        (lambda d: d["power"].__setitem__("idle_power_w", -3), "idle_power_w"),
        (lambda d: d["sparsity"].__setitem__("stores_sparse_weights", 1), "stores_sparse_weights"),
    ],
)
def test_bad_profiles_fail_with_the_key_named(mutate, needle):
    data = _data()
    mutate(data)
    with pytest.raises(ProfileError, match=re.escape(needle)):
        DeviceProfile.from_dict(data, "p.toml")


def test_malformed_toml_and_unknown_name(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("name = \n")
    with pytest.raises(ProfileError, match="broken.toml"):
        DeviceProfile.from_toml(bad)
    with pytest.raises(UnknownNameError, match="h100"):
        load_profile("h1000")


def test_a_fitted_effective_bandwidth_scales_the_dram_energy_per_modelled_byte():
    """Caches serve the bytes an effective bandwidth above the datasheet's moves: only datasheet / effective
    of them cost DRAM energy, so no calibrated profile averages more than its board power on a
    bandwidth-bound epoch (the shipped one priced 11.4 W on a 7 W board before)."""
    from costmodels import GNNSpec, graph_stats, load_profile, price_gnn_run
    from costmodels.calibrate import with_memory

    sheet = load_profile("cloud-cpu-2core")
    fast = with_memory(sheet, 40.0, 0.0)
    assert fast.sections["energy"]["pj_per_dram_byte"] == sheet.sections["energy"]["pj_per_dram_byte"] / 2
    assert with_memory(sheet, 20.0, 0.0).sections["energy"]["pj_per_dram_byte"] == 560.0
    shipped = load_profile("calibrated/cloud-cpu-2core")
    for dataset in ("ogbn-arxiv", "reddit"):  # bandwidth-bound: 11.2 and 11.6 W before
        run = price_gnn_run(GNNSpec("gin"), graph_stats(dataset), [], device=shipped)
        assert float(run.infer.energy_j) / float(run.infer.latency_s) <= shipped.value("power", "board_power_w")
