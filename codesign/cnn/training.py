"""The CNN training loop: SGD with momentum, a step schedule, and network-slimming's BN-L1 term.

* SGD lr 0.1, momentum 0.9, weight decay 1e-4; lr × 0.1 at 50% and 75% of the schedule (the
  papers' 80/120 of 160 epochs, scaled to ``--epochs``).
* Images stay on the CPU as uint8; each batch is normalised there and moved to the model's device.
* Sparsity on BN scales (network slimming): after backward, every BatchNorm2d weight gets
  grad += s · sign(gamma), the subgradient of s · Σ|gamma|; s = 1e-4 in the papers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn

from .data import ImageData, batches, normalise

BASE_LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-4


@dataclass(frozen=True)
class Schedule:
    """Step schedule over ``total`` epochs: lr = base · 0.1^(#milestones <= epoch)."""

    total: int
    base_lr: float = BASE_LR

    def lr(self, epoch: int) -> float:
        drops = sum(epoch >= m for m in (int(0.5 * self.total), int(0.75 * self.total)) if m > 0)
        return self.base_lr * 0.1**drops


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s parameters live (images stay on the CPU; each batch is moved there)."""
    return next(model.parameters()).device


def make_optimizer(model: nn.Module, lr: float = BASE_LR) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def bn_l1_subgradient(model: nn.Module, s: float) -> None:
    """grad(gamma) += s · sign(gamma) for every BatchNorm2d (in place, after backward)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight.grad is not None:
            m.weight.grad.add_(torch.sign(m.weight.detach()), alpha=s)


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, data: ImageData, *, batch_size: int, lr: float,
                g: torch.Generator, l1: float = 0.0) -> float:
    """One pass over the training set; returns the mean training loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    model.train()
    total, n = 0.0, 0
    loss_fn = nn.CrossEntropyLoss()
    device = model_device(model)
    for xb, yb in batches(data, batch_size, g, train=True):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        if l1 > 0:
            bn_l1_subgradient(model, l1)
        opt.step()
        total += float(loss.detach()) * len(yb)
        n += len(yb)
    return total / max(n, 1)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, batch_size: int = 1000, split: str = "test") -> float | None:
    """Top-1 accuracy on the ``split`` ("test" or "val") images, in [0, 1]; None for an empty split."""
    x, y = (data.test_x, data.test_y) if split == "test" else (data.val_x, data.val_y)
    if len(y) == 0:
        return None
    model.eval()
    correct, device = 0, model_device(model)
    for i in range(0, len(y), batch_size):
        xb = normalise(x[i:i + batch_size], data).to(device)
        correct += int((model(xb).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / len(y)


def progress(total: int, desc: str, enabled: bool | None = None):
    """A tqdm bar on stderr, shown only on a TTY unless ``enabled`` says otherwise."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=desc, disable=not show, file=sys.stderr, leave=False)
