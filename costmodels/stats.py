"""Built-in statistics of well-known datasets, so estimates never need the data itself.

Graph edge counts are *directed* edges without self-loops, as PyG stores an undirected graph
(``edge_index.size(1)``); the values were read from the PyG datasets (Cora, CiteSeer, Actor: checked
here on the shared data; PubMed, Reddit: PyG documentation tables; ogbn-arxiv: OGB's 1,166,243
directed citation edges, doubled when made undirected as the GEBT/OGB baselines train on it).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import unknown


@dataclass(frozen=True)
class GraphStats:
    """Size of a graph learning problem. ``num_edges``: directed edges, self-loops not included."""

    name: str
    num_nodes: int
    num_edges: int
    num_features: int
    num_classes: int
    num_train: int | None = None
    source: str = ""
    feature_density: float = 1.0  # non-zero fraction of the input features (measured; 1.0 = not known)


@dataclass(frozen=True)
class ImageStats:
    """Size of an image classification problem (training images per epoch, image shape)."""

    name: str
    num_train: int
    num_test: int
    channels: int
    height: int
    width: int
    num_classes: int
    source: str = ""


GRAPHS: dict[str, GraphStats] = {
    g.name: g
    for g in (
        GraphStats("cora", 2708, 10556, 1433, 7, 140, "PyG Planetoid Cora (checked on shared data; feature "
                   "density = non-zero fraction of x, measured there)", 0.012683),
        GraphStats("citeseer", 3327, 9104, 3703, 6, 120, "PyG Planetoid CiteSeer (checked on shared data; feature "
                   "density measured there)", 0.008536),
        GraphStats("pubmed", 19717, 88648, 500, 3, 60, "PyG Planetoid PubMed (PyG dataset table)"),
        GraphStats("actor", 7600, 53318, 932, 5, 3648,
                   "PyG Actor made undirected (30019 directed -> 53318; checked on shared data; feature density "
                   "measured there)", 0.005785),
        GraphStats("ogbn-arxiv", 169343, 2315598, 128, 40, 90941, "OGB ogbn-arxiv, to_undirected (coalesced)"),
        GraphStats("reddit", 232965, 114615892, 602, 41, 153431, "PyG Reddit (PyG dataset table)"),
    )
}

IMAGES: dict[str, ImageStats] = {
    s.name: s
    for s in (
        ImageStats("cifar10", 50000, 10000, 3, 32, 32, 10, "CIFAR-10 (Krizhevsky 2009)"),
        ImageStats("cifar100", 50000, 10000, 3, 32, 32, 100, "CIFAR-100 (Krizhevsky 2009)"),
        ImageStats("mnist", 60000, 10000, 1, 28, 28, 10, "MNIST (LeCun et al.)"),
        ImageStats("fashion-mnist", 60000, 10000, 1, 28, 28, 10, "Fashion-MNIST (Xiao et al. 2017)"),
        ImageStats("imagenet", 1281167, 50000, 3, 224, 224, 1000, "ILSVRC-2012"),
    )
}


def graph_stats(name: str) -> GraphStats:
    """Statistics of a known graph dataset (case-insensitive name)."""
    key = name.lower()
    if key not in GRAPHS:
        raise unknown("graph dataset", name, list(GRAPHS))
    return GRAPHS[key]


def image_key(name: str) -> str:
    """An image dataset's name as ``IMAGES`` (and ``codesign.cnn.data.DATASETS``) key it: any case, ``_`` for
    ``-`` (``MNIST``, ``Fashion_MNIST``)."""
    return name.strip().lower().replace("_", "-")


def image_stats(name: str) -> ImageStats:
    """Statistics of a known image dataset (case-insensitive name)."""
    key = image_key(name)
    if key not in IMAGES:
        raise unknown("image dataset", name, list(IMAGES))
    return IMAGES[key]
