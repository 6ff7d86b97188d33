"""CNN cost: workloads vs torch FlopCounterMode, and the EB paper's accounting."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from codesign.cnn.cost import NetShape, PhaseRecord, eb_train_flops, forward_flops, price, price_cnn_run
from codesign.cnn.methods import widths
from codesign.cnn.models import build_model
from codesign.cnn.prune import prune_model, random_masks
from costmodels.cnn import forward_flops_eb
from costmodels.cnn_resnets import cnn_workload, preresnet_default_channels, resnet18_workload
from costmodels.errors import CodesignError

IMAGENET_TRAIN = 1_281_167


@pytest.mark.parametrize(
    "name, c, size, classes",
    [("vgg16", 3, 32, 100), ("vgg11", 1, 28, 10), ("preresnet20", 3, 32, 10), ("preresnet56", 3, 32, 10),
     ("resnet18", 3, 32, 10)],
)
def test_pruned_forward_flops_equal_flopcountermode(name, c, size, classes):
    torch.manual_seed(0)
    dense = build_model(name, width=0.25, in_channels=c, num_classes=classes).eval()
    pruned = prune_model(dense, random_masks(dense, 0.6, torch.Generator().manual_seed(1)))
    shape = NetShape(name, classes, c, size, 0.25)
    for net in (dense, pruned):
        with FlopCounterMode(display=False) as counter:
            net(torch.randn(1, c, size, size))
        assert forward_flops(shape, widths(net)) == counter.get_total_flops()
    assert forward_flops(shape, widths(pruned)) < forward_flops(shape, widths(dense))


def test_vgg16_cifar100_forward_flops_match_eb_paper():
    f = forward_flops_eb(cnn_workload("vgg16", 100, 3, 32, training=False))
    assert f == pytest.approx(0.6274e9, rel=0.01)
    assert f == 626_495_488  # 2 x 313.2 M conv MACs + 2 x 51,200 classifier MACs


def test_resnet18_imagenet_training_totals_match_eb_paper():
    dense_f = forward_flops_eb(resnet18_workload(1000, 3, 224, training=False))
    assert dense_f == pytest.approx(3.637e9, rel=0.01)
    total = eb_train_flops([dense_f], [90], IMAGENET_TRAIN)
    assert total / 1e15 == pytest.approx(1259.13, rel=0.01)
    # EB Train p = 30 %, ticket at epoch 11: 11 dense epochs + 79 epochs of the pruned network, with the
    # inner block widths of ResNet-18 pruned uniformly by 30 % (the paper's per-layer counts are unpublished).
    ch = [round(0.7 * c) for c in (64, 64, 128, 128, 256, 256, 512, 512)]
    pruned_f = forward_flops_eb(resnet18_workload(1000, 3, 224, channels=ch, training=False))
    total = eb_train_flops([dense_f, pruned_f], [11, 79], IMAGENET_TRAIN)
    assert total / 1e15 == pytest.approx(952.46, rel=0.01)


def test_eb_convention_is_three_forward_per_image_epoch():
    assert eb_train_flops([10.0, 4.0], [2, 3], 100) == 3 * (10 * 100 * 2 + 4 * 100 * 3)


def test_price_cnn_run_phases_dense_then_pruned():
    shape = NetShape("vgg11", 10, 1, 28, 0.25)
    dense = (16, 32, 64, 64, 128, 128, 128, 128)
    small = (8, 16, 32, 32, 64, 64, 64, 64)
    out = price_cnn_run(shape, [PhaseRecord("search", 3, dense), PhaseRecord("retrain", 5, small)], list(small),
                        n_train=1000, batch_size=100, probe_images=16, probe_epochs=2)
    phases = out["cost"]["phases"]
    assert [p["name"] for p in phases] == ["search", "retrain", "detector-probe"]
    assert phases[0]["flops"] / 3 > phases[1]["flops"] / 5  # a dense epoch costs more than a pruned one
    fd, fs = forward_flops(shape, dense), forward_flops(shape, small)
    assert out["eb_convention"]["train_flops"] == pytest.approx(3 * 1000 * (3 * fd + 5 * fs))
    assert out["cost"]["detector_flops"] == 16 * 2 * fd
    # analytical training FLOPs include BN/ReLU/pool/optimizer and skip dX of the first conv
    assert out["cost"]["train_flops"] == pytest.approx(out["eb_convention"]["train_flops"], rel=0.05)


def test_workload_channel_count_errors():
    assert len(preresnet_default_channels(56)) == 3 * 6 * 3 + 1
    with pytest.raises(CodesignError, match="preresnet20"):
        cnn_workload("preresnet20", channels=[1, 2, 3])
    with pytest.raises(CodesignError, match="unknown model"):
        cnn_workload("alexnet")
    with pytest.raises(CodesignError, match="6n\\+2"):
        preresnet_default_channels(21)


def test_resnet18_eb_code_cfg_with_selected_inputs():
    # the EB code's ImageNet cfg: per block [selected inputs, inner width]; full counts = dense network
    ins, mids = [64, 64, 64, 128, 128, 256, 256, 512], [64, 64, 128, 128, 256, 256, 512, 512]
    full = [x for pair in zip(ins, mids) for x in pair]
    dense_f = forward_flops_eb(resnet18_workload(1000, 3, 224, training=False))
    assert forward_flops_eb(resnet18_workload(1000, 3, 224, channels=full, training=False)) == dense_f
    # selecting 32 of layer1.0's 64 inputs halves that conv1 only: 56x56 outputs, 3x3, 64 out, 32 fewer inputs
    fewer = [32] + full[1:]
    saved = dense_f - forward_flops_eb(resnet18_workload(1000, 3, 224, channels=fewer, training=False))
    assert saved == 2 * 56 * 56 * 64 * 32 * 9
    with pytest.raises(CodesignError, match="selected inputs"):
        resnet18_workload(channels=[65] + full[1:])
    with pytest.raises(CodesignError, match="16 numbers"):
        resnet18_workload(channels=[64] * 9)


@pytest.mark.parametrize("model", ["preresnet20", "resnet18"])
def test_resnet_runs_are_bounded_and_inside_their_interval(model):
    # cnn_bounds said the ResNets were not bounded (None); they are, and the run lands inside the interval
    from codesign.cnn.pipeline import CNNTrainConfig, train
    from codesign.pipelines.cnn_bounds import run_bounds
    from codesign.pipelines.pricing import priced_value
    from search import parse_metric

    cfg = CNNTrainConfig(model=model, dataset="synthetic-images", method="eb", width=0.125, epochs=3,
                         train_subset=64, batch_size=32, channel_sparsity=0.5, progress=False)
    lows, highs, _, exact = run_bounds(cfg)
    metric = parse_metric("train-energy")
    low = min(priced_value(i, metric, "h100", price) for i in lows)
    high = max(priced_value(i, metric, "h100", price) for i in highs)
    run = priced_value(train(cfg)["cost_inputs"], metric, "h100", price)
    assert not exact and low <= run <= high
