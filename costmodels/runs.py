"""Whole-run totals: training = Σ over phases of epochs × per-epoch cost; inference = one forward.

A phase (pretrain, ticket search, retrain, a UGS round) has its own densities, so a ticket found
early is cheap to train *and* cheap to run. ``price_gnn_run`` builds the GNN workloads of each phase
from device-independent :class:`PhaseSpec` records (which a training run stores), so the same run
can be re-priced on any device without retraining.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .analytical import FLOP_CONVENTION, MAC_CONVENTION, Cost, price_workload
from .errors import unknown
from .launch import regime_of
from .ops import Array, Elementwise
from .profiles import DeviceProfile
from .stats import GraphStats
from .workloads import GNNSpec, Workload, gnn_workload, graph_step_ops, mask_update_ops

GRAPH_TRAINING = ("joint", "alternate", "frozen-weights")


@dataclass(frozen=True)
class Phase:
    """``epochs`` × ``steps_per_epoch`` training steps of ``workload`` with ``optimizer``."""

    name: str
    epochs: float
    workload: Workload
    optimizer: str = "adam"
    steps_per_epoch: float = 1.0


@dataclass(frozen=True)
class PhaseSpec:
    """A GNN training phase, device-independent (what a run records for re-pricing).

    ``graph_density``/``weight_density``: 1 - sparsity of the graph and weights the phase *computes*
    on (a search phase trains on the full graph with dense weights: 1.0, 1.0);
    ``trainable_graph``: edge values receive gradients; ``mask_update``: masks are drawn each epoch
    (the graph's, and the weights' unless the weights are frozen);
    ``graph_copies``: trainable edge-value vectors (and graph masks) of a search, 1 when every layer
    shares one, the layer count for per-layer graphs (the message passing itself is the same).
    ``graph_training`` (trainable graphs): ``joint`` - one forward/backward trains weights and edge
    values together (UGS); ``alternate`` - a weight step with the edge values fixed, then an
    edge-value step (GEBT's search epoch); ``frozen-weights`` - the edge-value step only, weights
    frozen (GEB, SGCN).
    """

    name: str
    epochs: float
    graph_density: float = 1.0
    weight_density: float = 1.0
    trainable_graph: bool = False
    mask_update: bool = False
    optimizer: str = "adam"
    graph_copies: int = 1
    kernel_launches: float | None = None  # counted per epoch (codesign/dispatch/opcount.py); None: launch.py fallback
    host_ops: float | None = None  # counted framework ops per epoch; None: = kernel_launches
    graph_training: str = "joint"
    weight_pattern: str = "unstructured"  # what the phase's weight masks conform to (2:4 credit: context.ExecContext)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PhaseCost:
    name: str
    epochs: float
    per_epoch: Cost
    total: Cost


@dataclass(frozen=True)
class RunCost:
    """Training (all phases) and inference totals of a run, priced on ``device`` (None = counts)."""

    train: Cost
    infer: Cost
    phases: tuple[PhaseCost, ...]
    device: str | None
    dtype: str = "fp32"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "dtype": self.dtype}
        for prefix, cost in (("train", self.train), ("infer", self.infer)):
            for key, value in cost.to_dict().items():
                out[f"{prefix}_{key}"] = value
        out["phases"] = [
            {"name": p.name, "epochs": p.epochs, **{k: v for k, v in p.total.to_dict().items()}}
            for p in self.phases
        ]
        out["train_regime"], out["infer_regime"] = regime_of(self.train), regime_of(self.infer)
        out["conventions"] = {"flops": FLOP_CONVENTION, "macs": MAC_CONVENTION,
                              "units": "FLOP, MAC, bytes (B), seconds (s), joules (J)",
                              "latency_energy": "estimated by the analytical model (roofline), not measured"}
        out.update(self.extra)
        return out


def price_run(phases: list[Phase], infer: Workload, device: DeviceProfile | None = None,
              dtype: str = "fp32") -> RunCost:
    """Σ over phases of epochs × steps × per-step cost, plus one inference pass of ``infer``."""
    priced = []
    train: Cost | None = None
    for ph in phases:
        step = price_workload(ph.workload, device, training=True, optimizer=ph.optimizer, dtype=dtype)
        per_epoch = step.scaled(ph.steps_per_epoch)
        total = per_epoch.scaled(ph.epochs)
        priced.append(PhaseCost(ph.name, ph.epochs, per_epoch, total))
        train = total if train is None else train + total
    infer_cost = price_workload(infer, device, training=False, dtype=dtype)
    if train is None:
        zero: Array = 0.0
        train = Cost(zero, zero, zero, zero, None if device is None else zero, None if device is None else zero)
    return RunCost(train, infer_cost, tuple(priced), None if device is None else device.name, dtype)


def gnn_phase_workload(spec: GNNSpec, stats: GraphStats, phase: PhaseSpec,
                       aggregation_order: str = "transform-first") -> Workload:
    """The per-epoch workload of one GNN phase: the step(s) ``graph_training`` names for a trainable
    graph (see :class:`PhaseSpec`), plus the mask-drawing work of search phases."""
    if phase.graph_training not in GRAPH_TRAINING:
        raise unknown("graph training", phase.graph_training, GRAPH_TRAINING)
    split = phase.trainable_graph and phase.graph_training != "joint"
    wl = gnn_workload(spec, stats, graph_density=phase.graph_density, weight_density=phase.weight_density,
                      trainable_graph=phase.trainable_graph and not split, aggregation_order=aggregation_order,
                      weight_pattern=phase.weight_pattern)
    ops = wl.ops
    graph_step: tuple = ()
    if split:
        graph_step = graph_step_ops(spec, stats, phase.graph_density, aggregation_order, phase.graph_copies)
        if phase.graph_training == "frozen-weights":
            ops = ()  # no weight step (the frozen weights' memory is left out: a GNN's weights are small)
        else:  # the weight step reads the edge values as fixed weights
            ops = ops + (Elementwise("search.fixed_edge_weights", stats.num_edges * phase.graph_density
                                     * phase.graph_copies, 1.0, 0.0, reads=1.5, needs_backward=False),)
    if phase.mask_update:
        # a frozen-weight search (GEB, SGCN) draws the graph mask only
        ops = ops + mask_update_ops(spec, stats, phase.graph_density, phase.graph_copies,
                                    weight_mask=phase.graph_training != "frozen-weights")
    extra = stats.num_edges * phase.graph_density / 2.0 * phase.graph_copies if phase.trainable_graph else 0.0
    return Workload(wl.name, ops, wl.input_values, wl.graph_edges, extra, wl.info,
                    kernel_launches=phase.kernel_launches, host_ops=phase.host_ops, graph_step=graph_step,
                    input_density=wl.input_density)


def price_gnn_run(
    spec: GNNSpec,
    stats: GraphStats,
    phases: list[PhaseSpec],
    *,
    infer_graph_density: Array = 1.0,
    infer_weight_density: Array = 1.0,
    device: DeviceProfile | None = None,
    aggregation_order: str = "transform-first",
    dtype: str = "fp32",
    infer_launches: tuple[float, float] | None = None,
    infer_weight_pattern: str = "unstructured",
) -> RunCost:
    """Price a GNN training run (its phases) and its final ticket's inference on ``device``.

    ``infer_launches``: counted (kernel launches, framework ops) of one inference pass (launch.py)."""
    run_phases, infer = gnn_run_workloads(spec, stats, phases, infer_graph_density, infer_weight_density,
                                          aggregation_order, infer_launches, infer_weight_pattern)
    return price_run(run_phases, infer, device, dtype)


def gnn_run_workloads(spec: GNNSpec, stats: GraphStats, phases: list[PhaseSpec], infer_graph_density: Array = 1.0,
                      infer_weight_density: Array = 1.0, aggregation_order: str = "transform-first",
                      infer_launches: tuple[float, float] | None = None,
                      infer_weight_pattern: str = "unstructured") -> tuple[list[Phase], Workload]:
    """The ``Phase`` list and inference ``Workload`` :func:`price_gnn_run` prices (for pricing one
    run over other hardware, e.g. a template's grid)."""
    run_phases = [Phase(p.name, p.epochs, gnn_phase_workload(spec, stats, p, aggregation_order), p.optimizer)
                  for p in phases]
    infer = gnn_workload(spec, stats, graph_density=infer_graph_density, weight_density=infer_weight_density,
                         aggregation_order=aggregation_order, training=False, weight_pattern=infer_weight_pattern)
    if infer_launches is not None:
        infer = replace(infer, kernel_launches=infer_launches[0], host_ops=infer_launches[1])
    return run_phases, infer
