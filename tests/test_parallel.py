"""A CPU profile's [threads] fit (costmodels.parallel): the interpolation by hand, validation, and
`codesign calibrate` writing the section from a sweep at two threads that `codesign profile` then uses."""

from __future__ import annotations

import json

import pytest
from datasets_available import requires_cora

from codesign.cli import main
from costmodels import load_profile, price_workload
from costmodels.errors import ProfileError
from costmodels.profiles import DeviceProfile

THREADS = {"fitted_threads": 1, "parallel_threads": 3, "gemm": 0.8, "conv": 0.3, "aggregation": 0.4,
           "elementwise": 0.5, "kernel_overhead_us": 50.0, "serial_step_ns": 2.0, "source": "test"}


def _profile(threads: dict | None = THREADS) -> DeviceProfile:
    base = load_profile("cloud-cpu-2core")
    data = {"name": base.name, "display_name": base.display_name, "kind": base.kind, "source": base.source,
            **{k: dict(v) for k, v in base.sections.items()}}
    data["efficiency"].update(gemm=0.4, conv=0.3, aggregation=0.2, elementwise=0.5, kernel_overhead_us=30.0,
                              serial_step_ns=1.0)
    if threads is not None:
        data["threads"] = dict(threads)
    return DeviceProfile.from_dict(data, "test")


def test_at_threads_interpolates_time_per_unit_of_work():
    prof = _profile()
    assert prof.at_threads(1) is prof  # the fitted count: [efficiency] as it is
    two = prof.at_threads(2)  # w = (2 - 1) / (3 - 1) = 1/2
    assert two.efficiency("gemm") == pytest.approx(1 / (0.5 / 0.4 + 0.5 / 0.8))  # 0.5333
    assert two.efficiency("aggregation") == pytest.approx(1 / (0.5 / 0.2 + 0.5 / 0.4))  # 0.2667
    assert two.efficiency("conv") == pytest.approx(0.3)
    assert two.kernel_overhead_s == pytest.approx(40e-6) and two.serial_step_s == pytest.approx(1.5e-9)
    three, eight = prof.at_threads(3), prof.at_threads(8)  # no extrapolation past the measured count
    assert three.efficiency("gemm") == pytest.approx(0.8) == eight.efficiency("gemm")
    assert eight.kernel_overhead_s == pytest.approx(50e-6)
    plain = _profile(None)
    assert plain.at_threads(2) is plain  # no [threads]: one price at every count


def test_threads_section_is_validated():
    with pytest.raises(ProfileError, match=r"\[threads\] fitted_threads = 2, parallel_threads = 2"):
        _profile({**THREADS, "fitted_threads": 2, "parallel_threads": 2})
    with pytest.raises(ProfileError, match=r"\[threads\] gemm = 1.5 must be a fraction of peak"):
        _profile({**THREADS, "gemm": 1.5})
    with pytest.raises(ProfileError, match=r"\[threads\] missing required key 'kernel_overhead_us'"):
        _profile({k: v for k, v in THREADS.items() if k != "kernel_overhead_us"})


def test_parallel_threads_must_exceed_threads(capsys):
    assert main(["calibrate", "--threads", "2", "--parallel-threads", "2"]) == 2
    assert "--parallel-threads 2: give a CPU thread count above --threads 2" in capsys.readouterr().err


@requires_cora
def test_calibrate_fits_threads_and_profile_prices_with_them(tmp_path, capsys):
    out, report = tmp_path / "cal.toml", tmp_path / "cal.json"
    rc = main(["calibrate", "--models", "gcn", "--datasets", "cora", "--sparsities", "0,0.5,0.9", "--rounds", "1",
               "--per-round", "2", "--warmup", "1", "--no-search-epochs", "--no-fit-memory", "--allocator", "default",
               "--device-profile", "cloud-cpu-2core", "--parallel-threads", "2", "--output", str(out),
               "--report", str(report), "--allow-busy", "--force"])
    assert rc == 0 and "[threads] at 2 threads (wall time, 3 workloads)" in capsys.readouterr().out
    rep = json.loads(report.read_text())["threads"]
    prof = load_profile(str(out))
    section = prof.sections["threads"]
    assert section["fitted_threads"] == 1 and section["parallel_threads"] == 2
    assert section["gemm"] == pytest.approx(rep["section"]["gemm"])
    held = [r for r in rep["rows"] if r["split"] == "held-out"]
    assert len(held) == 1 and rep["mape_after"] == pytest.approx(abs(held[0]["error_after"]))
    # the section's held-out prediction is the profile priced at 2 threads
    from codesign.graphs.data import load_dataset
    from codesign.machine.profiling import EpochRunner, WorkloadConfig

    cfg = WorkloadConfig("gcn", "cora", 0.5, 0.5)
    wl = EpochRunner(cfg, load_dataset("cora"), "cpu").workload()
    assert held[0]["workload"] == cfg.label
    assert float(price_workload(wl, prof.at_threads(2), training=True).latency_s) == pytest.approx(
        held[0]["after_s"], rel=1e-4)
    assert main(["profile", "--model", "gcn", "--dataset", "cora", "--repeats", "1", "--warmup", "0",
                 "--threads", "2", "--device-profile", str(out), "--out", str(tmp_path / "p"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["priced_at_threads"] and result["torch_threads"] == 2
    dense = EpochRunner(WorkloadConfig("gcn", "cora", 0.0, 0.0), load_dataset("cora"), "cpu").workload()
    at_two = float(price_workload(dense, prof.at_threads(2), training=True).latency_s)
    assert result["rows"][0]["predicted_s"] == pytest.approx(at_two, rel=1e-6)
    assert at_two != pytest.approx(float(price_workload(dense, prof, training=True).latency_s), rel=1e-3)
