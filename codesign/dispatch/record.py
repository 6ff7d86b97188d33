"""The one dispatch recorder: every ATen operation a piece of torch code dispatches, seen once.

:class:`DispatchRecorder` is a ``TorchDispatchMode`` that runs each operation and records

* whether it launches a device kernel (:func:`launches_kernel`: views and pure allocations do not);
* whether it is a *graph op* (:func:`graph_only`): computed from the graph structure alone (edge-list
  selects and reshapes, self-loop insertion, masks of the edge list), the same every pass over one
  graph, so priced once per graph and left out of a step's launch term;
* per ATen name, the step's operations (``counts``: all but graph ops and profiler markers) and the
  graph ops (``graph_counts``), with their kernel launches (``kernels``, ``graph_kernels``).

Both users of torch dispatch run it: ``opcount.count_ops`` (the op and launch counts of the project's
own steps, and of a user's model in ``opcount.count_model_steps``) and the tracer
that turns a user's model into a cost-model ``Workload`` (:mod:`codesign.dispatch.workload`), which
subclasses it and classifies each operation in :meth:`DispatchRecorder.on_op`. So a traced model and
a built-in get their op counts from this one code path.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

# ops that allocate or re-describe memory without computing (no kernel on a GPU)
NO_KERNEL = frozenset({
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "detach", "lift_fresh",
    "alias", "view", "_unsafe_view", "t", "expand", "as_strided", "unsqueeze", "squeeze", "select",
    "slice", "permute", "transpose", "_reshape_alias", "reshape", "unbind", "split", "resize_",
    "set_", "sparse_csr_tensor", "_sparse_csr_tensor_unsafe", "sparse_compressed_tensor",
    "_local_scalar_dense",  # .item()/float(): a device-to-host copy and a sync, not a launched kernel
})
SKIPPED_PREFIX = "_record_function"  # profiler markers the optimiser dispatches: not operations
RANDOM_PREFIXES = ("rand", "bernoulli", "native_dropout", "normal", "uniform", "exponential", "cauchy", "log_normal",
                   "geometric", "multinomial")


def launches_kernel(func: Any) -> bool:
    """Whether a dispatched ATen op launches a device kernel (not a view, alias or bare allocation)."""
    name = func.overloadpacket.__name__
    if name in NO_KERNEL:
        return False
    return not bool(getattr(func, "is_view", False))


def numeric(t: Any) -> bool:
    """A tensor of real or complex values (what a model computes), not integers or booleans (indices, masks)."""
    return bool(t.is_floating_point() or t.is_complex())


def graph_only(name: str, inputs_static: list[bool], outputs: list[Any]) -> tuple[bool, bool]:
    """The graph-preprocessing rule: ``(static, graph_op)``. A result is *static* when no random draw
    made it and every tensor input is (integer and boolean tensors are, unless a float computation made
    them: ``float_scores.argsort()`` is not); an op is a *graph op* when it has inputs, its result is
    static and it writes no real or complex tensor."""
    static = not name.startswith(RANDOM_PREFIXES) and all(inputs_static)
    graph_op = bool(inputs_static) and static and not any(numeric(o) for o in outputs if isinstance(o, torch.Tensor))
    return static, graph_op


class DispatchRecorder(TorchDispatchMode):
    """Record every ATen operation dispatched inside ``with recorder:`` (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.static: WeakTensorKeyDictionary = WeakTensorKeyDictionary()  # tensors made here: static or not
        self.counts: Counter[str] = Counter()  # the step's operations
        self.kernels = 0
        self.graph_counts: Counter[str] = Counter()  # graph ops (priced once per graph)
        self.graph_kernels = 0

    def is_static(self, t: Any) -> bool:
        """A tensor made from the graph structure alone (inputs made outside: integer/bool ones are)."""
        if not isinstance(t, torch.Tensor):
            return True
        return bool(self.static.get(t, not numeric(t)))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]  # noqa: D105
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        ins = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        static, graph_op = graph_only(name, [self.is_static(a) for a in ins], outs)
        for o in outs:
            self.static[o] = static
        if not name.startswith(SKIPPED_PREFIX):
            kernel = launches_kernel(func)
            if graph_op:
                self.graph_counts[name] += 1
                self.graph_kernels += kernel
            else:
                self.counts[name] += 1
                self.kernels += kernel
        self.on_op(func, name, args, kwargs, out, ins, outs, static, graph_op)
        return out

    def on_op(self, func: Any, name: str, args: tuple, kwargs: dict, out: Any, ins: list[torch.Tensor],
              outs: list[torch.Tensor], static: bool, graph_op: bool) -> None:
        """Called after each operation ran and was counted; subclasses classify it (the tracer)."""
