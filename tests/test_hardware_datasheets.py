"""Shipped device profiles against the datasheet table of the reference (costs.md section 4).

Each number here is copied from that table (dense rates); a dtype the device has no units for is
absent from its profile, so it prices at the fp32 rate (``DeviceProfile.peak_flops`` falls back).
"""

from __future__ import annotations

import pytest

from costmodels import load_profile

# name: ({dtype: dense TFLOP/s}, dtypes with no units of their own, bandwidth GB/s, board power W)
DATASHEET = {
    "v100": ({"fp32": 15.7, "fp16": 125.0}, ("tf32", "bf16"), 900, 300),
    "a100-80gb": ({"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0}, (), 2039, 400),
    "h100": ({"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}, (), 3350, 700),
    "h200": ({"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}, (), 4800, 700),
    "rtx-4090": ({"fp32": 82.6, "tf32": 82.6, "fp16": 165.2, "bf16": 165.2}, (), 1008, 450),
    "jetson-agx-orin": ({"fp32": 5.3, "fp16": 42.5, "bf16": 42.5}, (), 204.8, 60),
}
SPARSE_24 = {"v100": False, "a100-80gb": True, "h100": True, "h200": True, "rtx-4090": True,
             "jetson-agx-orin": True}


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_profile_matches_the_datasheet_table(name):
    peaks, absent, bandwidth, board = DATASHEET[name]
    p = load_profile(name)
    for dtype, tflops in peaks.items():
        assert p.peak_flops(dtype) == pytest.approx(tflops * 1e12), dtype
    for dtype in absent:  # no units for it: the profile lists nothing and prices at the fp32 rate
        assert f"peak_{dtype}_tflops" not in p.sections["compute"], dtype
        assert f"pj_per_flop_{dtype}" not in p.sections["energy"], dtype
        assert p.peak_flops(dtype) == p.peak_flops("fp32")
    assert p.value("memory", "dram_bandwidth_gbs") == pytest.approx(bandwidth)
    assert p.value("power", "board_power_w") == pytest.approx(board)
    assert (p.weight_sparsity_support == "2:4") == SPARSE_24[name]
    assert p.weight_sparsity_for("fp32") == "none"  # no datasheet gives 2:4 throughput on CUDA cores


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_energy_per_flop_is_board_less_idle_over_peak(name):
    """The profiles' stated rule: pJ/FLOP = (board - idle power) / peak FLOP/s of that dtype (3 digits)."""
    p = load_profile(name)
    dynamic = p.value("power", "board_power_w") - p.value("power", "idle_power_w")
    for key in p.sections["energy"]:
        if key.startswith("pj_per_flop_"):
            dtype = key[len("pj_per_flop_"):]
            assert p.joules_per_flop(dtype) == pytest.approx(dynamic / p.peak_flops(dtype), rel=2e-3), dtype


def test_v100_has_no_bf16_tensor_cores():
    """Volta's tensor cores take FP16 only (costs.md: '125 (FP16)'); bf16 was priced at 125 TFLOP/s before."""
    v100 = load_profile("v100")
    assert v100.peak_flops("bf16") == pytest.approx(15.7e12)
    assert v100.joules_per_flop("bf16") == v100.joules_per_flop("fp32")
