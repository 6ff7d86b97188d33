"""Bring your own model: price any ``torch.nn.Module`` on a dataset's real shapes, on device profiles.

``price_model(model_or_factory, dataset, devices)`` builds the model (``FACTORY(num_features,
num_classes)``), runs it once under :mod:`codesign.dispatch.workload` on the dataset's tensors (a graph: the
whole graph, ``model(x, edge_index)``; images: one batch, ``model(images)``), and prices the traced
workloads with the analytical model (:func:`costmodels.price_workload`):

* ``inference``: one forward in ``eval()`` mode (one full-graph pass / one batch);
* ``train_epoch``: forward in ``train()`` mode + cross-entropy loss on the training nodes (graphs)
  or the batch (images), the backward the cost model derives from it, and one Adam step (graphs:
  one full-graph step per epoch; images: ``ceil(num_train / batch)`` SGD steps).

Every number is an analytical estimate from the traced operators, not a measurement. Operators the
tracer does not know are listed (``unknown_ops``) and priced as memory traffic only.
``load_factory("FILE.py:NAME")`` imports a user's file and returns its factory.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from costmodels import IMAGES, list_profiles, load_profile, price_workload
from costmodels.errors import CodesignError
from costmodels.stats import image_key

from .opcount import count_model_steps
from .workload import Traced, trace_workload

Factory = Callable[[int, int], nn.Module]
TASKS = ("graph", "cnn")


def load_factory(spec: str) -> Factory:
    """``FILE.py:FACTORY`` -> the callable ``FACTORY`` defined in that file."""
    path_text, _, attr = spec.rpartition(":")
    if not path_text or not attr:
        raise CodesignError(f"--module {spec!r}: expected FILE.py:FACTORY, e.g. my_models.py:make_gcn")
    path = Path(path_text)
    if not path.is_file():
        raise CodesignError(f"--module {spec!r}: no file {path_text!r}")
    name = f"codesign_user_module_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise CodesignError(f"--module {spec!r}: {path_text!r} is not an importable Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's file: its own error, in one line
        sys.modules.pop(name, None)
        raise CodesignError(f"--module {spec!r}: importing {path_text!r} failed ({type(exc).__name__}: "
                            f"{_first_line(exc)}); fix the file") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise CodesignError(f"--module {spec!r}: {path_text!r} defines no callable {attr!r}")
    return factory


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else "no message")[:160]


def _model(model: nn.Module | Factory, f_in: int, classes: int) -> nn.Module:
    try:
        built = model if isinstance(model, nn.Module) else model(f_in, classes)
    except (Exception, SystemExit) as exc:
        raise CodesignError(f"the factory raised {type(exc).__name__} ({_first_line(exc)}) when called as "
                            f"FACTORY({f_in}, {classes}); it must take (num_features, num_classes) and return a "
                            "torch.nn.Module") from None
    if not isinstance(built, nn.Module):
        raise CodesignError(f"the factory returned {type(built).__name__}, not a torch.nn.Module; "
                            "FACTORY(num_features, num_classes) must return the model")
    if not any(p.requires_grad for p in built.parameters()):  # a train epoch's backward needs one
        raise CodesignError(f"the model {type(built).__name__} has no trainable parameters, so it has no train epoch "
                            "to price; add a layer with weights (e.g. a torch.nn.Linear head)")
    return built


def task_of(dataset: str) -> str:
    return "cnn" if image_key(dataset) in IMAGES else "graph"


def trace_graph_model(model: nn.Module | Factory, data: Any, name: str = "model") -> tuple[Traced, Traced]:
    """``(train, inference)`` traces of a graph model on ``data`` (a ``GraphData``)."""
    net = _model(model, data.num_features, data.num_classes)
    params = [p for p in net.parameters() if p.requires_grad]
    x, edge_index, y, train_mask = data.x, data.edge_index, data.y, data.train_mask
    sizes = dict(input_values=float(x.numel()), graph_edges=float(edge_index.size(1)), features=x)

    def loss(out: torch.Tensor) -> torch.Tensor:
        """Node logits ``[N, C]``: the training nodes' loss. Graph logits ``[G, C]`` (a pooled head): one loss
        term per graph row (the labels' values do not change the price)."""
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise CodesignError(f"--module {name}: the model returned {shape}; a graph model must return logits "
                                f"[N, C] (one row per node, N = {data.num_nodes}) or [G, C] (one row per graph)")
        if out.size(0) == data.num_nodes:
            return F.cross_entropy(out[train_mask], y[train_mask])
        return F.cross_entropy(out, torch.zeros(out.size(0), dtype=torch.long, device=out.device))

    def train_step() -> None:
        loss(net(x, edge_index))

    net.train()
    with torch.random.fork_rng(devices=[]):  # the dropout draws leave the caller's random state alone
        torch.manual_seed(0)
        train = trace_workload(train_step, params, f"{name}/{data.name}/train", **sizes)
    net.eval()
    infer = trace_workload(lambda: net(x, edge_index), params, f"{name}/{data.name}/infer", **sizes)
    counts = count_model_steps(net, lambda m: m(x, edge_index), loss)
    return replace(train, counts=counts), replace(infer, counts=counts)


def trace_image_model(model: nn.Module | Factory, dataset: str, batch: int = 128,
                      name: str = "model") -> tuple[Traced, Traced, int]:
    """``(train, inference, steps per epoch)`` traces of an image model on one batch of ``dataset``."""
    s = IMAGES[image_key(dataset)]
    net = _model(model, s.channels, s.num_classes)
    params = [p for p in net.parameters() if p.requires_grad]
    images = torch.randn(batch, s.channels, s.height, s.width)
    labels = torch.randint(0, s.num_classes, (batch,))
    sizes = dict(input_values=float(images.numel()))
    net.train()
    train = trace_workload(lambda: F.cross_entropy(net(images), labels), params, f"{name}/{s.name}/train", **sizes)
    net.eval()
    infer = trace_workload(lambda: net(images), params, f"{name}/{s.name}/infer", **sizes)
    counts = count_model_steps(net, lambda m: m(images), lambda out: F.cross_entropy(out, labels), "sgd")
    return replace(train, counts=counts), replace(infer, counts=counts), math.ceil(s.num_train / batch)


def price_model(model: nn.Module | Factory, dataset: str, devices: Sequence[str] | None = None, *,
                task: str | None = None, dtype: str = "fp32", batch_size: int = 128,
                data_root: str | None = None, name: str = "model") -> list[dict[str, Any]]:
    """Price ``model`` on ``dataset`` on each device (profile names or TOML paths; default: all built-in).

    Returns one row per (device, phase) with ``flops``, ``macs``, ``dram_bytes``, ``memory_bytes``,
    ``latency_s``, ``energy_j`` (analytical estimates) and ``unknown_ops`` (name -> count).
    """
    task = task or task_of(dataset)
    if task not in TASKS:
        raise CodesignError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "graph":
        from codesign.graphs.data import load_dataset

        data = load_dataset(dataset, data_root)
        train, infer = trace_graph_model(model, data, name)
        steps, optimizer, checksum = 1, "adam", data.checksum
    else:
        train, infer, steps = trace_image_model(model, dataset, batch_size, name)
        optimizer, checksum = "sgd", None
    names = list(devices) if devices else [n for n in list_profiles() if "/" not in n]
    unknown = dict(sorted({**train.unknown, **infer.unknown}.items()))
    batch = data.num_nodes if task == "graph" else batch_size
    rows = []
    for device_name in names:
        device = load_profile(device_name)
        priced = []
        for phase, traced, training, k in (("inference", infer, False, 1), ("train_epoch", train, True, steps)):
            workload = with_counted_launches(traced, device, training)
            cost = price_workload(workload, device, training=training, optimizer=optimizer, dtype=dtype)
            priced.append(_row(device.name, phase, cost.scaled(k), batch, "epoch" if training else "batch"))
        if infer.preprocessing is not None and infer.preprocessing.ops:
            cost = price_workload(infer.preprocessing, device, training=False, dtype=dtype)
            priced.append(_row(device.name, "graph_preprocessing", cost, batch, "graph"))
        for row in priced:
            row.update({"model": name, "dataset": dataset, "dataset_checksum": checksum, "dtype": dtype,
                        "parameters": infer.parameters, "unknown_ops": unknown,
                        "source": "estimate: analytical model on the device profile, from a torch-dispatch trace"})
        rows += priced
    return rows


def with_counted_launches(traced: Traced, device: Any, training: bool) -> Any:
    """The traced workload with the launch term of the model's own dispatched ops on ``device``
    (``opcount.counts_apply``/``target_for``: the rule the built-in models follow), else as traced
    (the launch formula's fallback, as for the built-ins on accelerators and calibrated profiles)."""
    from .opcount import counts_apply, target_for

    if traced.counts is None or not counts_apply(device):
        return traced.workload
    kernels, ops = traced.counts.for_target(target_for(device.kind), training)
    return replace(traced.workload, kernel_launches=float(kernels), host_ops=float(ops))


def _row(device: str, phase: str, cost: Any, batch: int, per: str) -> dict[str, Any]:
    """One priced row: what ``codesign estimate --json`` rows carry (``per``, ``batch_size``, ``regime``)."""
    from costmodels.launch import regime_of

    row: dict[str, Any] = {"device": device, "phase": phase, "per": per, "batch_size": batch}
    row.update({key: float(v) for key, v in cost.to_dict().items()})
    row["regime"] = regime_of(cost)
    return row
