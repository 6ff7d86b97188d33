"""Real-GPU checks (``pytest -m gpu``; run by scripts/gpu_check.sh on a lent GPU, skipped elsewhere)."""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and NVML"),
]


def _meter():
    from costmodels.measure import NVMLMeter
    from costmodels.measure.torch_hooks import CudaHooks

    return NVMLMeter(hooks=CudaHooks("cuda"), idle_s=1.0)


def test_nvml_counter_window_on_real_work():
    m = _meter()
    a = torch.randn(4096, 4096, device="cuda")
    r = m.measure(lambda: a @ a, "matmul", min_window_s=1.0)
    assert r.repeats > 1
    assert r.energy_source == "nvml-counter", r.flags  # Volta+ has the counter
    assert r.energy_j > 0 and r.avg_power_w > r.idle_power_w * 0.5
    assert r.gpu_time_s is not None and r.gpu_time_s == pytest.approx(r.wall_s, rel=0.5)
    # the operand and one product are live at the peak (earlier products are freed): 2 x 64 MiB at least
    assert r.peak_memory_bytes >= 2 * 4096 * 4096 * 4
    assert r.power_limit_w and r.power_limit_w > 100 and r.sm_clock_mhz and r.sm_clock_mhz > 100
    m.close()


def test_short_gpu_window_is_flagged_not_zero():
    m = _meter()
    a = torch.randn(256, 256, device="cuda")
    with m.window("tiny") as w:
        a @ a
    r = w.measurement
    assert r.energy_j is not None and r.energy_j > 0
    assert r.energy_source == "power-integration" and "short-window" in r.flags
    m.close()


def test_profile_on_cuda_measures_energy(tmp_path):
    from codesign.cli import main

    rc = main(["profile", "--model", "gcn", "--dataset", "cora", "--method", "gebt", "--run-on", "cuda",
               "--measure-energy", "--repeats", "3", "--warmup", "2", "--out", str(tmp_path)])
    assert rc == 0
    import json

    res = json.loads((tmp_path / "profile.json").read_text())
    assert res["energy_source"] in ("nvml-counter", "power-integration")
    assert all(r["measured_j"] > 0 for r in res["rows"])


@pytest.mark.parametrize("method", ["dense", "eb", "spline-eb", "spline", "slimming", "random"])
def test_cnn_methods_train_on_cuda(method, tmp_path):
    from codesign.cnn.pipeline import CNNTrainConfig, train

    cfg = CNNTrainConfig(model="vgg11", dataset="synthetic-images", method=method, epochs=2, width=0.25,
                         train_subset=256, batch_size=64, channel_sparsity=0.5, probe_grid=4, run_on="cuda",
                         out=str(tmp_path), progress=False)
    r = train(cfg)
    assert 0.0 <= r["test_accuracy"] <= 1.0
    assert r["forward_flops"]["after"] <= r["forward_flops"]["before"]
    state = torch.load(tmp_path / "model.pt")["state_dict"]
    assert all(t.device.type == "cpu" for t in state.values())


def test_gebt_trains_on_cuda():
    from codesign.graphs.pipeline import GraphTrainConfig, train

    r = train(GraphTrainConfig(dataset="sbm:n=2000,avg_degree=8,features=32,classes=4", method="gebt", epochs=5,
                               run_on="cuda"), progress=False)
    assert r["graph_sparsity"] == pytest.approx(0.2, abs=1e-3) and r["weight_sparsity"] == pytest.approx(0.5)
