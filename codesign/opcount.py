"""Count the ATen operations one real training step dispatches, per phase (``TorchDispatchMode``).

On a GPU every dispatched ATen operation that computes something launches at least one kernel, and
the framework pays a host-side cost for each; on graphs the size of Cora or PubMed that, not FLOPs
or bytes, sets the time of a step. This module runs the project's own step code (the functions the
methods call: ``train_step``, ``search``, the UGS mask-training body, ``evaluate``) on a tiny
synthetic graph under a dispatch mode that records every ATen call, and keeps two numbers:

* ``ops``: every ATen operation dispatched (each pays the framework's host-side cost);
* ``kernels``: ``ops`` minus views and pure allocations (``aten.view``, ``t``, ``detach``,
  ``empty`` ...: :data:`NO_KERNEL` and every op whose schema says it returns an alias), i.e. the
  operations that launch a device kernel.

Counts do not depend on the graph's size (``test_opcount.py`` checks two sizes), so a tiny graph
stands for Cora or PubMed. They do depend on the model, its depth, GAT's heads (one aggregation per
head), the method's phase and the optimiser's implementation: ``target="cuda"`` builds Adam with
``foreach=True`` (what torch picks for CUDA tensors: one ``_foreach_*`` op per step of the update
over all tensors of a group), ``target="cpu"`` with ``foreach=False`` (the per-tensor loop torch
runs on CPU tensors).

Phases (``KINDS``), per epoch:

* ``train``: ``train_step`` without weight masks (dense, pretrain, retraining a graph-only ticket);
* ``train_masked``: ``train_step`` keeping pruned weights at zero (gebt/random/ugs retraining);
* ``search_joint``: one steady-state GEBT search epoch (weight step, edge-value step, ADMM update,
  graph and weight masks, detector) = ``search`` over ``fifo + 2`` minus over ``fifo + 1`` epochs;
* ``search_graph``: the same for GEB/SGCN (weights frozen: no weight step, no weight mask);
* ``ugs_mask``: one UGS mask-training epoch (the loop body of ``methods/ugs.py``);
* ``inference``: one forward pass in eval mode without autograd;
* ``eval``: ``evaluate`` (the per-epoch validation pass ``fit`` runs after each training step).

``python -m codesign.opcount --write`` regenerates the committed table :data:`TABLE_PATH` that
``codesign estimate`` and run pricing read (no torch needed to read it).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).with_name("kernel_counts.json")
KINDS = ("train", "train_masked", "search_joint", "search_graph", "ugs_mask", "inference", "eval")
TARGETS = ("cuda", "cpu")
TINY_GRAPH = "sbm:n=1600,avg_degree=4,features=8,classes=4,seed=1"  # every split non-empty
# ops that allocate or re-describe memory without computing (no kernel on a GPU)
NO_KERNEL = frozenset({
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "detach", "lift_fresh",
    "alias", "view", "_unsafe_view", "t", "expand", "as_strided", "unsqueeze", "squeeze", "select",
    "slice", "permute", "transpose", "_reshape_alias", "reshape", "unbind", "split", "resize_",
    "set_", "sparse_csr_tensor", "_sparse_csr_tensor_unsafe", "sparse_compressed_tensor",
    "_local_scalar_dense",  # .item()/float(): a device-to-host copy and a sync, not a launched kernel
})
SKIPPED_PREFIX = "_record_function"  # profiler markers the optimiser dispatches: not operations


@dataclass(frozen=True)
class OpCount:
    """ATen operations of one phase step: all dispatched (``ops``) and kernel-launching (``kernels``)."""

    ops: int
    kernels: int
    by_op: dict[str, int]

    def __sub__(self, other: OpCount) -> OpCount:
        names = set(self.by_op) | set(other.by_op)
        diff = {k: self.by_op.get(k, 0) - other.by_op.get(k, 0) for k in names}
        return OpCount(self.ops - other.ops, self.kernels - other.kernels, {k: v for k, v in diff.items() if v})

    def to_dict(self) -> dict[str, Any]:
        return {"ops": self.ops, "kernels": self.kernels, "by_op": dict(sorted(self.by_op.items()))}


def _launches_kernel(func: Any) -> bool:
    name = func.overloadpacket.__name__
    if name in NO_KERNEL:
        return False
    return not bool(getattr(func, "is_view", False))


def count_ops(fn: Callable[[], Any]) -> OpCount:
    """Run ``fn()`` under a ``TorchDispatchMode`` and count the ATen operations it dispatches."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts: Counter[str] = Counter()
    kernels = [0]

    class _Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            name = func.overloadpacket.__name__
            if name.startswith(SKIPPED_PREFIX):
                return func(*args, **(kwargs or {}))
            counts[name] += 1
            if _launches_kernel(func):
                kernels[0] += 1
            return func(*args, **(kwargs or {}))

    with _Counter():
        fn()
    return OpCount(sum(counts.values()), kernels[0], dict(counts))


@dataclass(frozen=True)
class CountKey:
    """What an op count depends on (not the graph's size)."""

    model: str
    layers: int = 2
    heads: int = 8
    graph_copies: int = 1  # edge-value vectors a search trains (per-layer graphs: the layer count)
    target: str = "cuda"


def _setup(key: CountKey, graph: str = TINY_GRAPH):  # type: ignore[no-untyped-def]
    import torch

    from .graphs.config import GraphTrainConfig
    from .graphs.data import load_dataset
    from .graphs.methods.common import RunContext

    target = key.target

    class _Ctx(RunContext):
        def optimizer(self, model):  # type: ignore[no-untyped-def]
            opt = super().optimizer(model)
            for group in opt.param_groups:  # the implementation torch picks on the target device
                group["foreach"] = target == "cuda"
            return opt

    torch.manual_seed(0)
    config = GraphTrainConfig(model=key.model, layers=key.layers, heads=key.heads, epochs=1,
                              graph_sharing="per-layer" if key.graph_copies > 1 else "shared",
                              eta=1e-12)  # the detector never fires while counting
    data = load_dataset(graph)
    return _Ctx(config, data, torch.device("cpu"), progress=False)


def count_phase(key: CountKey, kind: str, graph: str = TINY_GRAPH) -> OpCount:
    """ATen operations of one ``kind`` step (see the module docstring) for ``key`` on ``graph``."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    from .graphs.masks import global_weight_mask
    from .graphs.methods.common import WeightMasks, edge_weight, evaluate, train_step
    from .graphs.methods.search import search

    if kind not in KINDS:
        raise ValueError(f"unknown phase kind {kind!r}; known: {', '.join(KINDS)}")
    ctx = _setup(key, graph)
    data = ctx.data
    model = ctx.new_model()
    if kind in ("train", "train_masked"):
        opt = ctx.optimizer(model)
        masks = WeightMasks(model, global_weight_mask(dict(model.maskable()), 0.5) if kind == "train_masked"
                            else None)
        edge_index = data.layer_edges(None)
        train_step(model, opt, data, edge_index, None, masks)  # warm: caches, optimizer state
        return count_ops(lambda: train_step(model, opt, data, edge_index, None, masks))
    if kind in ("inference", "eval"):
        model.eval()
        if kind == "eval":
            return count_ops(lambda: evaluate(model, data, data.edge_index, None))

        def forward() -> None:
            with torch.no_grad():
                model(data.x, data.edge_index, None)
        forward()
        return count_ops(forward)
    if kind.startswith("search"):
        joint = kind == "search_joint"
        if not joint:
            for p in model.parameters():
                p.requires_grad_(False)
        fifo = ctx.config.fifo
        ratio = ctx.config.weight_sparsity if joint else None

        def run(epochs: int) -> OpCount:
            torch.manual_seed(0)
            m = ctx.new_model()
            if not joint:
                for p in m.parameters():
                    p.requires_grad_(False)
            c = type(ctx)(ctx.config, data, ctx.device, False)
            return count_ops(lambda: search(c, m, epochs, "search", train_weights=joint, weight_ratio=ratio))
        return run(fifo + 2) - run(fifo + 1)
    return _count_ugs_mask(ctx, model, F, functional_call, edge_weight)


def _count_ugs_mask(ctx, model, F, functional_call, edge_weight) -> OpCount:  # type: ignore[no-untyped-def]
    """One epoch of ``methods/ugs.py``'s mask training (its loop body, minus the best-epoch copy)."""
    import torch

    from .graphs.methods.ugs import S1, S2

    data, c = ctx.data, ctx.config
    alive_g = torch.ones(data.num_undirected, dtype=torch.bool)
    alive_w = {k: torch.ones_like(p, dtype=torch.bool) for k, p in model.maskable().items()}
    edge_index, und = data.edges_for(alive_g)
    m_a = torch.ones(data.num_undirected, requires_grad=True)
    m_w = {k: torch.ones_like(p, requires_grad=True) for k, p in model.maskable().items()}
    opt = ctx.optimizer(model)
    mask_opt = torch.optim.Adam([m_a, *m_w.values()], lr=c.lr)
    for group in mask_opt.param_groups:
        group["foreach"] = opt.param_groups[0]["foreach"]

    def epoch() -> None:
        model.train()
        params = {k: p * m_w[k] * alive_w[k] for k, p in model.maskable().items()}
        out = functional_call(model, params, (data.x, edge_index, edge_weight(m_a, und)))
        loss = F.nll_loss(out[data.train_mask], data.y[data.train_mask])
        loss = loss + S1 * m_a[alive_g].abs().sum() + S2 * sum(m[alive_w[k]].abs().sum() for k, m in m_w.items())
        opt.zero_grad()
        mask_opt.zero_grad()
        loss.backward()
        opt.step()
        mask_opt.step()
        with torch.no_grad():
            model.eval()
            pred = functional_call(model, params, (data.x, edge_index, edge_weight(m_a, und)))
            float((pred.argmax(-1) == data.y)[data.val_mask].float().mean())

    epoch()
    return count_ops(epoch)


# -- which phase kind a recorded phase is ------------------------------------------------------

def phase_kind(method: str, phase_name: str, weight_masked: bool) -> str:
    """The :data:`KINDS` entry of a method's phase (names as the methods record them)."""
    if phase_name.startswith("ugs-mask"):
        return "ugs_mask"
    if phase_name in ("search", "sparsify"):
        return "search_joint" if method == "gebt" else "search_graph"
    return "train_masked" if weight_masked else "train"


def table_key(key: CountKey, kind: str) -> str:
    heads = key.heads if key.model == "gat" else 1
    copies = key.graph_copies if kind.startswith("search") else 1
    return f"{key.model}|L{key.layers}|H{heads}|G{copies}|{key.target}|{kind}"


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, int]]:
    try:
        return dict(json.loads(TABLE_PATH.read_text())["counts"])
    except FileNotFoundError:
        return {}


@lru_cache(maxsize=256)
def lookup(key: CountKey, kind: str) -> OpCount:
    """The committed count of ``kind`` for ``key``; counted now (a few seconds) when not in the table."""
    row = _table().get(table_key(key, kind))
    if row is not None:
        return OpCount(int(row["ops"]), int(row["kernels"]), {})
    return count_phase(key, kind)


def kernel_launches(model: str, layers: int, heads: int, kind: str, *, graph_copies: int = 1,
                    target: str = "cuda") -> int:
    """Kernel-launching ATen ops of one ``kind`` step (what ``PhaseSpec.kernel_launches`` holds)."""
    return lookup(CountKey(model, layers, heads, graph_copies, target), kind).kernels


def host_ops(model: str, layers: int, heads: int, kind: str, *, graph_copies: int = 1,
             target: str = "cuda") -> int:
    """All dispatched ATen ops of one ``kind`` step (each pays the framework's host cost)."""
    return lookup(CountKey(model, layers, heads, graph_copies, target), kind).ops


TORCH_KINDS = ("gpu", "cpu", "edge")  # profile kinds that run PyTorch eager (an accelerator keeps the fallback)


def counts_apply(profile: Any) -> bool:
    """Whether a profile's launch term takes counted launches: devices that run PyTorch eager, unless
    calibrated (``codesign calibrate`` fits the per-kernel overhead against the fallback formula's
    kernel count, so a calibrated profile keeps that formula until calibration counts too)."""
    return profile.kind in TORCH_KINDS and "calibration" not in profile.sections


def target_for(device_kind: str | None) -> str:
    """The optimiser implementation a device runs: ``cpu`` for CPU profiles, else ``cuda``."""
    return "cpu" if device_kind == "cpu" else "cuda"


def phase_launches(spec: dict[str, Any], method: str, phase: dict[str, Any], target: str) -> tuple[int, int]:
    """(kernel launches, framework ops) of one epoch of a recorded phase (``PhaseSpec.to_dict()``)."""
    weight_masked = method in ("gebt", "random", "ugs") or float(phase.get("weight_density", 1.0)) < 1.0
    kind = phase_kind(method, str(phase["name"]), weight_masked)
    key = CountKey(spec["model"], int(spec["layers"]), int(spec.get("heads", 8)),
                   int(phase.get("graph_copies", 1)), target)
    c = lookup(key, kind)
    return c.kernels, c.ops


def inference_launches(spec: dict[str, Any], target: str) -> tuple[int, int]:
    """(kernel launches, framework ops) of one inference forward."""
    c = lookup(CountKey(spec["model"], int(spec["layers"]), int(spec.get("heads", 8)), 1, target), "inference")
    return c.kernels, c.ops


def launches_for_estimate(model: str, layers: int, heads: int, weight_masked: bool,
                          profile: Any) -> tuple[Any, Any, Any]:
    """(kernels, ops) of ``codesign estimate``'s train epoch, GEBT search epoch and inference;
    ``None`` each where counts do not apply (:func:`counts_apply`: the fallback formula prices it)."""
    if not counts_apply(profile):
        return None, None, None
    target = target_for(profile.kind)
    out = []
    for kind in ("train_masked" if weight_masked else "train", "search_joint", "inference"):
        c = lookup(CountKey(model, layers, heads, 1, target), kind)
        out.append((c.kernels, c.ops))
    return out[0], out[1], out[2]


def measure_host_cost_us(repeats: int = 5, steps: int = 20) -> dict[str, Any]:
    """The framework's host-side cost per dispatched op on this CPU, two ways (min over ``repeats``):
    a 1-element ``torch.add`` in a loop, and a whole GCN training step on a 64-node graph (tiny
    tensors: the step's time is dispatch, not arithmetic) divided by its counted ops."""
    import time

    import torch

    from .graphs.methods.common import train_step

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
                      "train_step on sbm:n=64 divided by its counted ATen ops (codesign.opcount.measure_host_cost_us)"}


def build_table(layers: tuple[int, ...] = (2, 1, 3, 4), path: Path | None = None) -> dict[str, Any]:
    """Counts for every model, depth, phase kind and target (GAT: 8 heads; searches: shared and
    per-layer graphs); written to ``path`` after every depth, so a long run keeps what it counted."""
    import torch

    table: dict[str, Any] = {
        "source": "python -m codesign.opcount --write: ATen ops dispatched by one step of the project's own step "
                  f"code on {TINY_GRAPH} (TorchDispatchMode), torch {torch.__version__}",
        "key": "model|L<layers>|H<gat heads, else 1>|G<graph copies, searches only>|<target>|<phase kind>",
        "counts": {}}
    for n in layers:
        for model in ("gcn", "gat", "gin", "sage"):
            for target in TARGETS:
                for kind in KINDS:
                    for g in ((1, n) if kind.startswith("search") and n > 1 else (1,)):
                        key = CountKey(model, n, 8, g, target)
                        c = count_phase(key, kind)
                        table["counts"][table_key(key, kind)] = {"ops": c.ops, "kernels": c.kernels}
            print(f"counted {model} L{n}", flush=True)
        if path is not None:
            path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return table


def measure_cuda(model: str, dataset: str, epochs: int = 200, device_profile: str | None = None,
                 run_on: str = "cuda") -> dict[str, Any]:
    """On a CUDA GPU: kernels one training step and one validation pass really launch (torch profiler,
    CUDA activity) beside the counted ones, and the measured time of ``epochs`` x (train step +
    validation) beside the analytical prediction on ``device_profile`` (for ``scripts/gpu_check.sh``)."""
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile

    from .graphs.data import load_dataset
    from .graphs.methods.common import evaluate, train_step

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
    p = argparse.ArgumentParser(description="count the ATen ops of one step per phase (TorchDispatchMode)")
    p.add_argument("--write", action="store_true", help=f"regenerate {TABLE_PATH.name}")
    p.add_argument("--model", default="gcn")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--target", choices=TARGETS, default="cuda")
    p.add_argument("--measure-cuda", metavar="JSON", help="on a GPU: real kernel counts and epoch time -> JSON file")
    p.add_argument("--dataset", default="cora", help="graph for --measure-cuda")
    p.add_argument("--profile", default=None, help="device profile to predict the --measure-cuda epochs on")
    args = p.parse_args(argv)
    if args.measure_cuda:
        res = measure_cuda(args.model, args.dataset, device_profile=args.profile)
        Path(args.measure_cuda).write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps({k: v for k, v in res.items() if k not in ("train", "eval")}))
        return 0
    if args.write:
        table = build_table(path=TABLE_PATH)
        print(f"wrote {len(table['counts'])} counts to {TABLE_PATH}")
        return 0
    key = CountKey(args.model, args.layers, 8, 1, args.target)
    for kind in KINDS:
        c = count_phase(key, kind)
        print(f"{kind:<13} ops {c.ops:5d}  kernels {c.kernels:5d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
