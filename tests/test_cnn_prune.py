"""Physical channel removal, masks and their invariants (CPU, a few seconds)."""

from __future__ import annotations

import copy
import math
from decimal import Decimal

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.cnn.models import build_model
from codesign.cnn.prune import (
    apply_masks,
    channel_sparsity,
    global_threshold_masks,
    kept_channels,
    layerwise_masks,
    mask_distance,
    param_count,
    prune_model,
    random_masks,
)
from costmodels.errors import CodesignError


def _randomise_bn(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.1
            m.bias.data = torch.randn(n, generator=g)
            m.running_mean = torch.randn(n, generator=g)
            m.running_var = torch.rand(n, generator=g) + 0.5


@pytest.mark.parametrize("name", ["vgg11", "vgg16", "preresnet20", "preresnet56", "resnet18"])
def test_removal_preserves_function_of_masked_net(name):
    torch.manual_seed(0)
    dense = build_model(name, width=0.25, in_channels=3, num_classes=7)
    _randomise_bn(dense, 1)
    masks = random_masks(dense, 0.5, torch.Generator().manual_seed(2))
    apply_masks(dense, masks)  # removed channels output exactly zero
    dense.eval()
    pruned = prune_model(dense, masks)
    assert not pruned.training
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref, out = dense(x), pruned(x)
    assert out.shape == (3, 7)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert kept_channels(pruned) == [int(m.sum()) for m in masks]
    assert param_count(pruned) < param_count(dense)


def test_removal_changes_function_when_removed_channels_are_live():
    torch.manual_seed(0)
    dense = build_model("vgg11", width=0.25).eval()
    _randomise_bn(dense, 3)
    masks = random_masks(dense, 0.5, torch.Generator().manual_seed(4))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (dense(x) - prune_model(dense, masks)(x)).abs().max() > 1e-3


def test_vgg_pruned_shapes_exact():
    dense = build_model("vgg11", width=0.25)  # widths 16, 32, 64, 64, 128, 128, 128, 128
    masks = [torch.zeros(u.bn.num_features, dtype=torch.bool) for u in dense.prunable_units()]
    for m, k in zip(masks, [3, 5, 1, 64, 2, 7, 128, 4]):
        m[:k] = True
    pruned = prune_model(dense, masks)
    assert [c for c in pruned.cfg if c != "M"] == [3, 5, 1, 64, 2, 7, 128, 4]
    assert pruned.features[0].weight.shape == (3, 3, 3, 3)
    assert pruned.features[4].weight.shape == (5, 3, 3, 3)
    assert pruned.classifier.weight.shape == (10, 4)


def test_global_threshold_hand_example():
    scores = [torch.tensor([0.1, 0.9, 0.5]), torch.tensor([0.2, 0.3]), torch.tensor([0.05, 0.04])]
    masks = global_threshold_masks(scores, 0.5)  # 7 scores, remove floor(3.5) = 3: 0.04, (0.05 kept), 0.1, 0.2
    assert [m.tolist() for m in masks] == [[False, True, True], [False, True], [True, False]]
    # the third layer would empty: it keeps its best channel and the next-lowest (0.2) goes instead
    assert channel_sparsity(masks) == pytest.approx(3 / 7)
    # layerwise: floor(0.5 * C) = 1, 1, 1 per unit = 3 = floor(0.5 * 7): no extra channel
    assert [m.tolist() for m in layerwise_masks(scores, 0.5)] == [[False, True, True], [False, True], [True, False]]
    # four units of 3 at 0.5: floor(1.5) = 1 each (4 in all), floor(0.5 * 12) = 6: the two extra go to the
    # largest remainders (all 0.5; in order): units 0 and 1 lose 2
    four = [torch.tensor([0.3, 0.1, 0.2])] * 4
    assert [int((~m).sum()) for m in layerwise_masks(four, 0.5)] == [2, 2, 1, 1]
    # units of one channel keep it: the shortfall goes to the unit that can give (7 of 14 removed)
    ones = [torch.tensor([0.5])] * 4 + [torch.arange(10.0)]
    assert [int((~m).sum()) for m in layerwise_masks(ones, 0.5)] == [0, 0, 0, 0, 7]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    ratio=st.floats(0.0, 0.999),
    seed=st.integers(0, 10_000),
    layerwise=st.booleans(),
)
def test_no_layer_ever_empties(sizes, ratio, seed, layerwise):
    g = torch.Generator().manual_seed(seed)
    scores = [torch.rand(n, generator=g) for n in sizes]
    masks = (layerwise_masks if layerwise else global_threshold_masks)(scores, ratio)
    assert all(int(m.sum()) >= 1 for m in masks)
    removed = sum(int((~m).sum()) for m in masks)
    # exact count unless keeping one channel per unit forbids it
    assert removed == min(math.floor(Decimal(repr(ratio)) * sum(sizes)), sum(sizes) - len(sizes))


@pytest.mark.parametrize("ratio, n", [(0.29, 100), (0.57, 100), (0.58, 100), (0.3, 10), (0.7, 10)])
def test_masks_remove_floor_of_the_written_ratio(ratio, n):
    # float 0.29 * 100 = 28.999999999999996: int() of it removed 28 channels, not floor(0.29 * 100) = 29
    want = math.floor(Decimal(repr(ratio)) * n)
    scores = [torch.rand(n, generator=torch.Generator().manual_seed(0))]
    assert int((~global_threshold_masks(scores, ratio)[0]).sum()) == want
    halves = [torch.rand(n // 2), torch.rand(n - n // 2)]
    assert sum(int((~m).sum()) for m in layerwise_masks(halves, ratio)) == want


def test_prune_to_one_channel_per_layer_runs():
    dense = build_model("preresnet20", width=0.25).eval()
    masks = layerwise_masks([torch.rand(u.bn.num_features) for u in dense.prunable_units()], 0.99)
    pruned = prune_model(dense, masks)
    assert set(kept_channels(pruned)) == {1}
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_mask_distance_and_ratio_errors():
    a = [torch.tensor([True, True, False, False])]
    b = [torch.tensor([True, False, False, True])]
    assert mask_distance(a, b) == 0.5
    with pytest.raises(CodesignError, match="channel-sparsity"):
        global_threshold_masks([torch.rand(3)], 1.0)
    with pytest.raises(CodesignError, match="channel-sparsity"):
        layerwise_masks([torch.rand(3)], -0.1)


def test_prune_does_not_touch_the_dense_model():
    dense = build_model("resnet18", width=0.125)
    before = copy.deepcopy(dense.state_dict())
    prune_model(dense, random_masks(dense, 0.3, torch.Generator().manual_seed(0)))
    for k, v in dense.state_dict().items():
        assert torch.equal(v, before[k])
