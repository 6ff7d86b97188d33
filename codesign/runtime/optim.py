"""Adam for every training loop of the project, on torch's own functional update.

``torch.optim.Adam`` wraps ``Optimizer.add_param_group`` (called by its constructor) and ``step`` in
``torch._disable_dynamo`` / ``_use_grad_for_differentiable``, which import ``torch._dynamo`` on the
first call: 1.3 s of a 2-core CPU's time, a third of a Cora run's process wall, for a compiler no run
here uses. :class:`Adam` keeps the same state (``step``, ``exp_avg``, ``exp_avg_sq`` per parameter,
created lazily at the first step a parameter has a gradient) and calls the same update function the
class calls, ``torch.optim.adam.adam`` (``foreach=None``: torch picks the per-tensor loop for CPU
tensors and ``_foreach_*`` ops for CUDA ones, as the class does), so its steps are the class's steps
(``tests/test_optim.py`` compares them). The update (Kingma & Ba 2015, L2 weight decay added to the
gradient, as ``torch.optim.Adam``):

    g_t = grad + wd * p;  m_t = b1 m + (1 - b1) g_t;  v_t = b2 v + (1 - b2) g_t^2
    p  -= lr * (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)

Only what the project uses: no amsgrad, maximize, capturable, fused or differentiable modes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim.adam import adam as _adam_update

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults
EPS = 1e-8


class Adam:
    """Adam over ``params``: tensors, or param groups (dicts with ``params`` and optionally ``lr``,
    ``weight_decay``, ``foreach``); the interface the loops use (``param_groups``, ``state``,
    ``zero_grad``, ``step``) matches ``torch.optim.Adam``'s."""

    def __init__(self, params: Iterable[Tensor] | Sequence[dict[str, Any]], lr: float,
                 weight_decay: float = 0.0) -> None:
        items = list(params)
        groups = items if items and isinstance(items[0], dict) else [{"params": items}]
        self.param_groups: list[dict[str, Any]] = []
        for g in groups:
            group = {"lr": lr, "weight_decay": weight_decay, "foreach": None, **g}
            group["params"] = list(group["params"])
            self.param_groups.append(group)
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop the gradients (``set_to_none``, as ``torch.optim`` does by default)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter that has a gradient."""
        for group in self.param_groups:
            params, grads, avgs, sqs, steps = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:  # lazily, as torch.optim.Adam: step on the CPU, moments like p
                    state = self.state[p] = {
                        "step": torch.tensor(0.0, dtype=torch.get_default_dtype()),
                        "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                        "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
                params.append(p)
                grads.append(p.grad)
                avgs.append(state["exp_avg"])
                sqs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if params:
                _adam_update(params, grads, avgs, sqs, [], steps, foreach=group["foreach"], amsgrad=False,
                             beta1=BETAS[0], beta2=BETAS[1], lr=group["lr"], weight_decay=group["weight_decay"],
                             eps=EPS, maximize=False)
