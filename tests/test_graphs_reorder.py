"""Node orders for locality (codesign.graphs.reorder) and a train process that imports only what it uses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from codesign.graphs.config import GraphTrainConfig
from codesign.graphs.data import load_dataset
from codesign.graphs.pipeline import train
from codesign.graphs.reorder import reorder

GRAPH = "sbm:n=400,avg_degree=6,features=8,classes=4,seed=2"


@pytest.mark.parametrize("order", ["degree", "rcm"])
def test_relabelled_graph_is_the_same_graph_and_masks_map_back(order):
    data = load_dataset(GRAPH)
    new, relabel = reorder(data, order)
    perm = relabel.perm
    assert sorted(perm.tolist()) == list(range(data.num_nodes)) and not torch.equal(perm, torch.arange(400))
    assert torch.equal(new.x, data.x[perm]) and torch.equal(new.y, data.y[perm])
    assert torch.equal(new.test_mask, data.test_mask[perm]) and new.num_edges == data.num_edges
    # a mask defined by the original edges' ids: the same edges whichever order the run used
    u, v = data.undirected
    in_orig = (u + 2 * v) % 3 == 0
    a, b = perm[new.undirected[0]], perm[new.undirected[1]]
    in_new = (torch.minimum(a, b) + 2 * torch.maximum(a, b)) % 3 == 0
    assert torch.equal(relabel.mask_to_original(in_new), in_orig)
    assert torch.equal(relabel.mask_from_original(in_orig), in_new)
    per_layer = torch.stack([in_new, ~in_new])
    assert torch.equal(relabel.mask_to_original(per_layer), torch.stack([in_orig, ~in_orig]))


def test_natural_order_is_the_data_itself():
    data = load_dataset(GRAPH)
    assert reorder(data, "natural") == (data, None)


def test_a_reordered_run_reports_its_ticket_in_the_original_edge_order():
    """gebt with and without rcm: the order is recorded, the ticket keeps the same share of the
    original edges and prices the same (the mapping itself is checked exactly above)."""
    base = dict(dataset=GRAPH, method="gebt", epochs=6, graph_sparsity=0.3, weight_sparsity=0.5)
    natural = train(GraphTrainConfig(**base), progress=False)
    rcm = train(GraphTrainConfig(**base, node_order="rcm"), progress=False)
    assert rcm["node_order"] == "rcm" and "node_order" not in natural
    assert rcm["graph_sparsity"] == pytest.approx(natural["graph_sparsity"])
    assert rcm["cost"]["train_flops"] == pytest.approx(natural["cost"]["train_flops"])


def test_bad_node_order_is_one_line():
    from costmodels.errors import CodesignError

    with pytest.raises(CodesignError, match="node order 'bfs'"):
        GraphTrainConfig(node_order="bfs")


def test_plain_train_imports_neither_dynamo_nor_pyg(tmp_path):
    """`codesign train` (gebt: search + retrain) in a fresh process: torch._dynamo (1.3 s of import,
    pulled in by torch.optim's optimisers) and torch_geometric are never imported."""
    code = ("import sys, json\nfrom codesign.cli import main\n"
            f"main(['train', '--dataset', {GRAPH!r}, '--method', 'gebt', '--epochs', '4', '--json'])\n"
            "print(json.dumps([m for m in ('torch._dynamo', 'torch_geometric', 'matplotlib', 'pandas', 'optuna')"
            " if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
