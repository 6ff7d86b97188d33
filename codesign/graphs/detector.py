"""Early-bird detector: stop the search when the masks stop changing.

Rule (You et al. 2022, Alg. 1-2). At search epoch ``t`` (1-based) with graph mask ``m_t`` and weight
mask ``n_t``, and a FIFO of the previous ``l`` masks (``l = 3``):

    D_g(t) = max_{s = t-l..t-1} H(m_t, m_s),   D_w(t) likewise with n,

where ``H`` is the Hamming distance (number of differing entries). Distances exist once the FIFO
is full (``t > l``). They are normalised (``norm``):

* ``relative`` (default, the public code's and the paper's figures): ``d = D(t) / D(t0)``, ``t0`` the
  first epoch with a distance, so ``d`` starts at 1.0 (if ``D(t0) = 0`` it falls back to entries);
* ``fraction``: ``d = D(t) / number of mask entries``.

Criterion (``criterion``), score compared against ``eta`` (0.1):

* ``sum``: ``d_g + d_w`` (the paper's text); ``mean``: ``(d_g + d_w) / 2`` (the public code);
* ``graph``: ``d_g``; ``weight``: ``d_w``.

With a graph mask only (GEB, and GEBT at weight sparsity 0, whose weight mask never changes) every
criterion uses ``d_g``. The detector fires at the first epoch
``t >= warmup`` with a distance and ``score < eta``; :meth:`step` returns True then. The caller stops
at ``max_epochs`` without a ticket otherwise. Every epoch's distances go into ``trajectory``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

from torch import Tensor

from costmodels.errors import CodesignError, unknown

CRITERIA = ("mean", "sum", "graph", "weight")
NORMS = ("relative", "fraction")


@dataclass(frozen=True)
class DetectorConfig:
    """Early-bird detector settings (see the module docstring for the rule)."""

    criterion: str = "mean"
    eta: float = 0.1
    fifo: int = 3
    warmup: int = 5
    norm: str = "relative"

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise unknown("criterion", self.criterion, list(CRITERIA))
        if self.norm not in NORMS:
            raise unknown("distance normalisation", self.norm, list(NORMS))
        if not self.eta > 0:
            raise CodesignError(f"--eta must be > 0, got {self.eta}")
        if self.fifo < 1 or self.warmup < 0:
            raise CodesignError(f"--fifo-length must be >= 1 and --warmup >= 0, got {self.fifo}, {self.warmup}")


class EarlyBirdDetector:
    """Stateful detector; feed it one (graph mask, weight mask) pair per search epoch."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.graph_fifo: deque[Tensor] = deque(maxlen=config.fifo)
        self.weight_fifo: deque[Tensor] = deque(maxlen=config.fifo)
        self.first: dict[str, int] = {}
        self.epoch = 0
        self.fired_epoch: int | None = None
        self.trajectory: list[dict[str, float | int | None]] = []

    def _distance(self, key: str, mask: Tensor, fifo: deque[Tensor]) -> float | None:
        full = len(fifo) == self.config.fifo
        raw = max(int((mask ^ old).sum()) for old in fifo) if full else None
        fifo.append(mask.detach().clone())
        if raw is None:
            return None
        if self.config.norm == "fraction":
            return raw / mask.numel()
        if key not in self.first:
            self.first[key] = raw if raw > 0 else mask.numel()
        return raw / self.first[key]

    def score(self, d_g: float, d_w: float | None) -> float:
        """The criterion's value for one epoch's normalised distances."""
        c = self.config.criterion
        if d_w is None:
            return d_g
        if c == "sum":
            return d_g + d_w
        if c == "mean":
            return (d_g + d_w) / 2
        return d_g if c == "graph" else d_w

    def step(self, graph_mask: Tensor, weight_mask: Tensor | None = None) -> bool:
        """Record this epoch's masks; True when the ticket is drawn now (first time only)."""
        self.epoch += 1
        d_g = self._distance("graph", graph_mask, self.graph_fifo)
        d_w = None if weight_mask is None else self._distance("weight", weight_mask, self.weight_fifo)
        s = None if d_g is None else self.score(d_g, d_w)
        self.trajectory.append({"epoch": self.epoch, "d_graph": d_g, "d_weight": d_w, "score": s})
        if (self.fired_epoch is None and s is not None and self.epoch >= self.config.warmup
                and s < self.config.eta):
            self.fired_epoch = self.epoch
            return True
        return False

    def summary(self) -> dict[str, object]:
        return {**asdict(self.config), "fired_epoch": self.fired_epoch, "trajectory": self.trajectory}
