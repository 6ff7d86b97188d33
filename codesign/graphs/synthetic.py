"""Synthetic stochastic-block-model graphs with class-correlated features, generated in O(E).

Name format: ``sbm:n=100000,avg_degree=10,features=128,classes=8`` with optional
``p_in=0.8`` (fraction of edges drawn inside a class), ``signal=1.0`` (feature signal-to-noise) and
``seed=0`` (the graph's own seed, independent of the training seed).

Generation (never an N x N matrix, unlike PyG's dense ``stochastic_blockmodel_graph``):

* labels ``y_i ~ Uniform{0..C-1}``;
* ``M = n * avg_degree / 2`` undirected edge draws: source ``u ~ Uniform(nodes)``; with probability
  ``p_in`` the target is uniform within ``u``'s class, else uniform over all nodes; self-loops and
  duplicates are dropped, so the realised average degree is below ``avg_degree``: by under 1% when
  ``avg_degree`` is small next to the class size ``n / classes`` (7.94 for ``n=2000, avg_degree=8,
  classes=4``), by about half for dense specs (26 for ``n=100, avg_degree=50, classes=4``);
* features ``x_i = signal * mu_{y_i} + eps_i`` with ``mu_c, eps_i ~ N(0, I_F)``;
* split: 20 training nodes per class, then 500 validation and 1000 test nodes (Planetoid style,
  capped to what ``n`` allows).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from costmodels.errors import CodesignError

_CHUNK_BYTES = 1 << 20  # the class means are added to the features this many bytes of rows at a time
# (a temporary that stays in cache: at 10^6 x 128 features on one core 0.08 s, against 0.25 s for
# 2^16-row steps (32 MiB); the same sums either way, measured 2026-12-05)

_KEYS = {"n": int, "avg_degree": float, "features": int, "classes": int, "p_in": float, "signal": float,
         "seed": int}


@dataclass(frozen=True)
class SBMSpec:
    """Parameters of one synthetic graph (see the module docstring)."""

    n: int
    avg_degree: float
    features: int
    classes: int
    p_in: float = 0.8
    signal: float = 1.0
    seed: int = 0

    @property
    def name(self) -> str:
        return (f"sbm:n={self.n},avg_degree={self.avg_degree:g},features={self.features},"
                f"classes={self.classes},p_in={self.p_in:g},signal={self.signal:g},seed={self.seed}")


def parse_sbm(text: str) -> SBMSpec:
    """Parse ``sbm:key=value,...``; a bad or missing key is a one-line :class:`CodesignError`."""
    example = "sbm:n=1000,avg_degree=10,features=32,classes=4"
    body = text.split(":", 1)[1] if ":" in text else ""
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        key, _, raw = part.partition("=")
        if key not in _KEYS or not raw:
            raise CodesignError(f"--dataset {text!r}: bad field {part!r}; valid keys: "
                                f"{', '.join(_KEYS)} (e.g. {example})")
        try:
            number = float(raw)
        except ValueError:
            raise CodesignError(f"--dataset {text!r}: {key}={raw!r} is not a number (e.g. {example})") from None
        if not math.isfinite(number):
            raise CodesignError(f"--dataset {text!r}: {key}={raw!r} must be a finite number (e.g. {example})")
        if _KEYS[key] is int and not number.is_integer():
            raise CodesignError(f"--dataset {text!r}: {key}={raw!r} must be a whole number (e.g. {example})")
        # a whole number written in digits is read exactly (float() rounds past 2^53: seed=2^64-1 became 2^64)
        exact = raw.strip().lstrip("+-").isdigit()
        values[key] = (int(raw) if exact else int(number)) if _KEYS[key] is int else number
    missing = [k for k in ("n", "avg_degree", "features", "classes") if k not in values]
    if missing:
        raise CodesignError(f"--dataset {text!r}: missing {', '.join(missing)} (e.g. {example})")
    spec = SBMSpec(**values)  # type: ignore[arg-type]
    if spec.n < 2 * spec.classes or spec.classes < 2 or spec.features < 1 or spec.avg_degree <= 0:
        raise CodesignError(f"--dataset {text!r}: need classes >= 2, n >= 2*classes, features >= 1, "
                            f"avg_degree > 0 (e.g. {example})")
    if not 0 <= spec.seed < 2**64:  # what torch.Generator.manual_seed takes (a negative one aliases seed + 2^64)
        raise CodesignError(f"--dataset {text!r}: seed must be a whole number in 0..2^64-1, got {spec.seed}")
    if not 0.0 <= spec.p_in <= 1.0:
        raise CodesignError(f"--dataset {text!r}: p_in must be in [0, 1], got {spec.p_in}")
    if spec.avg_degree >= spec.n:
        raise CodesignError(f"--dataset {text!r}: avg_degree={spec.avg_degree:g} must be below n={spec.n} "
                            f"(a node has at most n - 1 neighbours)")
    return spec


def sbm_bytes(spec: SBMSpec) -> float:
    """A lower bound on the memory the generator needs: the edge draws (int64 source, target and
    temporaries, ~6 words per draw, both directions later) and the float32 features."""
    draws = spec.n * spec.avg_degree / 2
    return draws * 6 * 8 + 2 * spec.n * spec.features * 4


def _memory_bytes() -> float:
    """Physical memory of this machine (0 when unknown)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0.0


def sbm_graph(spec: SBMSpec, build: Callable):
    """Generate the graph of ``spec`` and hand it to ``build`` (``data.build_graph``); a graph that
    cannot fit in this machine's memory is refused before anything is allocated."""
    need, have = sbm_bytes(spec), _memory_bytes()
    if have and need > have:
        raise CodesignError(f"--dataset {spec.name!r}: generating it needs about {need / 2**30:.3g} GiB, more than "
                            f"this machine's {have / 2**30:.3g} GiB of memory; use a smaller n, avg_degree or "
                            "features")
    g = torch.Generator().manual_seed(spec.seed)
    n, c = spec.n, spec.classes
    y = torch.randint(0, c, (n,), generator=g)
    # nodes grouped by class, so "a uniform node of class k" is one index into a contiguous block
    by_class = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=c)
    starts = torch.cumsum(counts, 0) - counts
    m = int(round(n * spec.avg_degree / 2))
    src = torch.randint(0, n, (m,), generator=g)
    inside = torch.rand(m, generator=g) < spec.p_in
    # gathers by index_select, not advanced indexing: the same values, ~2x faster at 5 * 10^6 edges
    k = y.index_select(0, src)
    size = counts.index_select(0, k)
    offset = (torch.rand(m, generator=g) * size).long().clamp(max=size - 1)
    dst_in = by_class.index_select(0, starts.index_select(0, k) + offset)
    dst_any = torch.randint(0, n, (m,), generator=g)
    dst = torch.where(inside, dst_in, dst_any)
    mu = torch.randn(c, spec.features, generator=g)
    x = torch.randn(n, spec.features, generator=g)
    shift = spec.signal * mu
    chunk = max(1, _CHUNK_BYTES // (4 * spec.features))
    for rows, labels in zip(x.split(chunk), y.split(chunk)):  # x += signal * mu[y], without an [N, F] temporary
        rows.add_(shift.index_select(0, labels))
    perm = torch.randperm(n, generator=g)
    per_class = 20
    # first 20 of each class in the random order (Planetoid style): rank of each node within its class
    py = y[perm]
    order = torch.sort(py, stable=True).indices  # positions in perm, grouped by class, in perm order
    counts_p = torch.bincount(py, minlength=c)
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n) - (torch.cumsum(counts_p, 0) - counts_p).repeat_interleave(counts_p)
    train = torch.zeros(n, dtype=torch.bool)
    train[perm[rank < per_class]] = True
    rest = perm[~train[perm]]
    n_val = min(500, len(rest) // 3)
    n_test = min(1000, len(rest) - n_val)
    val = torch.zeros(n, dtype=torch.bool)
    val[rest[:n_val]] = True
    test = torch.zeros(n, dtype=torch.bool)
    test[rest[n_val:n_val + n_test]] = True
    checksum = hashlib.sha256(f"{spec.name};generator=v1".encode()).hexdigest()
    return build(spec.name, x, y, torch.stack([src, dst]), (train, val, test), checksum)
