"""Graph datasets on sparse edge lists: Planetoid (Cora, CiteSeer, PubMed), Actor, synthetic SBM.

Every loader returns a :class:`GraphData` whose graph is stored twice, both O(E):

* ``edge_index`` ``[2, E]``: directed edges, both directions of every undirected edge, no
  self-loops, coalesced (sorted by source then target). ``E`` is what the cost model calls
  ``num_edges`` (PyG ``edge_index.size(1)``).
* ``undirected`` ``[2, E/2]``: one column per undirected edge ``(u, v)`` with ``u < v``, and
  ``dir_to_und`` ``[E]`` mapping each directed edge to its undirected column. Graph masks and the
  trainable edge values live on the undirected edges, so a mask is symmetric by construction.

The data root (``--data-root`` / ``$CODESIGN_DATA`` / ``../shared/data``) may be read-only: raw files are
read in place and the processed tensors are cached under ``codesign.runtime.data_root.cache_dir()``. Raw files
missing there are downloaded into that cache when online (:mod:`codesign.graphs.download`).
The Planetoid pickles hold ``scipy.sparse`` matrices; they are read without scipy (see
:mod:`codesign.graphs.planetoid_io`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from codesign.runtime.data_root import cache_dir, resolve_data_root
from costmodels.atomic import atomic_path
from costmodels.errors import CodesignError, unknown

from .download import actor_url, planetoid_url, raw_folder
from .planetoid_io import PLANETOID_FILES, read_planetoid
from .synthetic import parse_sbm, sbm_graph

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
DATASETS = (*PLANETOID, "actor", "sbm:n=...,avg_degree=...,features=...,classes=...", "file:PATH.pt")
_CACHE_VERSION = 2


@dataclass(frozen=True)
class GraphData:
    """One node-classification graph: features ``x [N, F]``, labels ``y [N]``, split masks ``[N]``."""

    name: str
    x: Tensor
    y: Tensor
    edge_index: Tensor
    undirected: Tensor
    dir_to_und: Tensor
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    num_classes: int
    checksum: str

    @property
    def num_nodes(self) -> int:
        return int(self.x.size(0))

    @property
    def num_features(self) -> int:
        return int(self.x.size(1))

    @property
    def num_edges(self) -> int:
        """Directed edges without self-loops (the cost model's ``num_edges``)."""
        return int(self.edge_index.size(1))

    @property
    def num_undirected(self) -> int:
        return int(self.undirected.size(1))

    def layer_edges(self, graph_mask: Tensor | None) -> Tensor | list[Tensor]:
        """The ``edge_index`` a model runs on: the full graph (``None``), the edges kept by an
        undirected mask ``[E/2]``, or one edge list per layer for per-layer masks ``[L, E/2]``."""
        if graph_mask is not None and graph_mask.dim() == 2:
            return [self.edges_for(row)[0] for row in graph_mask]
        return self.edges_for(graph_mask)[0]

    def edges_for(self, graph_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """``(edge_index [2, E'], und_ids [E'])`` of the directed edges kept by an undirected mask."""
        if graph_mask is None:
            return self.edge_index, self.dir_to_und
        keep = graph_mask.index_select(0, self.dir_to_und)
        return self.edge_index[:, keep], self.dir_to_und[keep]


def _all_finite(x: Tensor) -> bool:
    """Whether every entry of ``x`` is finite (see ``build_graph``); an empty ``x`` is."""
    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x if x.is_floating_point() else x.float())
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def _sorted_unique(keys: Any) -> Any:
    """The distinct values of the int64 array ``keys``, ascending (``torch.unique``'s result): a sort and a
    neighbour comparison (``np.unique`` hashes here, ~60x slower at 5 * 10^6 keys)."""
    import numpy as np

    ordered = np.sort(keys)
    if ordered.size == 0:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _both_directions(und: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Both directions of the undirected edges ``und`` (sorted by (lo, hi), lo < hi), coalesced: sorted by
    (source, target), and each directed edge's undirected id. Placed by counting, with one argsort and no
    division: row ``v`` of the directed list holds first its edges to smaller ids (the backward copies
    ``hi -> lo`` with ``hi = v``, by ``lo``), then its edges to larger ids (the forward copies, in ``und``'s
    order). 10^6 nodes, 5 * 10^6 edges, one core, five alternations in one process: 0.68-0.74 s against
    0.87-0.93 s for a merge of the two sorted key lists by ``searchsorted`` (the same result; 2026-12-05)."""
    import numpy as np

    lo, hi = und[0], und[1]
    m = lo.numel()
    rank = torch.arange(m)
    fwd_deg, back_deg = torch.bincount(lo, minlength=n), torch.bincount(hi, minlength=n)
    deg = fwd_deg + back_deg
    row_start = torch.cumsum(deg, 0) - deg
    fwd_start = torch.cumsum(fwd_deg, 0) - fwd_deg  # where each node's forward run starts in und
    back_start = torch.cumsum(back_deg, 0) - back_deg
    at_fwd = (row_start + back_deg - fwd_start).index_select(0, lo) + rank
    # keys are distinct: the one sorting permutation, as a stable sort's
    back_id = torch.from_numpy(np.argsort((hi * n + lo).numpy()))  # backward copies in (hi, lo) order
    back_src = hi.index_select(0, back_id)
    at_back = (row_start - back_start).index_select(0, back_src) + rank
    edge_index = torch.empty(2, 2 * m, dtype=torch.long)
    edge_index[0].index_copy_(0, at_fwd, lo).index_copy_(0, at_back, back_src)
    edge_index[1].index_copy_(0, at_fwd, hi).index_copy_(0, at_back, lo.index_select(0, back_id))
    dir_to_und = torch.empty(2 * m, dtype=torch.long).index_copy_(0, at_fwd, rank).index_copy_(0, at_back, back_id)
    return edge_index, dir_to_und


def build_graph(
    name: str,
    x: Tensor,
    y: Tensor,
    edge_index: Tensor,
    masks: tuple[Tensor, Tensor, Tensor],
    checksum: str,
) -> GraphData:
    """Symmetrise, drop self-loops and duplicates, and index the undirected edges (all O(E log E))."""
    n = int(x.size(0))
    device = edge_index.device  # the index work runs on the CPU (numpy), its results go back here
    src, dst = edge_index[0].long().cpu(), edge_index[1].long().cpu()
    pair_key = torch.minimum(src, dst) * n + torch.maximum(src, dst)
    if bool((src == dst).any()):  # self-loops dropped
        pair_key = pair_key[src != dst]
    # sorted, one per undirected edge: numpy's sort (SIMD) is ~7x torch's here (same keys, same order)
    und_key = torch.from_numpy(_sorted_unique(pair_key.numpy()))
    und = torch.stack([und_key // n, und_key % n])
    # every loader ends here: a graph a GNN cannot be trained on is refused, whatever its source
    # the smallest and largest entry are both finite exactly when every entry is (NaN propagates through
    # aminmax; an infinity is the min or the max): one pass, no [N, F] temporary, no overflow (10^6 x 128
    # features on one core: 38 ms; a float64 sum took 0.9-1.3 s, an [N, F] isfinite mask 1.1 s)
    if n < 2 or und.size(1) == 0 or not _all_finite(x):
        what = (f"{n} node(s)" if n < 2 else "no edge between two different nodes" if und.size(1) == 0
                else "NaN or infinite features")
        raise CodesignError(f"dataset {name!r} has {what}; a graph needs >= 2 nodes, >= 1 edge and finite "
                            "features")
    edge_index, dir_to_und = _both_directions(und, n)
    und, edge_index, dir_to_und = und.to(device), edge_index.to(device), dir_to_und.to(device)
    return GraphData(
        name=name,
        x=x.float().contiguous(),
        y=y.long(),
        edge_index=edge_index,
        undirected=und,
        dir_to_und=dir_to_und,
        train_mask=masks[0].bool(),
        val_mask=masks[1].bool(),
        test_mask=masks[2].bool(),
        num_classes=int(y.max()) + 1,
        checksum=checksum,
    )


def files_checksum(paths: list[Path]) -> str:
    """sha256 over (file name, bytes) of the raw files, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _cached(name: str, checksum: str, build) -> GraphData:
    """``build()``'s graph, from the cache when it holds it; an unwritable or full cache costs the rebuild on every
    load (said once as a warning), not the run: the data itself is read in place."""
    import warnings

    try:
        path = cache_dir() / "graphs" / f"{name}-{checksum[:16]}-v{_CACHE_VERSION}.pt"
    except CodesignError as err:
        warnings.warn(f"{err}; {name} is processed again on every load meanwhile", stacklevel=2)
        return build()
    if path.exists():
        try:
            return GraphData(**torch.load(path, weights_only=True))
        except Exception:  # a stale or partial cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    data: GraphData = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save({k: getattr(data, k) for k in data.__dataclass_fields__}, tmp)
    except OSError as err:  # full disk, a folder made read-only meanwhile
        warnings.warn(f"cannot cache the processed {name} in {str(path.parent)!r} ({err.strerror or err}); it is "
                      "processed again on every load; point CODESIGN_CACHE at a writable folder", stacklevel=2)
    return data


def load_planetoid(key: str, root: Path) -> GraphData:
    """Planetoid public split (Yang et al. 2016): 20 train nodes per class, 500 val, 1000 test.

    Features are row-normalised (each node's bag of words sums to 1), as in Kipf & Welling and PyG's
    ``NormalizeFeatures``."""
    pretty = PLANETOID[key]
    names = [f"ind.{key}.{suffix}" for suffix in PLANETOID_FILES]
    try:
        folder = raw_folder(key, root, f"Planetoid/{pretty}/raw", names, planetoid_url)
    except CodesignError as err:
        partial = root / "Planetoid" / f"{pretty}_incomplete"
        if partial.is_dir():  # the shared data keeps a half-filled copy under this name on purpose
            raise CodesignError(f"{err} ({partial.name}/ there lacks "
                                f"{', '.join(n for n in names if not (partial / 'raw' / n).is_file())})") from None
        raise
    paths = [folder / n for n in names]
    checksum = files_checksum(paths)

    def build() -> GraphData:
        x, y, edge_index, masks = read_planetoid(folder, key)
        x = x / x.sum(dim=1, keepdim=True).clamp(min=1)  # row-normalised bag of words (Kipf & Welling)
        return build_graph(key, x, y, edge_index, masks, checksum)

    return _cached(key, checksum, build)


def load_actor(root: Path, split: int = 0) -> GraphData:
    """Actor / film (Geom-GCN): 7600 nodes, 932 binary features, 5 classes; split ``split`` of 10."""
    names = ["out1_node_feature_label.txt", "out1_graph_edges.txt", f"film_split_0.6_0.2_{split}.npz"]
    folder = raw_folder("actor", root, "Actor/raw", names, actor_url)
    checksum = files_checksum([folder / n for n in names])

    def build() -> GraphData:
        x, y, edge_index, masks = read_actor(folder, names)
        return build_graph("actor", x, y, edge_index, masks, checksum)

    return _cached(f"actor{split}", checksum, build)


def _actor_error(path: Path, what: str) -> CodesignError:
    what = " ".join(what.split())[:100]
    return CodesignError(f"{path} is truncated or corrupt ({what}); delete it and put the original Geom-GCN "
                         "file there (or run once online to download it)")


def read_actor(folder: Path, names: list[str]) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor, Tensor]]:
    """``(x [N, F] binary, y [N], edge_index [2, E] as listed, (train, val, test) masks)`` of the Geom-GCN
    film files ``names`` (features/labels, edges, one split); a damaged file is a one-line error naming it."""
    import zipfile

    import numpy as np

    feats: list[tuple[int, list[int]]] = []
    labels: list[tuple[int, int]] = []
    path = folder / names[0]
    try:
        for line in path.read_text().splitlines()[1:]:  # "node_id<TAB>f1,f2,...<TAB>label" after a header
            node, feat, label = line.split("\t")
            feats.append((int(node), [int(f) for f in feat.split(",")]))
            labels.append((int(node), int(label)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _actor_error(path, f"{type(exc).__name__}: {exc}") from None
    n = len(feats)
    nodes = sorted(node for node, _ in feats)
    if n == 0 or nodes != list(range(n)):
        raise _actor_error(path, f"{n} rows whose node ids are not 0..{n - 1} once each")
    if min(min(fs) for _, fs in feats) < 0 or min(label for _, label in labels) < 0:
        raise _actor_error(path, "a negative feature id or label")
    width = 1 + max(max(fs) for _, fs in feats)  # 0-based feature ids, as PyG's Actor reads them
    x = torch.zeros(n, width)
    for node, fs in feats:
        x[node, torch.tensor(fs)] = 1.0
    y = torch.zeros(n, dtype=torch.long)
    for node, label in labels:
        y[node] = label
    path = folder / names[1]
    try:  # "source<TAB>target" after a header
        rows = [tuple(map(int, ln.split("\t"))) for ln in path.read_text().splitlines()[1:]]
        edge_index = torch.tensor(rows, dtype=torch.long).t().reshape(2, -1)
    except (ValueError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
        raise _actor_error(path, f"{type(exc).__name__}: {exc}") from None
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise _actor_error(path, f"node ids {int(edge_index.min())}..{int(edge_index.max())}, not within 0..{n - 1}")
    path = folder / names[2]
    try:
        with np.load(path) as split_arrays:
            masks = tuple(torch.from_numpy(np.asarray(split_arrays[k])).bool()
                          for k in ("train_mask", "val_mask", "test_mask"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise _actor_error(path, f"{type(exc).__name__}: {exc}") from None
    if any(m.shape != (n,) for m in masks):
        raise _actor_error(path, f"masks of shapes {[list(m.shape) for m in masks]}, not [{n}]")
    return x, y, edge_index, masks  # type: ignore[return-value]


_LOADED: dict[tuple[str, str], GraphData] = {}
"""Graphs this process loaded (``GraphData`` is frozen): a search worker loads its dataset once and
reuses it across trials; the screening bounds of every trial read it too. Only the latest is kept."""


def forget_loaded() -> None:
    """Drop the graphs this process keeps (``_LOADED``), e.g. before measuring memory without them."""
    _LOADED.clear()


def load_dataset(name: str, data_root: str | Path | None = None) -> GraphData:
    """Load a dataset by name (``cora``, ``citeseer``, ``pubmed``, ``actor``, ``sbm:...``, ``file:PATH.pt``);
    a name loaded before in this process is not read again (``file:`` graphs always are)."""
    if not isinstance(name, str) or not name:
        raise CodesignError(f"--dataset must be a name, got {name!r}; valid: {', '.join(DATASETS)}")
    key = name.strip().lower()
    if key.startswith("file:"):
        from .user_graph import load_user_graph

        return load_user_graph(name.strip()[len("file:"):], build_graph)
    where = "" if key.startswith("sbm") else f"{resolve_data_root(data_root)}|{os.environ.get('CODESIGN_CACHE', '')}"
    memo = (key, where)
    if memo not in _LOADED:
        data = _load(key, name, data_root)
        _LOADED.clear()
        _LOADED[memo] = data
    return _LOADED[memo]


def _load(key: str, name: str, data_root: str | Path | None) -> GraphData:
    if key.startswith("sbm:") or key == "sbm":
        return _with_splits(sbm_graph(parse_sbm(key), build_graph))
    root = resolve_data_root(data_root)
    if key in PLANETOID:
        return load_planetoid(key, root)
    if key == "actor":
        return load_actor(root)
    raise unknown("dataset", name, list(DATASETS))


def _with_splits(data: GraphData) -> GraphData:
    """A dataset to train and test on selects nodes in each of train / val / test."""
    empty = [k for k in ("train", "val", "test") if not bool(getattr(data, f"{k}_mask").any())]
    if empty:
        raise CodesignError(f"dataset {data.name!r} has an empty {', '.join(empty)} split; give it more nodes")
    return data


def graph_summary(data: GraphData) -> dict[str, object]:
    """Plain numbers describing a graph (for results and the cost model's ``GraphStats``)."""
    return {
        "name": data.name,
        "num_nodes": data.num_nodes,
        "num_edges": data.num_edges,
        "num_features": data.num_features,
        "num_classes": data.num_classes,
        "checksum": data.checksum,
    }
