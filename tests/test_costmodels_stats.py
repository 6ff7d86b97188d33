"""The built-in dataset statistics equal what the loaders produce from the real files."""

from __future__ import annotations

import pytest

from codesign.data_root import resolve_data_root
from costmodels import graph_stats


@pytest.mark.parametrize("name", ["cora", "citeseer", "actor"])
def test_builtin_graph_stats_match_the_data(name, tmp_path, monkeypatch):
    root = resolve_data_root()
    folder = {"cora": "Planetoid/Cora", "citeseer": "Planetoid/CiteSeer", "actor": "Actor"}[name]
    if not (root / folder / "raw").is_dir():
        pytest.skip(f"{root / folder} not present")
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    from codesign.graphs.data import load_dataset

    data = load_dataset(name, root)
    table = graph_stats(name)
    assert data.num_nodes == table.num_nodes
    assert data.num_edges == table.num_edges
    assert data.num_features == table.num_features
    assert data.num_classes == table.num_classes
