"""Trace-driven DRAM traffic of graph aggregation from the real (pruned, per-layer) edge list.

Aggregation ``out[i] = sum_{j -> i} w_ji h[j]`` with ``F`` features of ``b`` bytes per row, on a
device with an on-chip buffer of ``S`` bytes, in a given node order. Two exact models:

``window`` (the template's own schedule, after HyGCN's window sliding): destinations are taken in
node order in windows of ``W = max(1, floor(S / (F b)) - 1)`` rows whose partial sums stay on
chip (one row of the buffer stages the streamed source row). Within a window each distinct
source row is read from DRAM once and added into all its destinations there; so::

    rows loaded = sum over windows of |distinct sources of the window's edges|

counted exactly and vectorised (a bitmap of (window, source) pairs, or a sort for huge ones).

``lru``: destinations in node order, each one's sources in node order, through a fully
associative LRU cache of ``C = floor(S / (F b))`` source rows. An access misses iff it is the
row's first access or its reuse (stack) distance -- the number of distinct rows touched since the
row's previous access -- is ``>= C`` (Mattson et al., IBM Systems Journal 1970). Reuse distances
come from ``d(t) = (t - p - 1) - #{j > p : next(j) < next(p)}`` (p the previous access), the
count by a vectorised bottom-up merge sort (``O(E log E)``).

Both add the output rows written once (``N F b``), the edge indices (``2 nnz i``) and, for a
weighted aggregation, one edge value per message (``nnz b``), as ``ops.Aggregate`` does.

Node orders (an algorithm-side knob): ``natural`` (dataset ids), ``degree`` (descending degree,
ties by id) and ``rcm`` (reverse Cuthill-McKee: BFS from a minimum-degree node of each component,
neighbours by ascending degree, reversed; Cuthill & McKee 1969, George 1971).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import CodesignError, unknown

NODE_ORDERS = ("natural", "degree", "rcm")
POLICIES = ("window", "lru")
_BITMAP_LIMIT = 1 << 24  # (window, source) pairs counted with a bitmap of up to 16 M entries


def node_order(src: np.ndarray, dst: np.ndarray, num_nodes: int, order: str = "natural") -> np.ndarray:
    """The processing order: ``perm[k]`` = node processed k-th."""
    if order == "natural":
        return np.arange(num_nodes)
    deg = np.bincount(np.asarray(dst), minlength=num_nodes) + np.bincount(np.asarray(src), minlength=num_nodes)
    if order == "degree":
        return np.lexsort((np.arange(num_nodes), -deg))
    if order == "rcm":
        return _rcm(np.asarray(src), np.asarray(dst), num_nodes, deg)
    raise unknown("node order", order, NODE_ORDERS)


def _rcm(src: np.ndarray, dst: np.ndarray, n: int, deg: np.ndarray) -> np.ndarray:
    a = np.concatenate([src, dst])
    b = np.concatenate([dst, src])
    key = np.lexsort((deg[b], a))  # neighbours of each node by ascending degree
    nbr = b[key]
    start = np.searchsorted(a[key], np.arange(n + 1))
    seen = np.zeros(n, dtype=bool)
    out: list[int] = []
    for root in np.lexsort((np.arange(n), deg)):  # components from their minimum-degree node
        if seen[root]:
            continue
        seen[root] = True
        queue = deque([int(root)])
        while queue:
            v = queue.popleft()
            out.append(v)
            for u in nbr[start[v]:start[v + 1]]:
                if not seen[u]:
                    seen[u] = True
                    queue.append(int(u))
    return np.asarray(out[::-1], dtype=np.int64)


def _positions(perm: np.ndarray) -> np.ndarray:
    pos = np.empty(len(perm), dtype=np.int64)
    pos[perm] = np.arange(len(perm))
    return pos


def window_rows(buffer_bytes: float, row_bytes: float) -> int:
    """Destination rows per window: the buffer less one staging row, at least 1."""
    return max(1, int(buffer_bytes // max(row_bytes, 1.0)) - 1)


def windowed_rows_loaded(src_pos: np.ndarray, dst_pos: np.ndarray, num_nodes: int, window: int) -> int:
    """Exact rows read under the window schedule (node ids already mapped to positions).

    Counts distinct (window, source) pairs with a bitmap; when windows x nodes exceed the bitmap,
    windows are taken in groups (a radix sort by group, one bitmap pass per group).
    """
    if len(src_pos) == 0:
        return 0
    win = dst_pos // window
    n_windows = int(win.max()) + 1
    per_group = max(1, _BITMAP_LIMIT // max(num_nodes, 1))
    if n_windows <= per_group:
        seen = np.zeros(n_windows * num_nodes, dtype=bool)
        seen[win * num_nodes + src_pos] = True
        return int(np.count_nonzero(seen))
    group = win // per_group
    if int(group.max()) >= 1 << 16 or num_nodes > _BITMAP_LIMIT:  # too many groups to radix-sort: sort pairs
        key = np.sort(win * num_nodes + src_pos)
        return int(np.count_nonzero(key[1:] != key[:-1])) + 1
    order = np.argsort(group.astype(np.uint16), kind="stable")  # radix sort
    bounds = np.searchsorted(group[order], np.arange(int(group.max()) + 2))
    stamp = np.zeros(per_group * num_nodes, dtype=np.int64)
    total = 0
    for g in range(len(bounds) - 1):
        idx = order[bounds[g]:bounds[g + 1]]
        key = (win[idx] - g * per_group) * num_nodes + src_pos[idx]
        ticket = np.arange(len(key))
        stamp[key] = ticket  # one writer per distinct key survives
        total += int(np.count_nonzero(stamp[key] == ticket))
    return total


def _smaller_to_the_right(a: np.ndarray) -> np.ndarray:
    """``c[i] = #{j > i : a[j] < a[i]}`` for distinct non-negative ints, by bottom-up merge sort."""
    n = len(a)
    counts = np.zeros(n, dtype=np.int64)
    perm = np.arange(n)
    vals = a.astype(np.int64)
    span = int(vals.max()) + 1 if n else 1
    pos = np.arange(n)
    s = 1
    while s < n:
        pair = pos // (2 * s)
        order = np.argsort(pair * span + vals, kind="stable")  # merge neighbouring sorted runs
        merged = np.empty(n, dtype=np.int64)
        merged[order] = pos
        left = (pos // s) % 2 == 0
        # a left element's merged position minus its own = right elements merged below it
        counts[perm[left]] += (merged - pos)[left]
        perm, vals = perm[order], vals[order]
        s *= 2
    return counts


def reuse_distances(stream: np.ndarray) -> np.ndarray:
    """LRU stack distance of every access (distinct rows since the previous access; -1 if first)."""
    stream = np.asarray(stream, dtype=np.int64)
    n = len(stream)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    t = np.arange(n)
    key = np.lexsort((t, stream))  # accesses grouped by row, in time order
    same = stream[key][1:] == stream[key][:-1]
    nxt = n + t  # distinct "never again" values
    prev = np.full(n, -1)
    nxt[key[:-1][same]] = key[1:][same]
    prev[key[1:][same]] = key[:-1][same]
    c = _smaller_to_the_right(nxt)
    d = np.full(n, -1, dtype=np.int64)
    has = prev >= 0
    p = prev[has]
    d[has] = (t[has] - p - 1) - c[p]
    return d


def lru_misses(stream: np.ndarray, capacity: int) -> int:
    """Misses of a fully associative LRU cache of ``capacity`` rows on ``stream`` (exact)."""
    d = reuse_distances(stream)
    return int(np.count_nonzero((d < 0) | (d >= capacity)))


@dataclass(frozen=True)
class TraceTraffic:
    """DRAM traffic of one aggregation over a real edge list [bytes unless named otherwise]."""

    policy: str
    order: str
    buffer_bytes: float
    features: int
    messages: int
    rows_loaded: int
    gather_bytes: float
    dram_bytes: float
    closed_form_gather_bytes: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def aggregation_traffic(src: Any, dst: Any, num_nodes: int, features: int, buffer_bytes: float, *,
                        order: str = "natural", policy: str = "window", value_bytes: float = 4.0,
                        index_bytes: float = 8.0, self_loops: bool = True, weighted: bool = True,
                        perm: np.ndarray | None = None) -> TraceTraffic:
    """Exact DRAM bytes of ``out[i] = sum_{j->i} w_ji h[j]`` over the edges ``src -> dst``."""
    if policy not in POLICIES:
        raise unknown("trace policy", policy, POLICIES)
    if features < 1 or buffer_bytes < 0:
        raise CodesignError(f"features must be >= 1 and buffer bytes >= 0, got {features}, {buffer_bytes}")
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    if self_loops:
        loop = np.arange(num_nodes)
        src, dst = np.concatenate([src, loop]), np.concatenate([dst, loop])
    perm = node_order(src, dst, num_nodes, order) if perm is None else perm
    pos = _positions(perm)
    sp, dp = pos[src], pos[dst]
    row = features * value_bytes
    if policy == "window":
        rows = windowed_rows_loaded(sp, dp, num_nodes, window_rows(buffer_bytes, row))
    else:
        stream = sp[np.lexsort((sp, dp))]
        rows = lru_misses(stream, int(buffer_bytes // row))
    nnz = len(src)
    gather = rows * row
    table = num_nodes * row
    closed = min(table, nnz * row) if table <= buffer_bytes else nnz * row  # ops.Aggregate's guess
    dram = gather + 2.0 * nnz * index_bytes + (nnz * value_bytes if weighted else 0.0) + num_nodes * row
    return TraceTraffic(policy, order, float(buffer_bytes), int(features), int(nnz), int(rows), float(gather),
                        float(dram), float(closed))


def layered_traffic(layers: list[tuple[Any, Any]], widths: list[int], num_nodes: int, buffer_bytes: float,
                    **kw: Any) -> list[TraceTraffic]:
    """One :func:`aggregation_traffic` per layer: its own (pruned) edge list and feature width."""
    if len(layers) != len(widths):
        raise CodesignError(f"{len(layers)} edge lists but {len(widths)} layer widths")
    return [aggregation_traffic(s, d, num_nodes, f, buffer_bytes, **kw) for (s, d), f in zip(layers, widths)]
