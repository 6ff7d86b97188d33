"""Early-bird detectors on synthetic sequences, partition codes, and spline scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from codesign.cnn.detectors import MaskDetector, SplineDetector, code_distance, partition_codes, probe_inputs
from codesign.cnn.models import build_model
from codesign.cnn.spline import (
    dead_units,
    folded_hyperplanes,
    hyperplane_scores,
    spline_masks,
    spline_scores,
)


def _mask(bits: str) -> list[torch.Tensor]:
    return [torch.tensor([b == "1" for b in bits])]


def test_mask_detector_fires_only_when_all_four_distances_small():
    det = MaskDetector(fifo=5, eps=0.1)
    # 20 entries; consecutive masks differ by 1 entry (0.05), but the oldest differs by 3 (0.15)
    seq = ["1" * 17 + "000", "1" * 18 + "00", "1" * 19 + "0", "1" * 20, "1" * 20, "1" * 20]
    fired, dist = [], []
    for s in seq:
        fired.append(det.update(_mask(s)))
        dist.append(det.last_distance)
    assert fired == [False, False, False, False, False, True]
    assert dist == [None, None, None, None, 0.15, 0.1]  # 0.1 <= eps fires


def test_mask_detector_never_fires_on_changing_masks():
    det = MaskDetector()
    g = torch.Generator().manual_seed(0)
    assert not any(det.update([torch.rand(50, generator=g) > 0.5]) for _ in range(20))
    assert det.last_distance > 0.3


def _codes(bits: list[str]) -> list[tuple[np.ndarray, int]]:
    out = []
    for b in bits:
        arr = np.array([c == "1" for c in b])
        out.append((np.packbits(arr), arr.size))
    return out


def test_code_distance_is_mean_over_layers():
    a = _codes(["1111", "10"])
    b = _codes(["1100", "10"])
    assert code_distance(a, b) == pytest.approx((0.5 + 0.0) / 2)


def test_spline_detector_fires_on_converging_codes():
    det = SplineDetector(lookback=3, threshold=0.16)
    # codes settle; fires once the newest is within 0.16 of each of the 3 previous codes
    seq = ["0000000000", "1100000000", "1111000000", "1111110000", "1111111000", "1111111000", "1111111000"]
    fired, dist = [], []
    for s in seq:
        fired.append(det.update(_codes([s])))
        dist.append(det.last_distance)
    assert fired == [False, False, False, False, False, False, True]
    assert dist[3:] == pytest.approx([0.6, 0.5, 0.3, 0.1])
    det2 = SplineDetector(lookback=3, threshold=0.16)
    assert not any(det2.update(_codes([s])) for s in ["0" * 10, "1" * 10, "0" * 10, "1" * 10, "0" * 10])


def test_partition_codes_shape_and_probe_plane():
    x0, x1 = torch.ones(3, 16, 16), torch.zeros(3, 16, 16)
    probe = probe_inputs(x0, x1, 4)
    assert probe.shape == (16, 3, 16, 16)
    assert torch.allclose(probe[:, 0, 0, 0], torch.linspace(0, 1, 4).repeat_interleave(4))
    model = build_model("vgg11", width=0.125, num_classes=3)
    codes = partition_codes(model, probe, batch_size=5)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [n for _, n in codes] == [16 * bn.num_features * s * s for bn, s in zip(bns, [16, 8, 4, 4, 2, 2, 1, 1])]
    assert code_distance(codes, codes) == 0.0
    assert model.training  # restored


def test_hyperplane_scores_hand_example():
    # three units in 2-D: two coincide with opposite orientation, one is orthogonal and offset by 1
    w = torch.tensor([[1.0, 0.0], [-2.0, 0.0], [0.0, 3.0]])
    b = torch.tensor([1.0, -2.0, 3.0])
    s = hyperplane_scores(w, b)
    assert s.tolist() == pytest.approx([0.0, 0.0, 1.0 + 0.0])  # unit 2: 1 - 0 + |1 - 1| = 1


def test_spline_scores_invariant_to_positive_rescale():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(12, 27, generator=g), torch.randn(12, generator=g)
    alpha = torch.rand(12, generator=g) * 10 + 0.01
    torch.testing.assert_close(hyperplane_scores(w, b), hyperplane_scores(alpha[:, None] * w, alpha * b))
    # through BN folding: scaling gamma and beta of a channel by a > 0 rescales its (w, b)
    model = build_model("vgg11", width=0.25).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.2, 1.0, generator=g)
            m.bias.data.normal_(generator=g)
    before = spline_scores(model)
    u = model.prunable_units()[2]
    a = torch.rand(u.bn.num_features, generator=g) + 0.5
    u.bn.weight.data *= a
    u.bn.bias.data *= a
    after = spline_scores(model)
    for x, y in zip(before, after):
        torch.testing.assert_close(x, y)


def test_folded_hyperplane_matches_bn_of_conv():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4).eval()
    bn.running_mean, bn.running_var = torch.randn(4), torch.rand(4) + 0.5
    bn.weight.data, bn.bias.data = torch.randn(4), torch.randn(4)
    x = torch.randn(1, 2, 3, 3)
    w, b = folded_hyperplanes(bn, conv)
    torch.testing.assert_close(bn(conv(x)).flatten(), w @ x.flatten() + b)


def test_dead_units_are_pruned_first():
    model = build_model("vgg11", width=0.125, num_classes=3).eval()
    unit = model.prunable_units()[1]
    unit.bn.bias.data[:2] = -100.0  # channels 0, 1 are always off
    probe = probe_inputs(torch.randn(3, 16, 16), torch.randn(3, 16, 16), 4)
    codes = partition_codes(model, probe)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    dead = dead_units(codes, bns, [u.bn for u in model.prunable_units()], len(probe))
    assert dead[1][:2].all()
    scores = spline_scores(model, dead)
    masks = spline_masks(scores, 0.25, "layerwise")  # 4 channels, remove 1
    assert not masks[1][0] or not masks[1][1]
    gmasks = spline_masks(scores, 0.25, "global")
    assert all(int(m.sum()) >= 1 for m in gmasks)
