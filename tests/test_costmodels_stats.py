"""The built-in dataset statistics equal what the loaders produce from the real files."""

from __future__ import annotations

import pytest
from datasets_available import actor_present, planetoid_present

from codesign.runtime.data_root import resolve_data_root
from costmodels import graph_stats


@pytest.mark.parametrize("name", ["cora", "citeseer", "actor"])
def test_builtin_graph_stats_match_the_data(name, tmp_path, monkeypatch):
    present = {"cora": planetoid_present("Cora"), "citeseer": planetoid_present("CiteSeer"), "actor": actor_present()}
    if not present[name]:
        pytest.skip(f"{name} raw files not found under {resolve_data_root()} (set CODESIGN_DATA)")
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    from codesign.graphs.data import load_dataset

    data = load_dataset(name, resolve_data_root())
    table = graph_stats(name)
    assert data.num_nodes == table.num_nodes
    assert data.num_edges == table.num_edges
    assert data.num_features == table.num_features
    assert data.num_classes == table.num_classes
