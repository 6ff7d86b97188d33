"""The EB paper's FLOP accounting (You et al., ICLR 2020) reproduced by the cost model.

    python benchmarks/eb_accounting.py

Convention (``cnn_pruning.md`` §1): forward FLOPs = 2 x conv/linear multiply-adds; training =
3 x forward x training images x epochs, summed over phases (dense epochs until the ticket, pruned
epochs after). ResNet-18 / ImageNet: 90 epochs, 1,281,167 images; both EB tickets (p = 10 %, 30 %)
were drawn at epoch 11 (the public scripts: ``EB-30-11``, ``pruned_1011_0.1``, ``--start-epoch 11``).

The paper publishes no per-layer channel counts of its ResNet-18 tickets, so each pruned network
here is an assumption, named in the table:

* ``inner`` — every block's inner width (conv1 outputs) pruned by p, residual widths kept;
* ``inner+select`` — the EB code's layout (``resprune.py``): also the channel selection before each
  block's first conv keeps (1 - p) of the block's inputs.

The last column is the pruned network's forward FLOPs as a fraction of dense; ``implied`` rows give
the fraction the paper's totals imply. All numbers are analytical (no training is run).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pandas as pd  # noqa: E402

from costmodels.cnn import forward_flops_eb  # noqa: E402
from costmodels.cnn_resnets import cnn_workload, resnet18_workload  # noqa: E402

IMAGENET_TRAIN, EPOCHS, TICKET = 1_281_167, 90, 11
PAPER = {"dense": 1259.13, 0.1: 1177.15, 0.3: 952.46}  # PFLOPs
INPUTS = [64, 64, 64, 128, 128, 256, 256, 512]  # channels entering each block
WIDTHS = [64, 64, 128, 128, 256, 256, 512, 512]  # inner widths


def forward(channels: list[int] | None = None) -> float:
    return forward_flops_eb(resnet18_workload(1000, 3, 224, channels=channels, training=False))


def total(dense_f: float, pruned_f: float) -> float:
    """PFLOPs of EB Train: ``TICKET`` dense epochs, then the pruned network to epoch 90."""
    return 3 * IMAGENET_TRAIN * (TICKET * dense_f + (EPOCHS - TICKET) * pruned_f) / 1e15


def main() -> None:
    dense_f = forward()
    rows = [{"network": "VGG-16 / CIFAR-100 forward (GFLOPs)", "assumption": "dense",
             "ours": forward_flops_eb(cnn_workload("vgg16", 100, 3, 32, training=False)) / 1e9, "paper": 0.6274},
            {"network": "ResNet-18 / ImageNet training (PFLOPs)", "assumption": "dense",
             "ours": 3 * IMAGENET_TRAIN * EPOCHS * dense_f / 1e15, "paper": PAPER["dense"], "forward_frac": 1.0}]
    for p in (0.1, 0.3):
        inner = [round((1 - p) * c) for c in WIDTHS]
        cfg = [x for pair in zip([round((1 - p) * c) for c in INPUTS], inner) for x in pair]
        for name, ch in (("inner", inner), ("inner+select", cfg)):
            f = forward(ch)
            rows.append({"network": f"ResNet-18 EB Train p={p:.0%} (PFLOPs)", "assumption": name,
                         "ours": total(dense_f, f), "paper": PAPER[p], "forward_frac": f / dense_f})
        implied = (PAPER[p] * 1e15 / (3 * IMAGENET_TRAIN) - TICKET * dense_f) / (EPOCHS - TICKET) / dense_f
        rows.append({"network": f"ResNet-18 EB Train p={p:.0%} (PFLOPs)", "assumption": "implied by paper",
                     "ours": float("nan"), "paper": PAPER[p], "forward_frac": implied})
    df = pd.DataFrame(rows)
    df["error_pct"] = 100 * (df["ours"] / df["paper"] - 1)
    with pd.option_context("display.width", 160, "display.float_format", "{:.4f}".format):
        print(df.to_string(index=False))
    best = {p: min((r for r in rows if r["assumption"] in ("inner", "inner+select") and r["paper"] == PAPER[p]),
                   key=lambda r: abs(r["ours"] / r["paper"] - 1)) for p in (0.1, 0.3)}
    print("\nwithin 1 %:", {f"p={p:.0%}": abs(best[p]["ours"] / PAPER[p] - 1) <= 0.01 for p in best})
    print(json.dumps({
        "vgg16_cifar100_gflops": round(rows[0]["ours"], 4),
        "resnet18_dense_pflops": round(rows[1]["ours"], 2),
        "resnet18_eb10_pflops": round(best[0.1]["ours"], 2), "resnet18_eb10_assumption": best[0.1]["assumption"],
        "resnet18_eb30_pflops": round(best[0.3]["ours"], 2), "resnet18_eb30_assumption": best[0.3]["assumption"],
        "errors_pct": {"dense": round(float(df["error_pct"][1]), 2),
                       "eb10": round(100 * (best[0.1]["ours"] / PAPER[0.1] - 1), 2),
                       "eb30": round(100 * (best[0.3]["ours"] / PAPER[0.3] - 1), 2)},
    }))


if __name__ == "__main__":
    main()
