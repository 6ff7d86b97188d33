"""Measured counterparts of ``codesign/dispatch/opcount.py``: host cost per op here, kernels on a GPU.

* :func:`measure_host_cost_us`: the framework's host-side cost per dispatched op on this CPU;
* :func:`measure_cuda` (``python -m codesign.machine.opmeasure --measure-cuda out.json``, run by
  ``scripts/gpu_check.sh``): on a CUDA GPU, the kernels one training step and one validation pass
  really launch (torch profiler, CUDA activity) beside the counted ones, and the measured time of
  200 epochs beside the analytical prediction on a device profile.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from codesign.dispatch.opcount import CountKey, _setup, count_ops, lookup


def measure_host_cost_us(repeats: int = 5, steps: int = 20) -> dict[str, Any]:
    """The framework's host-side cost per dispatched op on this CPU, two ways (min over ``repeats``):
    a 1-element ``torch.add`` in a loop, and a whole GCN training step on a 64-node graph (tiny
    tensors: the step's time is dispatch, not arithmetic) divided by its counted ops; one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # dispatch cost, not thread-pool wake-ups (which a contended machine inflates)
    try:
        return _measure(repeats, steps)
    finally:
        torch.set_num_threads(threads)


def _measure(repeats: int, steps: int) -> dict[str, Any]:
    import time

    import torch

    from codesign.graphs.methods.common import train_step

    a, b = torch.ones(1), torch.ones(1)
    add = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(2000):
            torch.add(a, b)
        add.append((time.perf_counter() - t) / 2000)
    ctx = _setup(CountKey("gcn", 2, 8, 1, "cpu"), "sbm:n=64,avg_degree=4,features=8,classes=4,seed=1")
    model, data = ctx.new_model(), ctx.data
    opt = ctx.optimizer(model)

    def step() -> None:
        train_step(model, opt, data, data.edge_index, None, None)
    for _ in range(3):
        step()
    ops = count_ops(step).ops
    per_step = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        per_step.append((time.perf_counter() - t) / steps)
    return {"tiny_add_us": min(add) * 1e6, "tiny_step_us_per_op": min(per_step) / ops * 1e6,
            "tiny_step_ops": ops, "tiny_step_s": min(per_step), "threads": torch.get_num_threads(),
            "source": "measured on this machine: min over repeats of a 1-element torch.add loop and of a GCN "
                      "train_step on sbm:n=64 over its counted ATen ops "
                      "(codesign.machine.opmeasure.measure_host_cost_us)"}


def measure_cuda(model: str, dataset: str, epochs: int = 200, device_profile: str | None = None,
                 run_on: str = "cuda") -> dict[str, Any]:
    """On a CUDA GPU: kernels one training step and one validation pass really launch (torch profiler,
    CUDA activity) beside the counted ones, and the measured time of ``epochs`` x (train step +
    validation) beside the analytical prediction on ``device_profile`` (for ``scripts/gpu_check.sh``)."""
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile

    from codesign.graphs.data import load_dataset
    from codesign.graphs.methods.common import evaluate, train_step

    ctx = _setup(CountKey(model, 2, 8, 1, "cuda"))
    dev = torch.device(run_on)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    data = load_dataset(dataset)
    fields = {k: getattr(data, k) for k in data.__dataclass_fields__}
    data = type(data)(**{k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in fields.items()})
    ctx = type(ctx)(ctx.config, data, dev, False)
    net = ctx.new_model()
    opt = ctx.optimizer(net)

    def epoch() -> None:
        train_step(net, opt, data, data.edge_index, None, None)
        evaluate(net, data, data.edge_index, None)
    for _ in range(5):
        epoch()
    sync()
    out: dict[str, Any] = {"model": model, "dataset": dataset,
                           "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else run_on}
    for kind, fn in (("train", lambda: train_step(net, opt, data, data.edge_index, None, None)),
                     ("eval", lambda: evaluate(net, data, data.edge_index, None))):
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            sync()
        names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        if not names:  # older layouts attach device kernels to their CPU op
            names = [k.name for e in prof.events() for k in getattr(e, "kernels", [])]
        counted = lookup(CountKey(model, 2, 8, 1, "cuda"), kind)
        out[kind] = {"measured_kernels": len(names), "counted_kernels": counted.kernels, "counted_ops": counted.ops,
                     "kernel_names": dict(Counter(n[:60] for n in names).most_common(12))}
    sync()
    t = time.perf_counter()
    for _ in range(epochs):
        epoch()
    sync()
    out["measured_epochs_s"] = time.perf_counter() - t
    out["epochs"] = epochs
    if device_profile:
        from costmodels import GNNSpec, graph_stats, load_profile
        from costmodels.analytical import price_workload
        from costmodels.workloads import gnn_workload

        prof_d, stats = load_profile(device_profile), graph_stats(dataset)
        spec = GNNSpec(model, 2, ctx.config.hidden, ctx.config.heads)  # the architecture measured above
        lat = 0.0
        for kind, training in (("train", True), ("eval", False)):
            c = lookup(CountKey(model, 2, 8, 1, "cuda"), kind)
            wl = gnn_workload(spec, stats, training=training)
            wl = type(wl)(wl.name, wl.ops, wl.input_values, wl.graph_edges, wl.extra_trainable, wl.info,
                          float(c.kernels), float(c.ops))
            lat += float(price_workload(wl, prof_d, training=training).latency_s)
        out["predicted_epochs_s"] = lat * epochs
        out["profile"] = device_profile
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="measure host cost per op (CPU) or real kernel launches (GPU)")
    p.add_argument("--measure-cuda", metavar="JSON", help="on a GPU: real kernel counts and epoch time -> JSON file")
    p.add_argument("--model", default="gcn")
    p.add_argument("--dataset", default="cora", help="graph for --measure-cuda")
    p.add_argument("--profile", default=None, help="device profile to predict the --measure-cuda epochs on")
    args = p.parse_args(argv)
    if args.measure_cuda:
        res = measure_cuda(args.model, args.dataset, device_profile=args.profile)
        from costmodels.atomic import write_text

        write_text(args.measure_cuda, json.dumps(res, indent=1) + "\n")
        print(json.dumps({k: v for k, v in res.items() if k not in ("train", "eval")}))
    else:
        print(json.dumps(measure_host_cost_us()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
