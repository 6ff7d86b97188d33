"""CIFAR-style CNNs whose channel counts are explicit, so a pruned network is the same class.

Families (all BatchNorm, conv bias-free, width multiplier ``width`` on every channel count):

* ``vgg11/16/19`` — the network-slimming VGG: 3x3 convs + BN + ReLU, 2x2 max pools, global average
  pool, one linear classifier ``Linear(C_last, K)``. (The public code uses ``AvgPool2d(2)``; on
  32x32 inputs that equals the global average pool used here, which also works on 28x28.)
* ``preresnet20/56/101`` — pre-activation ResNet (He et al. 2016) as in network slimming: each
  block starts with ``BN -> channel selection -> ReLU`` on the full residual width, so pruning the
  first BN drops *inputs* of the block's first conv while the residual stays whole. 20 uses basic
  blocks (6n+2, n=3), 56 and 101 bottlenecks (9n+2, n=6 / 11, expansion 4).
* ``resnet18`` — post-activation ResNet-18 with the CIFAR stem (3x3 conv, no max pool). Only the
  inner channel of each basic block (conv1/bn1) is prunable; residual widths are kept.

Every model exposes :meth:`prunable_units` (the BatchNorms a channel mask applies to, each with the
conv that feeds it or ``None``) and :meth:`prune_plan`, which maps per-unit keep-indices to the
pruned model's config and the slices to take from each parameter (see ``codesign.cnn.prune``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from costmodels.cnn import VGG_CONFIGS
from costmodels.cnn_resnets import CNN_MODELS
from costmodels.errors import CodesignError, unknown

Slices = dict[str, tuple[torch.Tensor | None, torch.Tensor | None]]

# one list of CNNs and one table of VGG layouts, shared with the cost model (what `estimate` prices,
# `train --task cnn` and `search --task cnn` build)
VGG_CFGS: dict[int, list[int | str]] = VGG_CONFIGS
MODELS = CNN_MODELS


@dataclass(frozen=True)
class PrunableUnit:
    """A BatchNorm whose channels a mask removes; ``conv`` produced its input (None after a sum)."""

    name: str
    bn: nn.BatchNorm2d
    conv: nn.Conv2d | None
    select: ChannelSelection | None = None

    @property
    def width(self) -> int:
        """Channels the next conv sees (after the channel selection, if any)."""
        return self.bn.num_features if self.select is None else int(self.select.index.numel())


def scaled(c: int, width: float) -> int:
    """Channel count ``max(1, round(c * width))``."""
    return max(1, int(round(c * width)))


def _bn_init(module: nn.Module, gamma: float = 0.5) -> None:
    """Network-slimming init: BN gamma = 0.5, beta = 0; Kaiming-normal convs."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, gamma)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def _idx(n: int) -> torch.Tensor:
    return torch.arange(n)


# --------------------------------------------------------------------------------------------- VGG
class VGG(nn.Module):
    """``cfg``: conv widths and ``"M"`` pools, e.g. ``[16, "M", 32, ...]``; input ``[N, C_in, H, W]``."""

    def __init__(self, cfg: list[int | str], in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.cfg, self.in_channels, self.num_classes = list(cfg), in_channels, num_classes
        layers: list[nn.Module] = []
        c = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1, bias=False), nn.BatchNorm2d(int(v)), nn.ReLU()]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        _bn_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    def rebuild(self, cfg: list) -> VGG:
        return VGG(cfg, self.in_channels, self.num_classes)

    def prunable_units(self) -> list[PrunableUnit]:
        mods = list(self.features)
        return [
            PrunableUnit(f"features.{i}", m, mods[i - 1])
            for i, m in enumerate(mods)
            if isinstance(m, nn.BatchNorm2d)
        ]

    def prune_plan(self, keep: list[torch.Tensor]) -> tuple[list, Slices]:
        cfg, slices, k = [], {}, iter(keep)
        prev = _idx(self.in_channels)
        for i, m in enumerate(self.features):
            if isinstance(m, nn.MaxPool2d):
                cfg.append("M")
            elif isinstance(m, nn.Conv2d):
                out = next(k)
                slices[f"features.{i}"] = (out, prev)
                slices[f"features.{i + 1}"] = (out, None)
                cfg.append(len(out))
                prev = out
        slices["classifier"] = (None, prev)
        return cfg, slices


# --------------------------------------------------------------------------------- pre-act ResNet
class ChannelSelection(nn.Module):
    """Gather ``x[:, index]``: drops block inputs without touching the residual path."""

    def __init__(self, selected: int) -> None:
        super().__init__()
        # A placeholder until a pruned state dict (with the true kept indices) is loaded.
        self.register_buffer("index", torch.arange(selected))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.index.numel() == x.size(1):
            return x
        return x.index_select(1, self.index)


class PreActBlock(nn.Module):
    """``cfg`` = [selected inputs, mid, (mid2 for bottleneck)]; output width ``planes * expansion``.

    basic:      BN(in) -> select -> ReLU -> conv3x3(cfg0->cfg1, s) -> BN -> ReLU -> conv3x3(cfg1->out)
    bottleneck: BN(in) -> select -> ReLU -> conv1x1(cfg0->cfg1) -> BN -> ReLU -> conv3x3(cfg1->cfg2, s)
                -> BN -> ReLU -> conv1x1(cfg2->out)
    plus the residual: identity or a strided 1x1 conv (no BN) when the shape changes.
    """

    def __init__(self, inplanes: int, out: int, cfg: list[int], stride: int, bottleneck: bool) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.select = ChannelSelection(cfg[0])
        if bottleneck:
            self.conv1 = nn.Conv2d(cfg[0], cfg[1], 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cfg[1])
            self.conv2 = nn.Conv2d(cfg[1], cfg[2], 3, stride, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(cfg[2])
            self.conv3 = nn.Conv2d(cfg[2], out, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cfg[0], cfg[1], 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cfg[1])
            self.conv2 = nn.Conv2d(cfg[1], out, 3, 1, 1, bias=False)
        self.downsample = (
            nn.Conv2d(inplanes, out, 1, stride, bias=False) if stride != 1 or inplanes != out else None
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.relu(self.select(self.bn1(x))))
        h = self.conv2(self.relu(self.bn2(h)))
        if self.bottleneck:
            h = self.conv3(self.relu(self.bn3(h)))
        return h + (x if self.downsample is None else self.downsample(x))


class PreResNet(nn.Module):
    """Pre-activation ResNet for CIFAR. ``cfg``: flat list of per-block widths + the final selection."""

    def __init__(self, depth: int, width: float = 1.0, in_channels: int = 3, num_classes: int = 10,
                 cfg: list[int] | None = None) -> None:
        super().__init__()
        self.depth, self.width, self.in_channels, self.num_classes = depth, width, in_channels, num_classes
        self.bottleneck = depth >= 44
        if self.bottleneck:
            if (depth - 2) % 9:
                raise CodesignError(f"preresnet depth {depth} needs depth = 9n+2 (e.g. 56, 101)")
            n, exp, per = (depth - 2) // 9, 4, 3
        else:
            if (depth - 2) % 6:
                raise CodesignError(f"preresnet depth {depth} needs depth = 6n+2 (e.g. 20)")
            n, exp, per = (depth - 2) // 6, 1, 2
        stem = scaled(16, width)
        planes = [scaled(p, width) for p in (16, 32, 64)]
        self.default_cfg: list[int] = []
        inplanes = stem
        for s in range(3):
            for _ in range(n):
                self.default_cfg += [inplanes] + [planes[s]] * (per - 1)
                inplanes = planes[s] * exp
        self.default_cfg.append(inplanes)
        self.cfg = list(cfg) if cfg is not None else list(self.default_cfg)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        inplanes, j = stem, 0
        for s in range(3):
            for b in range(n):
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(PreActBlock(inplanes, planes[s] * exp, self.cfg[j:j + per], stride, self.bottleneck))
                inplanes, j = planes[s] * exp, j + per
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(inplanes)
        self.select = ChannelSelection(self.cfg[-1])
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.cfg[-1], num_classes)
        self.per_block = per
        _bn_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.select(self.bn(self.blocks(self.conv1(x)))))
        return self.fc(torch.flatten(self.pool(h), 1))

    def rebuild(self, cfg: list) -> PreResNet:
        return PreResNet(self.depth, self.width, self.in_channels, self.num_classes, cfg=cfg)

    def prunable_units(self) -> list[PrunableUnit]:
        units: list[PrunableUnit] = []
        for i, b in enumerate(self.blocks):
            units.append(PrunableUnit(f"blocks.{i}.bn1", b.bn1, None, b.select))
            units.append(PrunableUnit(f"blocks.{i}.bn2", b.bn2, b.conv1))
            if b.bottleneck:
                units.append(PrunableUnit(f"blocks.{i}.bn3", b.bn3, b.conv2))
        units.append(PrunableUnit("bn", self.bn, None, self.select))
        return units

    def prune_plan(self, keep: list[torch.Tensor]) -> tuple[list, Slices]:
        # bn1 / the final bn keep their full width (the residual); their mask becomes the selection.
        cfg, slices, k = [], {}, iter(keep)
        for i, b in enumerate(self.blocks):
            sel = next(k)
            slices[f"blocks.{i}.select"] = (sel, None)  # the index buffer is gathered by itself
            mid = next(k)
            slices[f"blocks.{i}.conv1"] = (mid, sel)
            slices[f"blocks.{i}.bn2"] = (mid, None)
            if b.bottleneck:
                mid2 = next(k)
                slices[f"blocks.{i}.conv2"] = (mid2, mid)
                slices[f"blocks.{i}.bn3"] = (mid2, None)
                slices[f"blocks.{i}.conv3"] = (None, mid2)
                cfg += [len(sel), len(mid), len(mid2)]
            else:
                slices[f"blocks.{i}.conv2"] = (None, mid)
                cfg += [len(sel), len(mid)]
        sel = next(k)
        slices["select"] = (sel, None)
        slices["fc"] = (None, sel)
        cfg.append(len(sel))
        return cfg, slices


# ------------------------------------------------------------------------------------- ResNet-18
class BasicBlock(nn.Module):
    """conv3x3(in->mid, s) -> BN -> ReLU -> conv3x3(mid->out) -> BN, + shortcut, ReLU."""

    def __init__(self, inplanes: int, mid: int, out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or inplanes != out:
            self.shortcut = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18, CIFAR stem. ``cfg``: the 8 inner block widths (the prunable channels)."""

    def __init__(self, width: float = 1.0, in_channels: int = 3, num_classes: int = 10,
                 cfg: list[int] | None = None) -> None:
        super().__init__()
        self.width, self.in_channels, self.num_classes = width, in_channels, num_classes
        planes = [scaled(p, width) for p in (64, 128, 256, 512)]
        self.cfg = list(cfg) if cfg is not None else [p for p in planes for _ in range(2)]
        self.conv1 = nn.Conv2d(in_channels, planes[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        blocks, inplanes = [], planes[0]
        for s in range(4):
            for b in range(2):
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(BasicBlock(inplanes, self.cfg[2 * s + b], planes[s], stride))
                inplanes = planes[s]
        self.blocks = nn.Sequential(*blocks)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        _bn_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(h), 1))

    def rebuild(self, cfg: list) -> ResNet18:
        return ResNet18(self.width, self.in_channels, self.num_classes, cfg=cfg)

    def prunable_units(self) -> list[PrunableUnit]:
        return [PrunableUnit(f"blocks.{i}.bn1", b.bn1, b.conv1) for i, b in enumerate(self.blocks)]

    def prune_plan(self, keep: list[torch.Tensor]) -> tuple[list, Slices]:
        slices: Slices = {}
        for i, mid in enumerate(keep):
            slices[f"blocks.{i}.conv1"] = (mid, None)
            slices[f"blocks.{i}.bn1"] = (mid, None)
            slices[f"blocks.{i}.conv2"] = (None, mid)
        return [len(m) for m in keep], slices


def build_model(name: str, *, width: float = 1.0, in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """A dense model by name (see ``MODELS``) with every channel count scaled by ``width``."""
    if not 0.0 < width <= 4.0:
        raise CodesignError(f"--width must be in (0, 4], got {width!r}; e.g. --width 0.25 for CPU runs")
    if name.startswith("vgg") and name[3:].isdigit() and int(name[3:]) in VGG_CFGS:
        cfg = [v if v == "M" else scaled(int(v), width) for v in VGG_CFGS[int(name[3:])]]
        return VGG(cfg, in_channels, num_classes)
    if name in ("preresnet20", "preresnet56", "preresnet101"):
        return PreResNet(int(name[9:]), width, in_channels, num_classes)
    if name == "resnet18":
        return ResNet18(width, in_channels, num_classes)
    raise unknown("model", name, list(MODELS))
