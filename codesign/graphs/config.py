"""The one frozen record that describes a graph-ticket training run (validated on construction)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from costmodels.errors import CodesignError, check_fraction, unknown
from costmodels.workloads import default_hidden

from .detector import DetectorConfig
from .models import MODELS
from .sparsify import SPARSIFIERS

METHODS = ("dense", "geb", "gebt", "sgcn", "random", "ugs")
RETRAIN_INITS = ("ticket", "rewind", "reinit")
TIE_BREAKS = ("min-degree", "resistance", "norm", "random", "index")
GRAPH_SHARING = ("per-layer", "shared")
PAPER_EPOCHS = 100  # Kipf & Welling / GEBT: 100 epochs per phase
UGS_EPOCHS = 200  # UGS: 200 epochs per mask-training and per retraining round
# the sparsities each method is asked for ("graph" = --graph-sparsity, "weight" = --weight-sparsity);
# the others do not apply and are recorded as None
METHOD_SPARSITIES: dict[str, tuple[str, ...]] = {
    "dense": (), "geb": ("graph",), "sgcn": ("graph",), "gebt": ("graph", "weight"),
    "random": ("graph", "weight"), "ugs": ("graph", "weight"),
}
SPARSITY_TOLERANCE = 0.01  # a run's achieved sparsity must be within this of the requested one


PATTERN_METHODS = ("gebt", "random")  # methods whose weight masks can take an N:M pattern


@dataclass(frozen=True)
class GraphTrainConfig:
    """Everything that determines a run (with the seed, it determines the result on CPU).

    ``epochs``: when set, every phase runs this many epochs (the search at most this many);
    otherwise the papers' schedules (100 per phase; UGS 200 per round phase).
    ``graph_sparsity`` / ``weight_sparsity``: the requested fractions; a method they do not apply
    to (``METHOD_SPARSITIES``: dense both, geb and sgcn the weight one) records None.
    ``graph_sharing`` (searches: geb, gebt, sgcn): ``per-layer`` trains one edge-value vector and
    draws one graph mask per layer (as the public GEBT code keeps one adjacency per layer; every
    layer keeps the same number of edges, so costs are as for one mask); ``shared``: one for all.
    ``retrain_epochs``: when set, the length of the phase that trains the final network (dense and
    random: their one phase; geb, gebt, sgcn: the retraining; ugs: each round's retraining), which
    overrides ``epochs`` there; the search's knob for training length.
    ``node_order``: train on the graph relabelled in this order (``codesign.graphs.reorder``; tickets
    and results stay in the dataset's ids).
    ``rounds`` (UGS): None = the fewest rounds whose weight sparsity ``1 - 0.8^r`` reaches
    ``weight_sparsity`` (at least 1).
    """

    model: str = "gcn"
    dataset: str = "cora"
    method: str = "gebt"
    seed: int = 0
    epochs: int | None = None
    retrain_epochs: int | None = None
    graph_sparsity: float | None = 0.2
    weight_sparsity: float | None = 0.5
    weight_pattern: str = "unstructured"  # or N:M (masks.parse_pattern): gebt and random
    layers: int = 2
    hidden: int = None  # type: ignore[assignment]  # None -> costmodels.workloads.default_hidden(model)
    heads: int = 8
    output_heads: int = 1
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    graph_lr: float = 1e-3
    admm_rho: float = 1e-3
    sparsifier: str = "admm"
    tie_break: str = "min-degree"
    graph_sharing: str = "per-layer"
    node_order: str = "natural"
    criterion: str = "mean"
    eta: float = 0.1
    fifo: int = 3
    warmup: int = 5
    distance_norm: str = "relative"
    retrain_init: str = "ticket"
    rounds: int | None = None
    data_root: str | None = None
    run_on: str = "cpu"
    out: str | None = None
    ticket: str | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise unknown("model", self.model, list(MODELS))
        if self.hidden is None:
            object.__setattr__(self, "hidden", default_hidden(self.model))
        if self.method not in METHODS:
            raise unknown("method", self.method, list(METHODS))
        if self.sparsifier not in SPARSIFIERS:
            raise unknown("sparsifier", self.sparsifier, list(SPARSIFIERS))
        if self.tie_break not in TIE_BREAKS:
            raise unknown("tie break", self.tie_break, list(TIE_BREAKS))
        if self.graph_sharing not in GRAPH_SHARING:
            raise unknown("graph sharing", self.graph_sharing, list(GRAPH_SHARING))
        if self.node_order not in ("natural", "degree", "rcm"):  # codesign.graphs.reorder.NODE_ORDERS
            raise unknown("node order", self.node_order, ["natural", "degree", "rcm"])
        if self.retrain_init not in RETRAIN_INITS:
            raise unknown("retrain init", self.retrain_init, list(RETRAIN_INITS))
        for kind in ("graph", "weight"):
            name = f"{kind}_sparsity"
            if kind not in METHOD_SPARSITIES[self.method]:
                object.__setattr__(self, name, None)  # does not apply to this method
            elif getattr(self, name) is None:
                raise CodesignError(f"--method {self.method} needs --{kind}-sparsity (a fraction in [0, 1))")
            else:
                check_fraction(f"--{kind}-sparsity", getattr(self, name))
        if self.weight_pattern != "unstructured":
            from .masks import parse_pattern

            n, m = parse_pattern(self.weight_pattern)  # type: ignore[misc]
            if self.method not in PATTERN_METHODS:
                raise CodesignError(f"--weight-pattern {self.weight_pattern} applies to --method "
                                    f"{' or '.join(PATTERN_METHODS)}, not {self.method}; drop it")
            if self.weight_sparsity is not None and self.weight_sparsity < 1.0 - n / m - 1e-9:
                raise CodesignError(f"--weight-pattern {self.weight_pattern} prunes at least {1 - n / m:g} of the "
                                    f"weights; --weight-sparsity {self.weight_sparsity:g} is lower: raise it")
        if not 0.0 <= self.dropout < 1.0:
            raise CodesignError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.epochs is not None and self.epochs < 1:
            raise CodesignError(f"--epochs must be >= 1, got {self.epochs}")
        if self.retrain_epochs is not None and self.retrain_epochs < 1:
            raise CodesignError(f"retrain epochs must be >= 1, got {self.retrain_epochs}")
        if self.rounds is not None and self.rounds < 1:
            raise CodesignError(f"--rounds must be >= 1, got {self.rounds}")
        for name in ("lr", "graph_lr", "admm_rho", "eta", "weight_decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise CodesignError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")
        if self.admm_rho <= 0:
            raise CodesignError(f"--admm-rho must be > 0, got {self.admm_rho}")
        if self.lr <= 0 or self.graph_lr <= 0:
            raise CodesignError(f"--lr and --graph-lr must be > 0, got {self.lr}, {self.graph_lr}")
        _ = self.detector  # validates criterion, eta, fifo, warmup, norm

    @property
    def detector(self) -> DetectorConfig:
        return DetectorConfig(self.criterion, self.eta, self.fifo, self.warmup, self.distance_norm)

    def phase_epochs(self, default: int = PAPER_EPOCHS) -> int:
        return self.epochs if self.epochs is not None else default

    def final_epochs(self, default: int = PAPER_EPOCHS) -> int:
        """Epochs of the phase that trains the final network (see ``retrain_epochs``)."""
        return self.retrain_epochs if self.retrain_epochs is not None else self.phase_epochs(default)

    def requested_sparsity(self, kind: str) -> float:
        """The requested ``kind`` ("graph"/"weight") sparsity; 0.0 where it does not apply."""
        value = getattr(self, f"{kind}_sparsity")
        return 0.0 if value is None else float(value)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
