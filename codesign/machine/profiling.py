"""Run GNN workloads under a meter: training epochs (optionally split into phases) and inference.

What is measured is the *per-epoch cost* of a phase's workload, not accuracy, and the epoch is the
training code's own (``codesign.graphs.methods``): a train/retrain epoch is ``train_step`` of
:class:`~codesign.graphs.methods.common.FitLoop` (set up as ``fit`` sets it up: seed, weight
masks, optimizer with training's weight decay), a search epoch is one
:class:`~codesign.graphs.methods.search.SearchLoop` epoch (weight step, edge-value step, masks,
detector). Only the masks are drawn at random (the cost depends on how many edges and weights are
kept, not on which), as the ``random`` method draws them; a retrain phase with per-layer graphs
(``--graph-sharing per-layer``, the default) runs one random mask per layer, as a ticket does.
The per-epoch validation pass of ``fit`` is not part of the measured epoch (the cost model prices
training steps).

Timings on a shared machine are noisy: :func:`measure_grid` interleaves the workloads round by
round (so a burst of foreign load hits all of them alike) and keeps the median epoch.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from codesign.graphs.config import GraphTrainConfig
from codesign.graphs.costing import graph_stats_of
from codesign.graphs.data import GraphData, load_dataset
from codesign.graphs.masks import random_mask, random_weight_mask
from codesign.graphs.methods import common
from codesign.graphs.methods.search import SearchLoop
from codesign.graphs.pipeline import _to as to_device
from costmodels import GNNSpec, PhaseSpec, Workload, gnn_phase_workload, gnn_workload
from costmodels.errors import CodesignError
from costmodels.measure import Measurement, Meter

SEARCH_METHODS = ("geb", "gebt", "sgcn", "ugs")
PROFILE_METHODS = ("dense", "random", "gebt", "geb", "sgcn")


@dataclass(frozen=True)
class WorkloadConfig:
    """One GNN workload to run: architecture, data, what it computes on, train or infer."""

    model: str
    dataset: str
    graph_sparsity: float = 0.0
    weight_sparsity: float = 0.0
    trainable_graph: bool = False
    mask_update: bool = False
    mode: str = "train"
    layers: int = 2
    hidden: int = None  # type: ignore[assignment]  # None -> costmodels.workloads.default_hidden(model)
    heads: int = 8
    seed: int = 0
    phase: str = "train"
    graph_sharing: str = "per-layer"
    train_weights: bool = True  # a search phase trains the weights too (GEBT) or keeps them frozen (GEB, SGCN)

    def __post_init__(self) -> None:
        if self.hidden is None:
            object.__setattr__(self, "hidden", GNNSpec(self.model).hidden)

    @property
    def label(self) -> str:
        return f"{self.model}/{self.dataset}/g{self.graph_sparsity:g}/w{self.weight_sparsity:g}/{self.phase}"

    @property
    def spec(self) -> GNNSpec:
        return GNNSpec(self.model, self.layers, self.hidden, self.heads)

    @property
    def per_layer_masks(self) -> bool:
        """A retrain phase's ticket has one graph mask per layer under per-layer graph sharing."""
        return self.phase == "retrain" and self.graph_sharing == "per-layer" and self.layers > 1

    def train_config(self) -> GraphTrainConfig:
        """The training run configuration this workload is one epoch of (training's defaults)."""
        return GraphTrainConfig(model=self.model, dataset=self.dataset, method="gebt" if self.trainable_graph
                                else "random", seed=self.seed, graph_sparsity=self.graph_sparsity,
                                weight_sparsity=self.weight_sparsity, layers=self.layers, hidden=self.hidden,
                                heads=self.heads, graph_sharing=self.graph_sharing)


def method_phases(method: str, graph_sparsity: float, weight_sparsity: float) -> list[tuple[str, dict[str, Any]]]:
    """The per-epoch workloads of a method's phases, as the method's training code runs them.

    dense: one ``train`` phase on the full graph and weights; random: ``train`` at the sparsities;
    gebt: ``search`` (full graph, dense weights: a weight step and an edge-value step, masks drawn
    every epoch) then ``retrain`` (the ticket: sparse graph and weights); geb/sgcn: ``pretrain``,
    ``search`` with the weights frozen (edge-value step only, graph mask only), ``retrain`` on the
    sparse graph. ugs is not offered: its mask training is not split into epochs the profiler can run.
    """
    sparse = {"graph_sparsity": graph_sparsity, "weight_sparsity": weight_sparsity}
    if method == "dense":
        return [("train", {})]
    if method == "random":
        return [("train", sparse)]
    if method == "gebt":
        return [("search", {"trainable_graph": True, "mask_update": True, **sparse}), ("retrain", sparse)]
    if method in ("geb", "sgcn"):
        return [("pretrain", {}),
                ("search", {"trainable_graph": True, "mask_update": True, "train_weights": False,
                            "graph_sparsity": graph_sparsity}),
                ("retrain", {"graph_sparsity": graph_sparsity})]
    if method == "ugs":
        raise CodesignError("--method ugs: codesign profile cannot run UGS's mask training epoch by epoch yet; "
                            f"use one of {', '.join(PROFILE_METHODS)}")
    raise CodesignError(f"unknown method {method!r}; valid methods: {', '.join(PROFILE_METHODS)}")


class EpochRunner:
    """One phase of a training run on ``device``, epoch by epoch, through the training code itself."""

    def __init__(self, cfg: WorkloadConfig, data: GraphData, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.stats = graph_stats_of(data)
        data = to_device(data, self.device)  # as `codesign train` moves it
        self.ctx = common.RunContext(cfg.train_config(), data, self.device, progress=False)
        self.model = self.ctx.new_model()
        self.search: SearchLoop | None = None
        self.loop: common.FitLoop | None = None
        self._loss: torch.Tensor | None = None
        if cfg.trainable_graph:  # a search epoch: full graph, dense weights, edge values trained
            if not cfg.train_weights:  # GEB/SGCN freeze W during the graph search
                for p in self.model.parameters():
                    p.requires_grad_(False)
            ratio = cfg.weight_sparsity if cfg.mask_update and cfg.train_weights else None
            self.search = SearchLoop(self.ctx, self.model, cfg.train_weights, ratio)
            self.graph_density = 1.0
            self.graph_copies = int(self.search.theta.size(0))
            return
        gen = torch.Generator().manual_seed(cfg.seed)  # the random method's draws, in its order
        n_und = data.num_undirected
        graph_mask = None
        if cfg.graph_sparsity:
            rows = cfg.layers if cfg.per_layer_masks else 1
            masks = [random_mask(n_und, cfg.graph_sparsity, gen) for _ in range(rows)]
            graph_mask = (torch.stack(masks) if rows > 1 else masks[0]).to(self.device)
        weight_masks = None
        if cfg.weight_sparsity:
            weight_masks = random_weight_mask({k: v.detach().cpu() for k, v in self.model.maskable().items()},
                                              cfg.weight_sparsity, gen)
            weight_masks = {k: m.to(self.device) for k, m in weight_masks.items()}
        self.loop = common.FitLoop.start(self.ctx, self.model, graph_mask, weight_masks)
        kept = graph_mask.sum(dim=-1).float().mean() if graph_mask is not None else n_und
        self.graph_density = float(kept) / max(1, n_und)
        self.graph_copies = 1

    # -- the phases of one training epoch (the training code's steps) --------------------------
    def forward(self) -> None:
        assert self.loop is not None
        self._loss = common.step_forward(self.model, self.loop.opt, self.ctx.data, self.loop.edge_index, None)

    def backward(self) -> None:
        assert self._loss is not None and self.loop is not None, "forward() must run before backward()"
        common.step_backward(self._loss, self.loop.masks)

    def optimizer_step(self) -> None:
        assert self.loop is not None
        common.step_update(self.loop.opt, self.loop.masks)

    def mask_update(self) -> None:
        """The search's masks and early-bird detector step."""
        assert self.search is not None
        self.search.draw_masks()
        self.search.detect()

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        if self.cfg.mode == "infer":
            return [("inference", self.infer)]
        if self.search is not None:
            out = [("weight_step", self.search.weight_step), ("graph_step", self.search.graph_step)]
            return out + ([("mask_update", self.mask_update)] if self.cfg.mask_update else [])
        return [("forward", self.forward), ("backward", self.backward), ("optimizer", self.optimizer_step)]

    def epoch(self) -> None:
        for _, fn in self.phases():
            fn()

    @torch.no_grad()
    def infer(self) -> None:
        self.model.eval()
        edges = self.loop.edge_index if self.loop is not None else self.ctx.data.edge_index
        self.model(self.ctx.data.x, edges, None)

    # -- what the cost model says this is ----------------------------------------------------
    def workload(self, counted_for: tuple[str, Any] | None = None) -> Workload:
        """The workload of one epoch (or inference) as the cost model describes it. ``counted_for``:
        ``(method, profile)``: the launch term takes the ATen ops this phase of ``method`` dispatches
        (``codesign.dispatch.opcount``), as ``estimate`` and ``search`` price it on that profile, where
        counts apply (``counts_apply``: not on calibrated profiles, whose fit is against the fallback
        formula's kernel count, which ``calibrate`` uses: it passes nothing)."""
        from codesign.dispatch.opcount import counts_apply, inference_launches, phase_launches, target_for

        c = self.cfg
        spec = {"model": c.model, "layers": c.layers, "heads": c.heads}
        counted = counted_for is not None and counts_apply(counted_for[1])
        target = target_for(counted_for[1].kind) if counted_for is not None else "cpu"
        if c.mode == "infer":
            wl = gnn_workload(c.spec, self.stats, graph_density=self.graph_density,
                              weight_density=1.0 - c.weight_sparsity, training=False)
            if not counted:
                return wl
            kernels, ops = inference_launches(spec, target)
            return dataclasses.replace(wl, kernel_launches=kernels, host_ops=ops)
        weight_density = 1.0 if c.trainable_graph else 1.0 - c.weight_sparsity
        training = "alternate" if c.train_weights else "frozen-weights"
        phase = PhaseSpec(c.phase, 1, self.graph_density, weight_density, c.trainable_graph, c.mask_update,
                          graph_copies=self.graph_copies, graph_training=training if c.trainable_graph else "joint")
        if counted and counted_for is not None:
            kernels, ops = phase_launches(spec, counted_for[0], phase.to_dict(), target)
            phase = dataclasses.replace(phase, kernel_launches=kernels, host_ops=ops)
        return gnn_phase_workload(c.spec, self.stats, phase)


@dataclass(frozen=True)
class EpochStats:
    """Median per-epoch measurement of one workload over ``repeats`` windows."""

    label: str
    wall_s: float
    wall_iqr_s: float
    cpu_time_s: float
    energy_j: float | None
    energy_above_idle_j: float | None
    energy_source: str
    peak_memory_bytes: int | None
    peak_rss_bytes: int | None
    repeats: int
    flags: tuple[str, ...] = ()
    windows: tuple[Measurement, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def of(cls, label: str, ms: Sequence[Measurement]) -> EpochStats:
        walls = sorted(m.wall_s for m in ms)
        # quartiles inside the data (numpy's default, R type 7): the 'exclusive' method extrapolates past the
        # extremes of a few windows (two: IQR = 1.5 x their range), which judged a steady GPU sweep busy
        q = statistics.quantiles(walls, n=4, method="inclusive") if len(walls) >= 2 else [walls[0]] * 3

        def med(key: str) -> float | None:
            vals = [getattr(m, key) for m in ms if getattr(m, key) is not None]
            return statistics.median(vals) if vals else None

        def peak(key: str) -> int | None:
            vals = [getattr(m, key) for m in ms if getattr(m, key) is not None]
            return max(vals) if vals else None

        flags = tuple(sorted({f for m in ms for f in m.flags}))
        sources = {m.energy_source for m in ms}
        source = sources.pop() if len(sources) == 1 else "mixed:" + "+".join(sorted(sources))
        return cls(label, statistics.median(walls), q[2] - q[0], med("cpu_time_s") or 0.0, med("energy_j"),
                   med("energy_above_idle_j"), source, peak("peak_memory_bytes"), peak("peak_rss_bytes"),
                   len(ms), flags, tuple(ms))


def measure_grid(runners: Sequence[EpochRunner], meter: Meter, *, rounds: int = 5, per_round: int = 3,
                 warmup: int = 3, progress: bool = True, min_window_s: float = 0.0) -> list[EpochStats]:
    """Median epoch of every runner: ``warmup`` unmeasured epochs each, then ``rounds`` rounds that
    each run, for every runner in turn, one unmeasured epoch and ``per_round`` measured epochs (one
    window per epoch). The unmeasured epoch re-warms the caches the previous runner evicted: training
    runs its epochs back to back, and a Cora GCN epoch measured right after a CiteSeer GIN epoch took
    5.1 ms of CPU time against 4.1 ms back to back (one thread, 2-core AMD EPYC), which biased the
    fit of every small workload upwards.

    ``min_window_s > 0`` (GPU energy counters update every ~100 ms): each window repeats the epoch
    until it lasts that long and is divided by the repeat count (``Measurement.repeats``)."""
    for r in runners:
        for _ in range(warmup):
            r.epoch()
    windows: list[list[Measurement]] = [[] for _ in runners]
    bar = tqdm(total=rounds * len(runners), desc="measuring", file=sys.stderr,
               disable=not progress or not sys.stderr.isatty())
    for _ in range(rounds):
        for i, r in enumerate(runners):
            r.epoch()  # unmeasured: warm again after the previous runner (see the docstring)
            for _ in range(per_round):
                windows[i].append(meter.measure(r.epoch, r.cfg.label, min_window_s=min_window_s))
            bar.update()
    bar.close()
    return [EpochStats.of(r.cfg.label, ms) for r, ms in zip(runners, windows)]


def measure_phases(runner: EpochRunner, meter: Meter, repeats: int) -> dict[str, EpochStats]:
    """Per-phase windows (forward, backward, optimizer, mask_update) over ``repeats`` epochs, plus
    ``epoch_with_phase_windows``: the wall time of those epochs, windows included (for the overhead)."""
    per: dict[str, list[Measurement]] = {}
    whole: list[Measurement] = []
    for _ in range(repeats):
        w0 = meter.begin_window("epoch_with_phase_windows")
        for name, fn in runner.phases():
            with meter.window(name) as w:
                fn()
            assert w.measurement is not None
            per.setdefault(name, []).append(w.measurement)
        whole.append(meter.end_window(w0))
    out = {name: EpochStats.of(name, ms) for name, ms in per.items()}
    out["epoch_with_phase_windows"] = EpochStats.of("epoch_with_phase_windows", whole)
    return out


class DataCache:
    """Loads each dataset once per process."""

    def __init__(self, data_root: str | None = None) -> None:
        self.data_root = data_root
        self._data: dict[str, GraphData] = {}

    def __call__(self, name: str) -> GraphData:
        if name not in self._data:
            self._data[name] = load_dataset(name, self.data_root)
        return self._data[name]


def sweep_grid(models: Sequence[str], datasets: Sequence[str], sparsities: Sequence[float],
               search: bool = False, **common: Any) -> list[WorkloadConfig]:
    """Training-epoch workloads for models x datasets x sparsities (graph and weight sparsity = s);
    ``search``: also one GEBT search epoch (per-layer graphs, masks at the middle sparsity) per model
    and data set, as ``codesign train`` runs it."""
    grid = [WorkloadConfig(m, d, s, s, **common) for m in models for d in datasets for s in sparsities]
    if search:
        mid = sorted(sparsities)[len(sparsities) // 2]
        grid += [WorkloadConfig(m, d, mid, mid, trainable_graph=True, mask_update=True, phase="search", **common)
                 for m in models for d in datasets]
    return grid


def epoch_time(stats: EpochStats, measure: str) -> float:
    """The epoch time a fit uses: median ``wall`` time, or median process ``cpu`` time (with one
    thread the same work, but immune to other processes' load on a shared machine)."""
    return stats.cpu_time_s if measure == "cpu" else stats.wall_s


def predicted_passes(workload: Workload, profile: Any, training: bool) -> dict[str, dict[str, float]]:
    """Analytical latency and energy per phase window: forward, backward, optimizer and, for a
    search epoch (``workload.graph_step``), weight_step, graph_step and mask_update (the ``search.*``
    ops); inference when not training."""
    from costmodels import breakdown

    rows = breakdown(workload, profile, training=training)
    n, g = len(workload.ops), len(workload.graph_step)
    out: dict[str, dict[str, float]] = {}
    for i, row in enumerate(rows):
        name = row["pass"] if training else "inference"
        if str(row["op"]).startswith("search.") and i < 2 * n:
            name = "mask_update"
        elif g and training:  # op_costs order: ops forward, ops backward, graph step forward/backward, optimizer
            name = "graph_step" if 2 * n <= i < 2 * n + 2 * g else "weight_step"
        acc = out.setdefault(name, {"latency_s": 0.0, "energy_j": 0.0})
        acc["latency_s"] += float(row["latency_s"])
        acc["energy_j"] += float(row["energy_j"])
    return out
