"""Shared pieces of every method's loop: the run context, one training step, evaluation, a fit loop.

Optimiser (Kipf & Welling): Adam, lr 0.01, weight decay 5e-4 on the first layer only.
Model selection: the reported accuracy of a training phase is the test accuracy at the epoch of
best validation accuracy (first such epoch); the weights kept are that epoch's.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from codesign.runtime.memory import reuse_freed_blocks
from codesign.runtime.optim import Adam
from codesign.runtime.threads import refresh_threads
from costmodels import PhaseSpec

from ..aggregate import mark_symmetric, mark_undirected
from ..config import GraphTrainConfig
from ..data import GraphData
from ..masks import WeightMasks
from ..models import GNN, Edges, Weights, sparse_features


@dataclass(frozen=True)
class PhaseRecord:
    """One executed phase: what ran (``spec``, the device-independent ``PhaseSpec`` the cost model
    prices, with the epochs actually run) and how long it took (``wall_s``, measured)."""

    spec: PhaseSpec
    wall_s: float

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def epochs(self) -> int:
        return int(self.spec.epochs)

    def to_dict(self) -> dict[str, object]:
        """The entry of the result's ``phases`` list."""
        return {"name": self.name, "epochs": self.epochs, "wall_s": self.wall_s}


def record_phase(name: str, epochs: int, wall_s: float, graph_density: float = 1.0, weight_density: float = 1.0,
                 *, trainable_graph: bool = False, mask_update: bool = False, graph_copies: int = 1,
                 graph_training: str = "joint") -> PhaseRecord:
    """A :class:`PhaseRecord`; ``graph_copies``: edge-value vectors a search trains (the layer count for
    per-layer graphs); ``graph_training``: how a trainable graph trains — joint (UGS), alternate (GEBT),
    frozen-weights (GEB, SGCN)."""
    return PhaseRecord(PhaseSpec(name, epochs, graph_density, weight_density, trainable_graph, mask_update,
                                 graph_copies=graph_copies, graph_training=graph_training), wall_s)


@dataclass
class MethodResult:
    """What a method hands back to the pipeline."""

    val_accuracy: float
    test_accuracy: float
    graph_mask: Tensor | None  # bool [E/2] or per layer [L, E/2] on undirected edges, None = full graph
    weight_masks: dict[str, Tensor] | None  # bool per maskable weight, None = dense
    ticket_state: dict[str, Tensor] | None  # the weights retraining starts from (per --retrain-init)
    init_state: dict[str, Tensor]  # the initial weights (for rewinding)
    final_state: dict[str, Tensor]
    phases: list[PhaseRecord] = field(default_factory=list)
    eb_epoch: int | None = None
    detector: dict[str, object] | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class RunContext:
    """The data, config and knobs a method needs; built once per ``train(config)`` call."""

    config: GraphTrainConfig
    data: GraphData
    device: torch.device
    progress: bool = True
    search_limit: int | None = None  # a ticket search not fired after this many epochs stops the run (SearchStopped)

    def __post_init__(self) -> None:
        # sparse bag-of-words features multiply as CSR in the first layer (models.sparse_features)
        self.data = replace(self.data, x=sparse_features(self.data.x))

    def new_model(self, seed_offset: int = 0) -> GNN:
        """A freshly initialised model; seeded so the same run gets the same weights."""
        torch.manual_seed(self.config.seed + seed_offset)
        c = self.config
        return GNN(c.model, self.data.num_features, self.data.num_classes, c.layers, c.hidden, c.heads,
                   c.output_heads, c.dropout).to(self.device)

    def optimizer(self, model: GNN) -> Adam:
        """The weights' optimiser (the one place it is built; :mod:`codesign.runtime.optim`)."""
        first = {id(p) for p in model.first_layer_params()}
        rest = [p for p in model.parameters() if id(p) not in first]
        groups = [{"params": model.first_layer_params(), "weight_decay": self.config.weight_decay}]
        if rest:
            groups.append({"params": rest, "weight_decay": 0.0})
        return Adam(groups, lr=self.config.lr)

    def bar(self, total: int, desc: str) -> tqdm:
        """A per-phase progress bar on stderr (off when not a TTY or progress=False)."""
        enabled = self.progress and sys.stderr.isatty()
        return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=False)

    @staticmethod
    def epoch_done(bar: tqdm) -> None:
        """Every training loop calls this after an epoch: advance the bar; in a search trial, let the
        thread count follow the workers on this machine (``codesign.runtime.threads.refresh_threads``); and
        from the end of the process's first epoch on, reuse freed large blocks
        (``codesign.runtime.memory.reuse_freed_blocks``: the first epoch has built the run's long-lived
        state, CSR plans and optimiser state, outside the heap the later epochs' tensors then reuse)."""
        bar.update()
        refresh_threads()
        reuse_freed_blocks()


def state_of(model: GNN) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def edge_weight(theta: Tensor, und_ids: Tensor, pairs: Tensor | None = None) -> Tensor:
    """Directed edge weights from undirected values: ``w_e = relu(theta[und(e)])`` (both directions
    of an edge get the same value: symmetric, which the aggregation exploits, ``aggregate.mark_symmetric``).
    ``index_select``, not ``theta[und_ids]``: the same values, and at 10^7 edges on one core its gather is
    ~2.5x faster and its backward (``index_add_``) ~1.8x faster than advanced indexing's (``index_put_``).
    With the undirected ``pairs`` (``GraphData.undirected``), GCN's degree and the sum aggregation (GCN,
    GIN, SAGE) take the gradient to ``theta`` per pair (``aggregate.mark_undirected``)."""
    values = F.relu(theta)
    w = values.index_select(0, und_ids)
    return mark_symmetric(w) if pairs is None else mark_undirected(w, values, pairs)


def step_forward(model: GNN, opt: Adam, data: GraphData, edge_index: Edges,
                 weight: Weights, extra_loss: Tensor | None = None) -> Tensor:
    """A training step's forward pass and loss (``train_step`` = forward, backward, update)."""
    model.train()
    opt.zero_grad()
    out = model(data.x, edge_index, weight)
    loss = F.nll_loss(out[data.train_mask], data.y[data.train_mask])
    return loss if extra_loss is None else loss + extra_loss


def step_backward(loss: Tensor, masks: WeightMasks | None = None) -> None:
    """A training step's backward pass; pruned weights get no gradient."""
    loss.backward()
    if masks is not None:
        masks.mask_grads()


def step_update(opt: Adam, masks: WeightMasks | None = None) -> None:
    """A training step's optimizer update; pruned weights stay exactly zero."""
    opt.step()
    if masks is not None:
        masks.apply()


def train_step(model: GNN, opt: Adam, data: GraphData, edge_index: Edges,
               weight: Weights, masks: WeightMasks | None = None,
               extra_loss: Tensor | None = None) -> float:
    """One full-batch step on the training nodes; pruned weights stay exactly zero."""
    loss = step_forward(model, opt, data, edge_index, weight, extra_loss)
    step_backward(loss, masks)
    step_update(opt, masks)
    return float(loss.detach())


@dataclass
class FitLoop:
    """What a training phase holds across its epochs: the graph it runs on, the weight masks and
    the optimizer. Built as :func:`fit` builds it (the dropout seed too), so profiling runs the
    same epochs as training."""

    edge_index: Edges
    masks: WeightMasks
    opt: Adam

    @classmethod
    def start(cls, ctx: RunContext, model: GNN, graph_mask: Tensor | None = None,
              weight_masks: dict[str, Tensor] | None = None) -> FitLoop:
        torch.manual_seed(ctx.config.seed + 7919)  # dropout draws depend only on the seed: tickets retrain identically
        edge_index = ctx.data.layer_edges(graph_mask)
        masks = WeightMasks(model, weight_masks)
        masks.apply()
        return cls(edge_index, masks, ctx.optimizer(model))


@torch.no_grad()
def evaluate(model: GNN, data: GraphData, edge_index: Edges, weight: Weights) -> tuple[float, float]:
    """``(val_accuracy, test_accuracy)`` as fractions."""
    model.eval()
    pred = model(data.x, edge_index, weight).argmax(dim=-1)
    correct = pred == data.y
    val = float(correct[data.val_mask].float().mean()) if data.val_mask.any() else float("nan")
    test = float(correct[data.test_mask].float().mean()) if data.test_mask.any() else float("nan")
    return val, test


@dataclass(frozen=True)
class FitResult:
    val_accuracy: float
    test_accuracy: float
    best_epoch: int
    best_state: dict[str, Tensor]
    wall_s: float


def fit(ctx: RunContext, model: GNN, epochs: int, name: str, graph_mask: Tensor | None = None,
        weight_masks: dict[str, Tensor] | None = None) -> FitResult:
    """Train ``model`` for ``epochs`` on the graph kept by ``graph_mask`` (binary, original values)
    with weights frozen at zero where ``weight_masks`` is False; keep the best-validation epoch."""
    start = time.perf_counter()
    loop = FitLoop.start(ctx, model, graph_mask, weight_masks)
    edge_index, masks, opt = loop.edge_index, loop.masks, loop.opt
    best = (-1.0, float("nan"), 0)
    best_state = state_of(model)
    with ctx.bar(epochs, name) as bar:
        for epoch in range(1, epochs + 1):
            train_step(model, opt, ctx.data, edge_index, None, masks)
            val, test = evaluate(model, ctx.data, edge_index, None)
            if val > best[0]:
                best = (val, test, epoch)
                best_state = state_of(model)
            ctx.epoch_done(bar)
    model.load_state_dict(best_state)
    return FitResult(best[0], best[1], best[2], best_state, time.perf_counter() - start)
