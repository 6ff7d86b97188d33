"""A user's graph (`--dataset file:PATH.pt`): validation, split rule, checksum, every command; a ticket
trained on it, exported to PyG and reloaded with the same test accuracy."""

from __future__ import annotations

import json

import pytest
import torch

from codesign.cli import main
from codesign.graphs.data import load_dataset
from codesign.graphs.user_graph import default_split

Data = pytest.importorskip("torch_geometric.data").Data


def two_communities(n: int = 200, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two equal communities, 90% of edges inside; weakly informative features."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) >= n // 2).long()
    src = torch.randint(0, n, (6 * n,), generator=g)
    inside = torch.rand(6 * n, generator=g) < 0.9
    side = torch.where(inside, y[src], 1 - y[src])
    dst = torch.randint(0, n // 2, (6 * n,), generator=g) + (n // 2) * side
    x = torch.randn(n, 16, generator=g) + 0.3 * torch.nn.functional.one_hot(y, 16).float()
    return {"x": x, "y": y, "edge_index": torch.stack([src, dst])}


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "two.pt"
    torch.save(two_communities(), path)  # the documented format: a plain dict of tensors
    return path


def test_file_dataset_loads_made_undirected_split_and_checksummed(graph_file):
    data = load_dataset(f"file:{graph_file}")
    assert data.name == "file:two" and data.num_nodes == 200 and data.num_classes == 2
    src, dst = data.edge_index
    assert (src != dst).all()
    assert torch.equal(torch.sort(src * 200 + dst).values, torch.sort(dst * 200 + src).values)  # undirected
    train, val, test = default_split(200)
    assert torch.equal(data.train_mask, train) and int(train.sum()) == 120 and int(val.sum()) == 40
    assert not (train & test).any()
    import hashlib

    assert data.checksum == hashlib.sha256(graph_file.read_bytes()).hexdigest()


@pytest.mark.parametrize(("change", "needle"), [
    ({"x": torch.randn(200)}, "x must be a float tensor [N, F], got float32 [200]"),
    ({"y": None}, "y (node labels) is missing"),
    ({"y": torch.zeros(150, dtype=torch.long)}, "y must be an integer tensor [200]"),
    ({"y": torch.full((200,), -1)}, "y has label -1"),
    ({"y": torch.tensor([0] * 199 + [2**40])}, "y has label 1099511627776 with 200 nodes"),  # was an 8 TB alloc
    ({"edge_index": torch.tensor([[0, 1], [1, 200]])}, "edge_index has 1 edge(s) with a node index outside 0..199"),
    ({"edge_index": torch.zeros(3, 4, dtype=torch.long)}, "edge_index must be an integer tensor [2, E]"),
    ({"train_mask": torch.ones(200, dtype=torch.bool)}, "has train_mask but not val_mask, test_mask"),
    # these three were a NotImplementedError / RuntimeError traceback, or (bool) silently read as node ids 0/1
    ({"x": torch.eye(200, 16).to_sparse()}, "x is a sparse_coo float32 [200, 16] tensor, not a dense one; "
                                            "save x.to_dense()"),
    ({"x": torch.empty(200, 16, device="meta")}, "x is a meta float32 [200, 16] tensor, which holds no values"),
    ({"edge_index": torch.tensor([[True, False], [False, True]])}, "edge_index must be an integer tensor [2, E], "
                                                                    "got bool [2, 2]"),
])
def test_bad_files_are_one_line(tmp_path, capsys, change, needle):
    fields = two_communities()
    fields.update(change)
    path = tmp_path / "bad.pt"
    torch.save({k: v for k, v in fields.items() if v is not None}, path)
    assert main(["train", "--dataset", f"file:{path}", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and f"file:{path}" in err, err


def test_missing_file_is_one_line(capsys):
    assert main(["estimate", "--model", "gcn", "--dataset", "file:/nonexistent/g.pt", "--device", "h100"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_estimate_builtin_model_on_file_dataset(graph_file, capsys):
    assert main(["estimate", "--model", "gat", "--dataset", f"file:{graph_file}", "--device", "h100", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["flops"] > 0 and {r["phase"] for r in rows} == {"inference", "train_epoch", "search_epoch"}


def test_gebt_ticket_on_user_graph_learns_and_exports_to_pyg(graph_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"file:{graph_file}", "--method", "gebt", "--epochs", "15", "--json",
                 "--out", str(run)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] >= 0.8  # two communities: chance is 0.5
    assert result["dataset_checksum"] == load_dataset(f"file:{graph_file}").checksum
    ticket = json.loads((run / "ticket.json").read_text())
    assert ticket["dataset_checksum"] == result["dataset_checksum"]

    assert main(["export", str(run), "--format", "pyg", "--out", str(tmp_path / "pyg")]) == 0
    from codesign.graphs.export import load_pyg, test_accuracy

    model, data, edge_indices = load_pyg(tmp_path / "pyg")
    assert type(model.convs[0]).__name__ == "GCNConv" and len(edge_indices) == 2
    assert edge_indices[0].size(1) < data.edge_index.size(1)  # the pruned graph
    assert abs(test_accuracy(model, data, edge_indices) - result["test_accuracy"]) < 1e-3
    other = tmp_path / "other.pt"
    torch.save(Data(**two_communities(seed=1)), other)
    assert main(["train", "--dataset", f"file:{other}", "--ticket", str(run), "--trust-pickle"]) == 2
    err = capsys.readouterr().err
    assert "was drawn on dataset 'file:two'" in err and f"--dataset file:{graph_file}" in err
    masks = torch.load(tmp_path / "pyg" / "weight_masks.pt")
    state = model.state_dict()
    for name, mask in masks.items():
        assert (state[name][~mask] == 0).all()
