"""Hand a graph ticket back to PyTorch Geometric: ``codesign export RUN_DIR --format pyg --out DIR``.

:func:`export_pyg` reads a ticket folder (the ``--out`` of ``codesign train --task graph``), reloads
its dataset (checked against the ticket's checksum) and writes into ``DIR``:

* ``edge_index.pt``: a list with the pruned ``edge_index`` ``[2, E_l]`` of every layer (both
  directions of every kept edge; self-loops are added by the layers as usual);
* ``state_dict.pt``: the ticket's final weights (pruned entries exactly zero) as the state dict of a
  model built from ``torch_geometric.nn`` layers (``GCNConv``, ``GATConv``, ``GINConv(Linear)``,
  ``SAGEConv``) - see :func:`build_pyg_model`;
* ``weight_masks.pt``: the weight masks under the same parameter names (True = kept);
* ``data.pt``: ``x``, ``y``, ``edge_index`` (full graph) and the three split masks, as a dict;
* ``ticket.json``: architecture, the ticket's reported test accuracy, dataset name and checksum.

:func:`load_pyg` returns ``(model, data, edge_indices)`` where ``model(data.x, edge_indices)``
gives log-probabilities (the model is in ``eval()`` mode). Importing this module does not import
PyG; :func:`load_pyg` and :func:`build_pyg_model` do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from costmodels.atomic import atomic_path, write_text
from costmodels.errors import CodesignError

FORMATS = ("pyg",)
_ARCH_KEYS = ("model", "layers", "hidden", "heads", "output_heads", "dropout")


class PyGStack(nn.Module):
    """PyG layers with ReLU + dropout between them and log-softmax at the end (codesign's GNN).

    ``forward(x, edge_indices)``: ``edge_indices`` is one ``[2, E]`` tensor for every layer or a list
    with one per layer (a ticket's per-layer graphs)."""

    def __init__(self, convs: list[nn.Module], dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_indices: Tensor | list[Tensor]) -> Tensor:
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.dropout(F.relu(x), self.dropout, self.training)
            ei = edge_indices[i] if isinstance(edge_indices, (list, tuple)) else edge_indices
            x = conv(x, ei)
        return F.log_softmax(x, dim=-1)


def build_pyg_model(arch: dict[str, Any], num_features: int, num_classes: int) -> PyGStack:
    """The ``torch_geometric.nn`` model matching codesign's ``GNN`` of ``arch`` (model, layers, ...)."""
    from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv

    kind, layers, hidden = arch["model"], int(arch["layers"]), int(arch["hidden"])
    heads, output_heads, dropout = int(arch["heads"]), int(arch.get("output_heads", 1)), float(arch["dropout"])
    convs: list[nn.Module] = []
    width = num_features
    for i in range(layers):
        last = i == layers - 1
        out = num_classes if last else hidden
        if kind == "gcn":
            convs.append(GCNConv(width, out))
        elif kind == "gat":
            h = output_heads if last else heads
            convs.append(GATConv(width, out, heads=h, concat=not last, dropout=dropout))
            out = out if last else out * heads
        elif kind == "gin":
            convs.append(GINConv(nn.Linear(width, out)))
        elif kind == "sage":
            convs.append(SAGEConv(width, out))
        else:
            raise CodesignError(f"model {kind!r} has no PyG export (gcn, gat, gin, sage)")
        width = out
    return PyGStack(convs, dropout)


def pyg_twin(model: str, num_features: int, num_classes: int) -> PyGStack:
    """The ``torch_geometric.nn`` model with the built-in ``model``'s default architecture (2 layers,
    the default hidden width, GAT 8 heads, dropout 0.5): what ``estimate --module`` is compared with."""
    from costmodels.workloads import default_hidden

    arch = {"model": model, "layers": 2, "hidden": default_hidden(model), "heads": 8, "dropout": 0.5}
    return build_pyg_model(arch, num_features, num_classes)


def to_pyg_names(kind: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """codesign ``GNN`` parameter names -> :func:`build_pyg_model` names (GIN: ``lin`` -> ``nn``, and each
    layer's ``eps`` buffer, 0 as in codesign's GIN, which ``GINConv``'s state dict holds)."""
    if kind != "gin":
        return dict(state)
    out = {k.replace(".lin.", ".nn."): v for k, v in state.items()}
    layers = sorted({k.split(".")[1] for k in state if k.startswith("convs.") and ".lin." in k}, key=int)
    dtype = next(iter(state.values())).dtype if state else torch.float32
    for i in layers:
        out[f"convs.{i}.eps"] = torch.zeros(1, dtype=dtype)
    return out


def _dataset_of(run_dir: Path, data_root: str | None) -> tuple[Any, Any]:
    from .data import load_dataset
    from .ticket import load_ticket

    ticket = load_ticket(run_dir, flag="RUN_DIR")
    config = ticket.provenance.get("config")
    if not isinstance(config, dict) or "dataset" not in config:
        raise CodesignError(f"{run_dir}: the ticket records no dataset; draw it again with codesign train --out")
    data = load_dataset(str(config["dataset"]), data_root or config.get("data_root"))
    return load_ticket(run_dir, data, flag="RUN_DIR"), data  # the second load checks the dataset checksum


def export_pyg(run_dir: str | Path, out: str | Path, data_root: str | None = None) -> Path:
    """Write the PyG export of the ticket in ``run_dir`` into ``out`` (see the module docstring)."""
    run = Path(run_dir)
    ticket, data = _dataset_of(run, data_root)
    config = ticket.provenance["config"]
    if ticket.final_state is None:
        raise CodesignError(f"{run_dir}: the ticket has no final weights to export; retrain it with --out")
    kind = str(config["model"])
    edges = data.layer_edges(ticket.graph_mask)
    edge_list = list(edges) if isinstance(edges, list) else [edges] * int(config["layers"])
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CodesignError(f"--out {str(out)!r}: cannot create the folder ({exc.strerror})") from None
    files = {
        "edge_index.pt": [e.clone() for e in edge_list],
        "state_dict.pt": to_pyg_names(kind, ticket.final_state),
        "weight_masks.pt": to_pyg_names(kind, ticket.weight_masks or {}),
        "data.pt": {"x": data.x, "y": data.y, "edge_index": data.edge_index, "train_mask": data.train_mask,
                    "val_mask": data.val_mask, "test_mask": data.test_mask},
    }
    meta = {
        "format": "codesign-pyg-ticket/1",
        "architecture": {k: config[k] for k in _ARCH_KEYS},
        "num_features": data.num_features,
        "num_classes": data.num_classes,
        "test_accuracy": ticket.provenance.get("test_accuracy"),
        "graph_sparsity": ticket.provenance.get("graph_sparsity"),
        "weight_sparsity": ticket.provenance.get("weight_sparsity"),
        "edges_per_layer": [int(e.size(1)) for e in edge_list],
        "dataset": data.name,
        "dataset_checksum": data.checksum,
        "source_run": str(run.resolve()),
        "usage": "from codesign.graphs.export import load_pyg; model, data, eis = load_pyg(DIR); "
                 "pred = model(data.x, eis).argmax(-1)",
    }
    try:
        for name, obj in files.items():
            with atomic_path(folder / name) as tmp:
                torch.save(obj, tmp)
        write_text(folder / "ticket.json", json.dumps(meta, indent=2, default=str) + "\n")
    except OSError as exc:
        raise CodesignError(f"--out {str(out)!r}: cannot write the export ({exc.strerror or exc}); every file there "
                            "is either the previous one or complete; free space and export again") from None
    return folder


def load_pyg(folder: str | Path) -> tuple[PyGStack, Any, list[Tensor]]:
    """``(model, data, edge_indices)`` from an export folder; ``model`` in eval mode, on CPU."""
    from torch_geometric.data import Data

    path = Path(folder)
    meta_path = path / "ticket.json"
    if not meta_path.is_file():
        raise CodesignError(f"{str(folder)!r}: no ticket.json; pass the --out folder of `codesign export`")
    meta = json.loads(meta_path.read_text())
    model = build_pyg_model(meta["architecture"], int(meta["num_features"]), int(meta["num_classes"]))
    model.load_state_dict(torch.load(path / "state_dict.pt", weights_only=True, map_location="cpu"))
    model.eval()
    data = Data(**torch.load(path / "data.pt", weights_only=True, map_location="cpu"))
    edge_indices = torch.load(path / "edge_index.pt", weights_only=True, map_location="cpu")
    return model, data, list(edge_indices)


def test_accuracy(model: nn.Module, data: Any, edge_indices: list[Tensor]) -> float:
    """Fraction of ``data.test_mask`` nodes ``model`` classifies correctly (no gradients)."""
    with torch.no_grad():
        pred = model(data.x, edge_indices).argmax(dim=-1)
    return float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
