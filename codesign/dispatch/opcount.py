"""Count the ATen operations one real training step dispatches, per phase (``TorchDispatchMode``).

On a GPU every dispatched ATen operation that computes something launches at least one kernel, and
the framework pays a host-side cost for each; on graphs the size of Cora or PubMed that, not FLOPs
or bytes, sets the time of a step. This module runs the project's own step code (the functions the
methods call: ``train_step``, ``search``, the UGS mask-training body, ``evaluate``) on a tiny
synthetic graph under a dispatch mode that records every ATen call, and keeps two numbers:

* ``ops``: every ATen operation dispatched (each pays the framework's host-side cost);
* ``kernels``: ``ops`` minus views and pure allocations (``aten.view``, ``t``, ``detach``,
  ``empty`` ...: ``record.NO_KERNEL`` and every op whose schema says it returns an alias), i.e. the
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

``python -m codesign.dispatch.opcount --write`` regenerates the committed table :data:`TABLE_PATH` that
``codesign estimate`` and run pricing read (no torch needed to read it). Measuring the host cost per
op and, on a GPU, the real kernel launches: ``codesign/machine/opmeasure.py``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from costmodels.atomic import write_text
from costmodels.context import EAGER_KINDS

TABLE_PATH = Path(__file__).with_name("kernel_counts.json")
KINDS = ("train", "train_masked", "search_joint", "search_graph", "ugs_mask", "inference", "eval")
TARGETS = ("cuda", "cpu")
TINY_GRAPH = "sbm:n=1600,avg_degree=4,features=8,classes=4,seed=1"  # every split non-empty


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


def count_ops(fn: Callable[[], Any]) -> OpCount:
    """Run ``fn()`` under the one dispatch recorder (:class:`codesign.dispatch.record.DispatchRecorder`) and
    count the ATen operations it dispatches, less the graph ops (``record.graph_only``: computed from the
    graph structure alone, priced once per graph)."""
    from .record import DispatchRecorder

    recorder = DispatchRecorder()
    with recorder:
        fn()
    return OpCount(sum(recorder.counts.values()), recorder.kernels, dict(recorder.counts))


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

    from codesign.graphs.config import GraphTrainConfig
    from codesign.graphs.data import load_dataset
    from codesign.graphs.methods.common import RunContext

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

    from codesign.graphs.masks import global_weight_mask
    from codesign.graphs.methods.common import WeightMasks, evaluate, train_step
    from codesign.graphs.methods.search import search

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
    return _count_ugs_mask(ctx, model)


def _count_ugs_mask(ctx, model) -> OpCount:  # type: ignore[no-untyped-def]
    """One epoch of ``methods/ugs.py``'s mask training (``ugs.mask_epoch``, minus the best-epoch copy)."""
    import torch

    from codesign.graphs.methods.ugs import mask_epoch

    data, c = ctx.data, ctx.config
    alive_g = torch.ones(data.num_undirected, dtype=torch.bool)
    alive_w = {k: torch.ones_like(p, dtype=torch.bool) for k, p in model.maskable().items()}
    edge_index, und = data.edges_for(alive_g)
    m_a = torch.ones(data.num_undirected, requires_grad=True)
    m_w = {k: torch.ones_like(p, requires_grad=True) for k, p in model.maskable().items()}
    opt = ctx.optimizer(model)
    from codesign.runtime.optim import Adam

    mask_opt = Adam([m_a, *m_w.values()], lr=c.lr)
    for group in mask_opt.param_groups:
        group["foreach"] = opt.param_groups[0]["foreach"]

    def epoch() -> None:  # the training code's own epoch
        mask_epoch(model, data, opt, mask_opt, edge_index, und, m_a, m_w, alive_g, alive_w)

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


TORCH_KINDS = EAGER_KINDS  # profile kinds that run PyTorch eager (an accelerator keeps the fallback)


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
        copies = layers if kind == "search_joint" else 1  # the search epoch: one graph per layer (gebt default)
        c = lookup(CountKey(model, layers, heads, copies, target), kind)
        out.append((c.kernels, c.ops))
    return out[0], out[1], out[2]


def build_table(layers: tuple[int, ...] = (2, 1, 3, 4), path: Path | None = None) -> dict[str, Any]:
    """Counts for every model, depth, phase kind and target (GAT: 8 heads; searches: shared and
    per-layer graphs); written to ``path`` after every depth, so a long run keeps what it counted."""
    import torch

    table: dict[str, Any] = {
        "source": "python -m codesign.dispatch.opcount --write: ATen ops dispatched by one step of the "
                  f"project's own step code on {TINY_GRAPH} (TorchDispatchMode), torch {torch.__version__}",
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
            write_text(path, json.dumps(table, indent=1, sort_keys=True) + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="count the ATen ops of one step per phase (TorchDispatchMode)")
    p.add_argument("--write", action="store_true", help=f"regenerate {TABLE_PATH.name}")
    p.add_argument("--model", default="gcn")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=8, help="GAT heads in hidden layers")
    p.add_argument("--graph-copies", type=int, default=1,
                   help="edge-value vectors a search trains: 1 = one graph shared by the layers (geb, sgcn), "
                        "the layer count = one per layer (gebt's default --graph-sharing per-layer)")
    p.add_argument("--target", choices=TARGETS, default="cuda")
    args = p.parse_args(argv)
    if args.write:
        table = build_table(path=TABLE_PATH)
        print(f"wrote {len(table['counts'])} counts to {TABLE_PATH}")
        return 0
    key = CountKey(args.model, args.layers, args.heads, args.graph_copies, args.target)
    heads = f", {args.heads} heads" if args.model == "gat" else ""
    print(f"{args.model}, {args.layers} layers{heads}, {args.graph_copies} graph cop"
          f"{'y' if args.graph_copies == 1 else 'ies'} in searches, {args.target} optimiser: per step")
    for kind in KINDS:
        c = count_phase(key, kind)
        print(f"{kind:<13} ops {c.ops:5d}  kernels {c.kernels:5d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --- a user's model (codesign.dispatch.workload): its own dispatched ops, counted as the built-ins are ----

@dataclass(frozen=True)
class StepCounts:
    """ATen ops one real step of a traced model dispatches (``opcount.count_ops``: the code path that
    counts the built-in models), per optimiser implementation (``opcount.TARGETS``): ``train`` = zero_grad,
    forward, loss, backward, optimiser step; ``inference`` = one forward in eval mode without autograd."""

    train: dict[str, tuple[int, int]]  # target -> (kernels, ops)
    inference: tuple[int, int]

    def for_target(self, target: str, training: bool) -> tuple[int, int]:
        """(kernels, ops) of one step. The edge-list preprocessing a forward dispatches (PyG redoes it
        every call unless cached) is not in them: ``count_ops`` leaves graph ops out, as for the
        built-ins, and the trace prices them once per graph (its ``graph_preprocessing`` row)."""
        return self.train[target] if training else self.inference


def count_model_steps(net: Any, forward: Callable[[Any], Any],
                      loss: Callable[[Any], Any], optimizer: str = "adam") -> StepCounts:
    """Count the ATen ops of one training step (after a warm step: optimiser state exists) and of one
    inference forward of ``net`` (its state, gradients, mode and the random state are restored after).

    The optimiser is built the way ``opcount`` builds the built-ins' (``foreach=True`` for the ``cuda``
    target, the per-tensor loop for ``cpu``); Adam with weight decay (lr 0.01), or SGD with momentum.
    """
    import torch

    from codesign.runtime.optim import Adam

    saved = {k: v.detach().clone() for k, v in net.state_dict().items()}  # restored after (no deepcopy:
    was_training = net.training  # a pruned module's weight is not a leaf and cannot be deep-copied)
    train: dict[str, tuple[int, int]] = {}
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            for target in TARGETS:
                net.train()
                params = [q for q in net.parameters() if q.requires_grad]
                foreach = target == "cuda"
                opt: Any
                if optimizer == "sgd":
                    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4, foreach=foreach)
                else:  # the one Adam of the training loops (codesign.runtime.optim), as the built-ins are counted
                    opt = Adam([{"params": params, "foreach": foreach}], lr=0.01, weight_decay=5e-4)

                def step(opt: Any = opt) -> None:
                    opt.zero_grad()
                    loss(forward(net)).backward()
                    opt.step()

                step()  # warm: optimiser state, caches
                c = count_ops(step)
                train[target] = (c.kernels, c.ops)
            net.eval()

            def infer() -> None:
                with torch.no_grad():
                    forward(net)

            infer()
            c = count_ops(infer)
    finally:
        with torch.no_grad():
            net.load_state_dict(saved)
        for q in net.parameters():
            q.grad = None
        net.train(was_training)
    return StepCounts(train, (c.kernels, c.ops))
