"""Workloads of residual CNNs (pre-activation ResNet, ResNet-18) and a by-name CNN dispatcher.

Same signature style as :func:`costmodels.cnn.vgg_workload`: ``channels`` overrides the prunable
widths (the kept channels of a pruned network), otherwise the default widths scaled by ``width``.
Architectures are those of ``codesign.cnn.models`` (which the FLOP test checks against torch's
``FlopCounterMode``):

* ``preresnet_workload`` — pre-activation ResNet for CIFAR (network-slimming layout). Per block:
  ``BN(in) -> select -> ReLU -> conv ... -> (+ residual)``; basic blocks (6n+2) for depth < 44,
  bottlenecks (9n+2, expansion 4) otherwise. ``channels`` = per block [selected inputs, mid(, mid2)]
  then the final selection (``3·n·per + 1`` numbers), the ``cfg`` of ``codesign.cnn.models``.
  The channel selection is a gather: 0 FLOPs, its output read and written once.
* ``resnet18_workload`` — post-activation ResNet-18, ``stem="imagenet"`` (7x7/2 conv + 3x3/2 max
  pool, 224x224 inputs) or ``"cifar"`` (3x3 conv, no pool). ``channels`` = the 8 inner block
  widths (conv1 outputs), or 16 numbers, per block [selected inputs, inner width]: the ``cfg`` of
  the EB code's ImageNet ResNet-18 (a channel selection before each block's first conv keeps the
  channels that survive the preceding residual-producing BN; ``resprune.py`` drops the
  downsample BNs from the list). Residual widths themselves are never pruned.

Costs follow ``costmodels.cnn``: conv FLOPs = 2·MAC (= FlopCounterMode), BN 7/9 FLOPs per element
(train forward/backward), ReLU 1, residual add 1, pooling k² per output element.
"""

from __future__ import annotations

from .cnn import VGG_CONFIGS, batchnorm2d, conv2d, cross_entropy, linear, out_size, pool2d, relu, vgg_workload
from .errors import CodesignError, unknown
from .ops import Array, Elementwise, Op
from .workloads import Workload

CNN_MODELS = ("vgg11", "vgg13", "vgg16", "vgg19", "preresnet20", "preresnet56", "preresnet101", "resnet18")


def _scaled(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def preresnet_default_channels(depth: int, width: float = 1.0) -> list[int]:
    """The dense ``channels`` list of a pre-activation ResNet (see the module docstring)."""
    n, exp, per = _preresnet_shape(depth)
    planes = [_scaled(p, width) for p in (16, 32, 64)]
    cfg, inplanes = [], _scaled(16, width)
    for s in range(3):
        for _ in range(n):
            cfg += [inplanes] + [planes[s]] * (per - 1)
            inplanes = planes[s] * exp
    return cfg + [inplanes]


def _preresnet_shape(depth: int) -> tuple[int, int, int]:
    if depth >= 44:
        if (depth - 2) % 9:
            raise CodesignError(f"preresnet depth {depth} needs depth = 9n+2 for bottlenecks (e.g. 56, 101)")
        return (depth - 2) // 9, 4, 3
    if (depth - 2) % 6 or depth < 8:
        raise CodesignError(f"preresnet depth {depth} needs depth = 6n+2 for basic blocks (e.g. 20)")
    return (depth - 2) // 6, 1, 2


def _select(name: str, numel: Array) -> Elementwise:
    return Elementwise(name, numel, 0.0, 0.0)


def _add(name: str, numel: Array) -> Elementwise:
    return Elementwise(name, numel, 1.0, 0.0, reads=2.0)


def preresnet_workload(depth: int = 20, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, *,
                       width: float = 1.0, batch: Array = 1, channels: list[int] | None = None,
                       weight_density: Array = 1.0, training: bool = True) -> Workload:
    """Operators of one step of a pre-activation ResNet (see the module docstring)."""
    n, exp, per = _preresnet_shape(depth)
    cfg = preresnet_default_channels(depth, width)
    if channels is not None:
        if len(channels) != len(cfg):
            raise CodesignError(f"preresnet{depth} has {len(cfg)} prunable widths, got {len(channels)}")
        cfg = list(channels)
    planes = [_scaled(p, width) for p in (16, 32, 64)]
    d, h = weight_density, image_size
    stem = _scaled(16, width)
    ops: list[Op] = [conv2d("conv1", batch, in_channels, stem, h, h, weight_density=d, input_grad=False)]
    inplanes, j = stem, 0
    for s in range(3):
        for b in range(n):
            name, stride, out = f"block{s + 1}.{b}", (2 if s > 0 and b == 0 else 1), planes[s] * exp
            sel, mids = cfg[j], cfg[j + 1:j + per]
            j += per
            h_out = out_size(h, 3, stride, 1)
            ops.append(batchnorm2d(f"{name}.bn1", batch, inplanes, h, h, training))
            ops.append(_select(f"{name}.select", batch * sel * h * h))
            ops.append(relu(f"{name}.relu1", batch * sel * h * h))
            if exp == 4:
                ops.append(conv2d(f"{name}.conv1", batch, sel, mids[0], h, h, kernel=1, padding=0, weight_density=d))
                ops.append(batchnorm2d(f"{name}.bn2", batch, mids[0], h, h, training))
                ops.append(relu(f"{name}.relu2", batch * mids[0] * h * h))
                ops.append(conv2d(f"{name}.conv2", batch, mids[0], mids[1], h, h, stride=stride, weight_density=d))
                ops.append(batchnorm2d(f"{name}.bn3", batch, mids[1], h_out, h_out, training))
                ops.append(relu(f"{name}.relu3", batch * mids[1] * h_out * h_out))
                ops.append(conv2d(f"{name}.conv3", batch, mids[1], out, h_out, h_out, kernel=1, padding=0,
                                  weight_density=d))
            else:
                ops.append(conv2d(f"{name}.conv1", batch, sel, mids[0], h, h, stride=stride, weight_density=d))
                ops.append(batchnorm2d(f"{name}.bn2", batch, mids[0], h_out, h_out, training))
                ops.append(relu(f"{name}.relu2", batch * mids[0] * h_out * h_out))
                ops.append(conv2d(f"{name}.conv2", batch, mids[0], out, h_out, h_out, weight_density=d))
            if stride != 1 or inplanes != out:
                ops.append(conv2d(f"{name}.downsample", batch, inplanes, out, h, h, kernel=1, stride=stride,
                                  padding=0, weight_density=d))
            ops.append(_add(f"{name}.add", batch * out * h_out * h_out))
            inplanes, h = out, h_out
    ops.append(batchnorm2d("bn", batch, inplanes, h, h, training))
    ops.append(_select("select", batch * cfg[-1] * h * h))
    ops.append(relu("relu", batch * cfg[-1] * h * h))
    ops.append(pool2d("avgpool", batch, cfg[-1], h, h, h))
    ops += linear("fc", batch, cfg[-1], num_classes, weight_density=d)
    if training:
        ops.append(cross_entropy(batch, num_classes))
    return Workload(f"preresnet{depth}", tuple(ops), input_values=batch * in_channels * image_size**2,
                    info={"channels": cfg})


def resnet18_workload(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224, *,
                      stem: str = "imagenet", width: float = 1.0, batch: Array = 1,
                      channels: list[int] | None = None, weight_density: Array = 1.0,
                      training: bool = True) -> Workload:
    """Operators of one step of ResNet-18 (see the module docstring)."""
    if stem not in ("imagenet", "cifar"):
        raise unknown("ResNet stem", stem, ["imagenet", "cifar"])
    planes = [_scaled(p, width) for p in (64, 128, 256, 512)]
    mids = [p for p in planes for _ in range(2)]
    selected: list[int | None] = [None] * 8
    if channels is not None:
        if len(channels) == 16:
            selected, mids = list(channels[0::2]), list(channels[1::2])
        elif len(channels) == 8:
            mids = list(channels)
        else:
            raise CodesignError(f"resnet18 takes 8 block widths or 16 numbers ([selected inputs, width] per "
                                f"block), got {len(channels)}")
    d, h = weight_density, image_size
    ops: list[Op] = []
    if stem == "imagenet":
        ops.append(conv2d("conv1", batch, in_channels, planes[0], h, h, kernel=7, stride=2, padding=3,
                          weight_density=d, input_grad=False))
        h = out_size(h, 7, 2, 3)
        ops.append(batchnorm2d("bn1", batch, planes[0], h, h, training))
        ops.append(relu("relu1", batch * planes[0] * h * h))
        h_out = out_size(h, 3, 2, 1)  # 3x3/2 max pool, padding 1
        ops.append(Elementwise("maxpool", batch * planes[0] * h_out * h_out, 9.0, 9.0, reads=(h * h) / (h_out * h_out)))
        h = h_out
    else:
        ops.append(conv2d("conv1", batch, in_channels, planes[0], h, h, weight_density=d, input_grad=False))
        ops.append(batchnorm2d("bn1", batch, planes[0], h, h, training))
        ops.append(relu("relu1", batch * planes[0] * h * h))
    inplanes = planes[0]
    for s in range(4):
        for b in range(2):
            name, stride, out, mid = f"layer{s + 1}.{b}", (2 if s > 0 and b == 0 else 1), planes[s], mids[2 * s + b]
            h_out = out_size(h, 3, stride, 1)
            sel = selected[2 * s + b]
            if sel is not None and not 1 <= sel <= inplanes:
                raise CodesignError(f"{name}: {sel} selected inputs of {inplanes} channels; need 1..{inplanes}")
            ins = inplanes if sel is None else sel
            if ins != inplanes:
                ops.append(_select(f"{name}.select", batch * ins * h * h))
            ops.append(conv2d(f"{name}.conv1", batch, ins, mid, h, h, stride=stride, weight_density=d))
            ops.append(batchnorm2d(f"{name}.bn1", batch, mid, h_out, h_out, training))
            ops.append(relu(f"{name}.relu1", batch * mid * h_out * h_out))
            ops.append(conv2d(f"{name}.conv2", batch, mid, out, h_out, h_out, weight_density=d))
            ops.append(batchnorm2d(f"{name}.bn2", batch, out, h_out, h_out, training))
            if stride != 1 or inplanes != out:
                ops.append(conv2d(f"{name}.downsample", batch, inplanes, out, h, h, kernel=1, stride=stride,
                                  padding=0, weight_density=d))
                ops.append(batchnorm2d(f"{name}.downsample_bn", batch, out, h_out, h_out, training))
            ops.append(_add(f"{name}.add", batch * out * h_out * h_out))
            ops.append(relu(f"{name}.relu2", batch * out * h_out * h_out))
            inplanes, h = out, h_out
    ops.append(pool2d("avgpool", batch, inplanes, h, h, h))
    ops += linear("fc", batch, inplanes, num_classes, weight_density=d)
    if training:
        ops.append(cross_entropy(batch, num_classes))
    return Workload("resnet18", tuple(ops), input_values=batch * in_channels * image_size**2,
                    info={"channels": mids, "selected": selected, "stem": stem})


def cnn_workload(model: str, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, *,
                 width: float = 1.0, batch: Array = 1, channels: list[int] | None = None,
                 weight_density: Array = 1.0, training: bool = True, stem: str | None = None) -> Workload:
    """Any CNN of ``CNN_MODELS`` by name; ``stem`` (resnet18 only) defaults to cifar below 64 px."""
    kw = dict(width=width, batch=batch, channels=channels, weight_density=weight_density, training=training)
    if model.startswith("vgg") and model[3:].isdigit() and int(model[3:]) in VGG_CONFIGS:
        return vgg_workload(int(model[3:]), num_classes, in_channels, image_size, **kw)
    if model in ("preresnet20", "preresnet56", "preresnet101"):
        return preresnet_workload(int(model[9:]), num_classes, in_channels, image_size, **kw)
    if model == "resnet18":
        return resnet18_workload(num_classes, in_channels, image_size,
                                 stem=stem or ("imagenet" if image_size >= 64 else "cifar"), **kw)
    raise unknown("model", model, CNN_MODELS)


def cnn_model_names() -> list[str]:
    """Every CNN the cost model knows (VGG and the ResNets)."""
    return list(CNN_MODELS)


def cnn_model_workload(model: str, num_classes: int, in_channels: int, image_size: int, *, width: float = 1.0,
                       batch: Array = 1, weight_density: Array = 1.0, training: bool = True) -> Workload:
    """Workload of a named CNN (``vgg11/13/16/19``, ``preresnet20/56/101``, ``resnet18``)."""
    return cnn_workload(model, num_classes, in_channels, image_size, width=width, batch=batch,
                        weight_density=weight_density, training=training)
