"""The early-bird detector fires exactly when the rule says, on hand-made mask sequences."""

from __future__ import annotations

import pytest
import torch

from codesign.graphs.detector import DetectorConfig, EarlyBirdDetector
from costmodels.errors import CodesignError


def masks_changing_until(k: int, total: int, n: int = 40) -> list[torch.Tensor]:
    """Masks m_1..m_total: m_t differs from m_{t-1} in 4 entries for t <= k, then stays fixed."""
    out, m = [], torch.zeros(n, dtype=torch.bool)
    m[: n // 2] = True
    for t in range(1, total + 1):
        if t <= k:
            m = m.clone()
            i = (2 * t) % n
            m[i], m[i + 1], m[(i + n // 2) % n], m[(i + n // 2 + 1) % n] = (
                ~m[i], ~m[i + 1], ~m[(i + n // 2) % n], ~m[(i + n // 2 + 1) % n])
        out.append(m)
    return out


def run(detector: EarlyBirdDetector, graph: list[torch.Tensor], weight: list[torch.Tensor] | None = None):
    for t, g in enumerate(graph):
        if detector.step(g, None if weight is None else weight[t]):
            return detector.epoch
    return None


def test_fires_three_epochs_after_masks_freeze():
    # masks change through epoch 10; the FIFO holds m_{t-3..t-1}; max distance is 0 once m_{t-3} = m_10,
    # i.e. at t = 13 (before that, d >= 1/first > eta)
    seq = masks_changing_until(10, 30)
    det = EarlyBirdDetector(DetectorConfig(criterion="graph", eta=0.1, fifo=3, warmup=0))
    assert run(det, seq) == 13
    traj = det.trajectory
    assert [e["d_graph"] for e in traj[:3]] == [None, None, None]  # FIFO not full yet
    assert traj[3]["d_graph"] == pytest.approx(1.0)  # relative to the first value
    assert traj[12]["d_graph"] == 0.0 and traj[11]["d_graph"] > 0.1


def test_relative_distance_values_by_hand():
    # each step flips 4 new entries: H(m_t, m_{t-3}) = 12 (first value), so d = 12/12 = 1 while changing;
    # after the freeze at 10: t=11 -> max(H to m_10, m_9, m_8) = 8 -> 8/12; t=12 -> 4/12
    seq = masks_changing_until(10, 13)
    det = EarlyBirdDetector(DetectorConfig(criterion="graph", eta=0.01, warmup=0))
    run(det, seq)
    d = [e["d_graph"] for e in det.trajectory]
    assert d[3:10] == [pytest.approx(1.0)] * 7
    assert d[10] == pytest.approx(8 / 12) and d[11] == pytest.approx(4 / 12) and d[12] == 0.0


def test_fraction_normalisation():
    seq = masks_changing_until(10, 5, n=40)
    det = EarlyBirdDetector(DetectorConfig(criterion="graph", norm="fraction", warmup=0))
    run(det, seq)
    assert det.trajectory[3]["d_graph"] == pytest.approx(12 / 40)


def test_warmup_guard_delays_firing():
    seq = masks_changing_until(0, 20)  # never changes: distance 0 from the first full FIFO (epoch 4)
    det = EarlyBirdDetector(DetectorConfig(criterion="graph", warmup=0))
    assert run(det, seq) == 4
    det = EarlyBirdDetector(DetectorConfig(criterion="graph", warmup=9))
    assert run(det, seq) == 9


@pytest.mark.parametrize(("criterion", "expected"), [("graph", 13), ("weight", 7), ("sum", 13), ("mean", 12)])
def test_criteria_combine_graph_and_weight(criterion, expected):
    # graph freezes after 10, weights after 4. At t=12: d_g = 4/12, d_w = 0 -> sum 0.33 (no), mean 0.17 (no)
    graph = masks_changing_until(10, 30)
    weight = masks_changing_until(4, 30, n=60)
    det = EarlyBirdDetector(DetectorConfig(criterion=criterion, eta=0.2, warmup=0))
    assert run(det, graph, weight) == expected


def test_never_fires_when_masks_keep_changing():
    det = EarlyBirdDetector(DetectorConfig())
    assert run(det, masks_changing_until(50, 50)) is None
    assert det.fired_epoch is None and len(det.trajectory) == 50


def test_bad_detector_settings_are_one_line_errors():
    with pytest.raises(CodesignError, match="unknown criterion 'median'"):
        DetectorConfig(criterion="median")
    with pytest.raises(CodesignError, match="--eta"):
        DetectorConfig(eta=0)
