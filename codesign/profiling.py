"""Run GNN workloads under a meter: training epochs (optionally split into phases) and inference.

What is measured is the *per-epoch cost* of a phase's workload, not accuracy: a graph mask and a
weight mask of the requested sparsity are drawn at random (the cost depends on how many edges and
weights are kept, not on which), the masked weights are computed dense (as torch does), and a
full-batch epoch is one forward, loss, backward and Adam step, the same work
``costmodels.gnn_phase_workload`` prices. Search phases (GEBT/GEB/UGS/SGCN) also train one value
per undirected edge and draw top-k masks over the edge values and the weights every epoch.

Timings on a shared machine are noisy: :func:`measure_grid` interleaves the workloads round by
round (so a burst of foreign load hits all of them alike) and keeps the median epoch.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from codesign.graphs.data import GraphData, load_dataset
from codesign.graphs.masks import random_mask, random_weight_mask, topk_mask
from codesign.graphs.models import GNN
from costmodels import GNNSpec, GraphStats, PhaseSpec, Workload, gnn_phase_workload, gnn_workload
from costmodels.errors import CodesignError
from costmodels.measure import Measurement, Meter

SEARCH_METHODS = ("geb", "gebt", "sgcn", "ugs")


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
    hidden: int = 16
    heads: int = 8
    dropout: float = 0.5
    lr: float = 0.01
    seed: int = 0
    phase: str = "train"
    input_dropout: bool = False

    @property
    def label(self) -> str:
        return f"{self.model}/{self.dataset}/g{self.graph_sparsity:g}/w{self.weight_sparsity:g}/{self.phase}"

    @property
    def spec(self) -> GNNSpec:
        return GNNSpec(self.model, self.layers, self.hidden, self.heads)


def method_phases(method: str, graph_sparsity: float, weight_sparsity: float) -> list[tuple[str, dict[str, Any]]]:
    """The per-epoch workloads of a method's phases (as ``codesign estimate`` prices them).

    dense: one ``train`` phase on the full graph and weights; random: ``train`` at the sparsities;
    search methods: ``search`` (full graph, dense weights, trainable edge values, masks drawn every
    epoch) then ``retrain`` (the ticket: sparse graph and weights).
    """
    if method == "dense":
        return [("train", {})]
    if method == "random":
        return [("train", {"graph_sparsity": graph_sparsity, "weight_sparsity": weight_sparsity})]
    if method in SEARCH_METHODS:
        return [("search", {"trainable_graph": True, "mask_update": True}),
                ("retrain", {"graph_sparsity": graph_sparsity, "weight_sparsity": weight_sparsity})]
    raise CodesignError(f"unknown method {method!r}; valid methods: dense, random, {', '.join(SEARCH_METHODS)}")


def graph_stats_of(data: GraphData) -> GraphStats:
    return GraphStats(data.name, data.num_nodes, data.num_edges, data.num_features, data.num_classes)


class EpochRunner:
    """Holds a model, its masks and optimizer on ``device``; runs epochs phase by phase."""

    def __init__(self, cfg: WorkloadConfig, data: GraphData, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        graph_mask = random_mask(data.num_undirected, cfg.graph_sparsity, gen) if cfg.graph_sparsity else None
        edge_index, und_ids = data.edges_for(graph_mask)
        self.kept_edges = int(edge_index.size(1))
        self.graph_density = self.kept_edges / max(1, data.num_edges)
        self.stats = graph_stats_of(data)
        self.x = data.x.to(self.device)
        self.y = data.y.to(self.device)
        self.train_mask = data.train_mask.to(self.device)
        self.edge_index = edge_index.to(self.device)
        self.und_ids = und_ids.to(self.device)
        self.model = GNN(cfg.model, data.num_features, data.num_classes, cfg.layers, cfg.hidden, cfg.heads,
                         dropout=cfg.dropout).to(self.device)
        params: list[torch.nn.Parameter] = list(self.model.parameters())
        self.edge_values: torch.nn.Parameter | None = None
        if cfg.trainable_graph:
            self.edge_values = torch.nn.Parameter(torch.ones(data.num_undirected, device=self.device))
            params.append(self.edge_values)
        maskable = self.model.maskable()
        self.weight_masks = {}
        if cfg.weight_sparsity:
            masks = random_weight_mask(dict(maskable), cfg.weight_sparsity, gen)
            self.weight_masks = {n: m.to(self.device) for n, m in masks.items()}
        self._maskable = maskable
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=5e-4)
        self._apply_weight_masks()
        self._loss: torch.Tensor | None = None

    @torch.no_grad()
    def _apply_weight_masks(self) -> None:
        for name, mask in self.weight_masks.items():
            self._maskable[name].mul_(mask)

    def _edge_weight(self) -> torch.Tensor | None:
        return None if self.edge_values is None else self.edge_values[self.und_ids]

    # -- the phases of one training epoch ------------------------------------------------------
    def _model_forward(self, training: bool) -> torch.Tensor:
        """``GNN.forward`` with dropout only *between* layers (ReLU, then dropout) as the contract
        and the cost model have it; ``input_dropout=True`` also drops out the input features as
        ``codesign.graphs.models.GNN.forward`` does (an ``N x F_in`` op the cost model lacks)."""
        x, ew, convs = self.x, self._edge_weight(), self.model.convs
        for i, conv in enumerate(convs):
            if i > 0 or self.cfg.input_dropout:
                x = F.dropout(x, self.model.dropout, training)
            x = conv(x, self.edge_index, ew)
            if i < len(convs) - 1:
                x = F.relu(x)
        return F.log_softmax(x, dim=-1)

    def forward(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        out = self._model_forward(training=True)
        self._loss = F.nll_loss(out[self.train_mask], self.y[self.train_mask])

    def backward(self) -> None:
        assert self._loss is not None, "forward() must run before backward()"
        self._loss.backward()

    def optimizer_step(self) -> None:
        self.optimizer.step()
        self._apply_weight_masks()

    @torch.no_grad()
    def mask_update(self) -> None:
        """Draw this epoch's masks: top-k of |edge values| and global top-k of |weights|."""
        assert self.edge_values is not None
        # A top-k sorts every value, so its cost does not depend on the ratio drawn (0.5 here).
        topk_mask(self.edge_values.abs().cpu(), 0.5)
        flat = torch.cat([p.detach().abs().reshape(-1) for p in self._maskable.values()]).cpu()
        topk_mask(flat, 0.5)

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        if self.cfg.mode == "infer":
            return [("inference", self.infer)]
        out = [("forward", self.forward), ("backward", self.backward), ("optimizer", self.optimizer_step)]
        if self.cfg.mask_update:
            out.append(("mask_update", self.mask_update))
        return out

    def epoch(self) -> None:
        for _, fn in self.phases():
            fn()

    @torch.no_grad()
    def infer(self) -> None:
        self.model.eval()
        self._model_forward(training=False)

    # -- what the cost model says this is ----------------------------------------------------
    def workload(self) -> Workload:
        c = self.cfg
        if c.mode == "infer":
            return gnn_workload(c.spec, self.stats, graph_density=self.graph_density,
                                weight_density=1.0 - c.weight_sparsity, training=False)
        phase = PhaseSpec(c.phase, 1, self.graph_density, 1.0 - c.weight_sparsity, c.trainable_graph, c.mask_update)
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
        q = statistics.quantiles(walls, n=4) if len(walls) >= 2 else [walls[0]] * 3

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
    each run ``per_round`` measured epochs (one window per epoch) of every runner in turn.

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
               **common: Any) -> list[WorkloadConfig]:
    """Training-epoch workloads for models x datasets x sparsities (graph and weight sparsity = s)."""
    return [WorkloadConfig(m, d, s, s, **common) for m in models for d in datasets for s in sparsities]


def tune_allocator() -> bool:
    """Make glibc malloc keep freed memory for reuse (``mallopt(M_MMAP_MAX, 0)``,
    ``mallopt(M_TRIM_THRESHOLD, 2^31-1)``); returns False where glibc is not the allocator.

    Why: glibc serves blocks above its mmap threshold (at most 32 MB) with fresh ``mmap`` pages,
    so every epoch page-faults its large tensors in again (e.g. SAGE's ``[E, F_in]`` messages on
    CiteSeer, 135 MB): measured 2-3x slower epochs, a cost the analytical model has no term for.
    PyTorch's CPU tuning guides recommend a caching allocator (jemalloc/tcmalloc) for the same reason.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def epoch_time(stats: EpochStats, measure: str) -> float:
    """The epoch time a fit uses: median ``wall`` time, or median process ``cpu`` time (with one
    thread the same work, but immune to other processes' load on a shared machine)."""
    return stats.cpu_time_s if measure == "cpu" else stats.wall_s


def predicted_passes(workload: Workload, profile: Any, training: bool) -> dict[str, dict[str, float]]:
    """Analytical latency and energy per pass: forward, backward, optimizer, mask_update (the
    ``search.*`` ops), and inference when not training."""
    from costmodels import breakdown

    out: dict[str, dict[str, float]] = {}
    for row in breakdown(workload, profile, training=training):
        name = row["pass"] if training else "inference"
        if str(row["op"]).startswith("search."):
            name = "mask_update"
        acc = out.setdefault(name, {"latency_s": 0.0, "energy_j": 0.0})
        acc["latency_s"] += float(row["latency_s"])
        acc["energy_j"] += float(row["energy_j"])
    return out


@dataclass(frozen=True)
class CalibrationRun:
    """A measured sweep, the fit on its non-held-out part, and the errors before and after."""

    samples: tuple[Any, ...]
    held_out: tuple[str, ...]
    calibration: Any
    profile_data: dict[str, Any]
    mape_before: float
    mape_after: float
    rows: tuple[dict[str, Any], ...]
    measure_s: float


def sweep_and_fit(grid: Sequence[WorkloadConfig], base: Any, meter: Meter, *, data: DataCache,
                  device: str = "cpu", rounds: int = 5, per_round: int = 3, warmup: int = 3,
                  time_measure: str = "wall", holdout_every: int = 3, sweep_note: str = "",
                  progress: bool = True, min_window_s: float = 0.0, fit_memory: bool = True) -> CalibrationRun:
    """Measure ``grid``, fit ``base`` on all but every ``holdout_every``-th workload, and score the
    shipped and the calibrated profile on the held-out ones (MAPE of the epoch time).
    ``fit_memory``: also choose the effective bandwidth / on-chip buffer (``default_memory_grid``)."""
    import tempfile
    import time
    from pathlib import Path

    from costmodels import load_profile, price_workload
    from costmodels.calibrate import (
        Sample,
        calibrated_profile_dict,
        default_memory_grid,
        fit,
        holdout_split,
        mape,
        write_profile,
    )
    from costmodels.measure import host_summary

    t0 = time.perf_counter()
    runners = [EpochRunner(c, data(c.dataset), device) for c in grid]
    stats = measure_grid(runners, meter, rounds=rounds, per_round=per_round, warmup=warmup, progress=progress,
                         min_window_s=min_window_s)
    measure_s = time.perf_counter() - t0
    samples = [Sample(s.label, r.workload(), epoch_time(s, time_measure), True, "adam", s.energy_j,
                      s.energy_source, {"wall_s": s.wall_s, "wall_iqr_s": s.wall_iqr_s, "cpu_time_s": s.cpu_time_s})
               for r, s in zip(runners, stats)]
    train, held = holdout_split(samples, every=holdout_every) if holdout_every > 1 else (samples, [])
    if not held:
        raise CodesignError("calibration needs held-out workloads: use --holdout-every >= 2 and a larger sweep")
    cal = fit(train, base, memory_grid=default_memory_grid(base) if fit_memory else None)

    def predict(profile: Any, s: Any) -> float:
        return float(price_workload(s.workload, profile, training=True).latency_s)

    measured = [s.measured_latency_s for s in held]
    before = mape([predict(base, s) for s in held], measured)
    host = host_summary()
    machine = f"{meter.device_name} ({host['cores']} CPU cores)"
    sweep = (f"{len(samples)} training-epoch workloads ({time_measure} time, median of {rounds}x{per_round}); "
             f"{sweep_note}")
    pdata = calibrated_profile_dict(base, cal, machine=machine, sweep=sweep, mape_before=before, mape_after=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        calibrated = load_profile(str(write_profile(pdata, Path(tmp) / "calibrated.toml")))
    after = mape([predict(calibrated, s) for s in held], measured)
    pdata["calibration"]["mape_after"] = round(after, 6)
    held_names = {s.name for s in held}
    rows = []
    for s in samples:
        pb, pa = predict(base, s), predict(calibrated, s)
        rows.append({"workload": s.name, "split": "held-out" if s.name in held_names else "fit",
                     "measured_s": s.measured_latency_s, "wall_s": s.info["wall_s"],
                     "wall_iqr_s": s.info["wall_iqr_s"], "before_s": pb, "after_s": pa,
                     "error_before": pb / s.measured_latency_s - 1, "error_after": pa / s.measured_latency_s - 1})
    return CalibrationRun(tuple(samples), tuple(sorted(held_names)), cal, pdata, before, after, tuple(rows),
                          measure_s)
