"""CNN operators and builders (conv2d, batch norm, pooling, linear) and CIFAR-style VGG.

Operator constructors return :mod:`costmodels.ops` records, so a pruned network is priced from its
kept channel counts. Conventions as in ``ops``; in addition:

* batch norm (training): 7 FLOPs per element forward (mean 1, variance 2, normalise 2, affine 2),
  9 backward; inference 2 (folded scale and shift); 2·C parameters.
* pooling: ``k²`` FLOPs per output element (compare or add), input read once, output written.
* the EB paper's forward FLOPs = 2 × ``macs`` (conv + linear multiply-adds, multiply-add = 2).
"""

from __future__ import annotations

from .errors import CodesignError, unknown
from .ops import Array, Conv2d, Elementwise, Gemm, Op
from .workloads import Workload

VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


def out_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def conv2d(name: str, batch: Array, c_in: int, c_out: int, h_in: int, w_in: int, *, kernel: int = 3,
           stride: int = 1, padding: int = 1, groups: int = 1, weight_density: Array = 1.0,
           input_grad: bool = True) -> Conv2d:
    """A square-kernel conv (no bias: CNN convs here are followed by batch norm)."""
    h_out, w_out = out_size(h_in, kernel, stride, padding), out_size(w_in, kernel, stride, padding)
    return Conv2d(name, batch, c_in, c_out, h_in, w_in, h_out, w_out, (kernel, kernel), groups,
                  weight_density, input_grad)


def batchnorm2d(name: str, batch: Array, channels: int, h: int, w: int, training: bool = True) -> Elementwise:
    numel = batch * channels * h * w
    return Elementwise(name, numel, 7.0 if training else 2.0, 9.0, reads=2.0 if training else 1.0,
                       saved_values=1.0, params=2 * channels)


def relu(name: str, numel: Array) -> Elementwise:
    return Elementwise(name, numel, 1.0, 1.0, saved_values=1.0)


def pool2d(name: str, batch: Array, channels: int, h_in: int, w_in: int, kernel: int, stride: int | None = None
           ) -> Elementwise:
    stride = stride or kernel
    out = batch * channels * out_size(h_in, kernel, stride) * out_size(w_in, kernel, stride)
    ratio = (h_in * w_in) / max(out_size(h_in, kernel, stride) * out_size(w_in, kernel, stride), 1)
    return Elementwise(name, out, float(kernel * kernel), float(kernel * kernel), reads=ratio)


def linear(name: str, batch: Array, f_in: int, f_out: int, *, weight_density: Array = 1.0,
           input_grad: bool = True) -> list[Op]:
    """``y = x Wᵀ + b``: a GEMM and a bias add."""
    return [Gemm(name, batch, f_in, f_out, weight_density, input_grad),
            Elementwise(f"{name}.bias", batch * f_out, 1.0, 1.0, params=f_out)]


def cross_entropy(batch: Array, classes: int) -> Elementwise:
    return Elementwise("loss.cross_entropy", batch * classes, 4.0, 3.0, saved_values=1.0)


def vgg_workload(depth: int = 16, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, *,
                 width: float = 1.0, batch: Array = 1, channels: list[int] | None = None,
                 weight_density: Array = 1.0, training: bool = True) -> Workload:
    """CIFAR-style VGG with BN (network-slimming layout): 3×3 convs (no bias) + BN + ReLU, 2×2 max
    pools, a global average pool and one linear classifier. ``channels`` overrides the conv widths
    (e.g. the kept channels of a pruned network); otherwise the config scaled by ``width``."""
    if depth not in VGG_CONFIGS:
        raise unknown("VGG depth", str(depth), [str(d) for d in VGG_CONFIGS])
    cfg = VGG_CONFIGS[depth]
    widths = [max(1, int(round(int(c) * width))) for c in cfg if c != "M"]
    if channels is not None:
        if len(channels) != len(widths):
            raise CodesignError(f"vgg{depth} has {len(widths)} conv layers, got {len(channels)} channel counts")
        widths = list(channels)
    ops: list[Op] = []
    c, h, conv_i = in_channels, image_size, 0
    for item in cfg:
        if item == "M":
            ops.append(pool2d(f"pool{conv_i}", batch, c, h, h, 2))
            h = out_size(h, 2, 2)
            continue
        c_out = widths[conv_i]
        conv_i += 1
        ops.append(conv2d(f"conv{conv_i}", batch, c, c_out, h, h, weight_density=weight_density,
                          input_grad=conv_i > 1))
        ops.append(batchnorm2d(f"bn{conv_i}", batch, c_out, h, h, training))
        ops.append(relu(f"relu{conv_i}", batch * c_out * h * h))
        c = c_out
    ops.append(pool2d("avgpool", batch, c, h, h, h))
    ops += linear("classifier", batch, c, num_classes, weight_density=weight_density)
    if training:
        ops.append(cross_entropy(batch, num_classes))
    return Workload(f"vgg{depth}", tuple(ops), input_values=batch * in_channels * image_size * image_size,
                    info={"channels": widths})


def forward_flops_eb(workload: Workload) -> float:
    """Forward FLOPs in the EB paper's convention: 2 × conv/linear multiply-adds (dense weights
    counted at their stored density)."""
    from .context import ExecContext

    ctx = ExecContext(training=False)
    return float(sum(2.0 * op.forward(ctx).macs for op in workload.ops if isinstance(op, (Conv2d, Gemm))))
