"""A rough FLOP count of one full-batch GNN training epoch, by graph name: the work size the thread
policy (``codesign.runtime.threads``) weighs before a run starts. No data is loaded.
"""

from __future__ import annotations

from costmodels.errors import CodesignError


def gnn_epoch_flops(nodes: int, edges: int, features: int, hidden: int = 16, classes: int = 8,
                    layers: int = 2, feature_density: float = 1.0) -> float:
    """A rough FLOP count of one full-batch GNN training epoch (forward + backward ~ 3x forward):
    the feature transforms (``2 N F H`` per layer; the first one ``2 nnz(x) H`` when the features
    are sparse enough to train as CSR, ``feature_density`` < 1) and the aggregations (``2 E H`` per layer)."""
    widths = [features] + [hidden] * (layers - 1) + [classes]
    forward = sum(2.0 * nodes * a * b * (feature_density if i == 0 else 1.0) + 2.0 * edges * b
                  for i, (a, b) in enumerate(zip(widths, widths[1:])))
    return 3.0 * forward


def dataset_epoch_flops(dataset: str | None, hidden: int | None = None, layers: int | None = None) -> float | None:
    """:func:`gnn_epoch_flops` for a dataset name, from the known table or the ``sbm:`` parameters
    (no data is loaded; ``hidden``/``layers`` None: the graph config's defaults); None when the name
    is not a graph we know (the policy then uses its share)."""
    from codesign.graphs.config import GraphTrainConfig
    from costmodels.workloads import default_hidden

    hidden = default_hidden("gcn") if hidden is None else hidden
    layers = GraphTrainConfig.layers if layers is None else layers
    if not dataset:
        return None
    from costmodels import GRAPHS

    key = dataset.strip().lower()
    if key in GRAPHS:
        from costmodels.context import SPARSE_FEATURES_MAX_DENSITY

        g = GRAPHS[key]
        density = g.feature_density if g.feature_density <= SPARSE_FEATURES_MAX_DENSITY else 1.0  # CSR on CPU
        return gnn_epoch_flops(g.num_nodes, g.num_edges, g.num_features, hidden, g.num_classes, layers, density)
    if key.startswith("sbm:"):
        try:
            from codesign.graphs.synthetic import parse_sbm

            s = parse_sbm(dataset)
        except CodesignError:
            return None  # the run itself reports the bad name
        return gnn_epoch_flops(s.n, int(s.n * s.avg_degree), s.features, hidden, s.classes, layers)
    return None
