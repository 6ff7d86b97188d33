"""Save and load graph tickets with their provenance.

A ticket folder holds ``ticket.pt`` (tensors: graph mask on undirected edges - ``[E/2]``, or
``[L, E/2]`` with one row per layer for per-layer graphs - weight masks, the
weights retraining starts from, the initial weights, the final weights) and ``ticket.json`` (the
same provenance in readable form: config, seed, library versions, dataset name and checksum, EB
epoch, detector trajectory, achieved sparsities). Loading a ticket for another dataset is a
:class:`CodesignError`; a ticket written by other library versions loads with a warning.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from codesign.runtime.versions import versions
from costmodels.atomic import atomic_path, write_text
from costmodels.errors import CodesignError, load_failure

from .data import GraphData

FORMAT = "codesign-graph-ticket/1"


@dataclass(frozen=True)
class Ticket:
    """A drawn ticket: masks + the weights retraining starts from + provenance."""

    graph_mask: Tensor | None
    weight_masks: dict[str, Tensor] | None
    start_state: dict[str, Tensor]
    init_state: dict[str, Tensor]
    final_state: dict[str, Tensor] | None
    provenance: dict[str, object]


def save_ticket(folder: str | Path, ticket: Ticket) -> Path:
    """Write ``ticket.pt`` and ``ticket.json`` into ``folder`` (created); returns the .pt path."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CodesignError(f"--out {str(folder)!r}: cannot create the folder ({exc.strerror}); "
                            "pick a writable path") from None
    path = out / "ticket.pt"
    tensors = {
        "format": FORMAT,
        "graph_mask": ticket.graph_mask,
        "weight_masks": ticket.weight_masks,
        "start_state": ticket.start_state,
        "init_state": ticket.init_state,
        "final_state": ticket.final_state,
        "provenance": json.dumps(ticket.provenance, default=str),
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(tensors, tmp)
        write_text(out / "ticket.json", json.dumps(ticket.provenance, indent=2, default=str) + "\n")
    except OSError as exc:
        raise CodesignError(f"--out {str(folder)!r}: cannot write the ticket ({exc.strerror or exc}); the previous "
                            "files, if any, are unchanged; free space or pick another folder") from None
    return path


def load_ticket(path: str | Path, data: GraphData | None = None, flag: str = "--ticket") -> Ticket:
    """Load a ticket (a folder or its ``ticket.pt``); check it belongs to ``data`` when given. ``flag``: how
    errors name the path (the option or argument the user gave it as)."""
    p = Path(path)
    if p.is_dir():
        p = p / "ticket.pt"
    if not p.is_file():
        raise CodesignError(f"{flag} {str(path)!r}: no ticket.pt there; pass the --out folder of a "
                            "`codesign train --task graph` run")
    try:
        raw = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as exc:  # not a torch file, or a corrupt one
        raise CodesignError(f"{flag} {str(path)!r}: not a readable ticket ({load_failure(exc)})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CodesignError(f"{flag} {str(path)!r}: not a {FORMAT} file")
    prov = json.loads(raw["provenance"])
    if data is not None:
        if prov.get("dataset_checksum") != data.checksum:
            config = prov.get("config") if isinstance(prov.get("config"), dict) else {}
            source = config.get("dataset", prov.get("dataset"))  # file: datasets: the path it was read from
            raise CodesignError(
                f"{flag} {str(path)!r} was drawn on dataset {prov.get('dataset')!r} "
                f"(checksum {str(prov.get('dataset_checksum'))[:12]}), not on {data.name!r} "
                f"(checksum {data.checksum[:12]}); use --dataset {source} or draw a new ticket")
        mask = raw["graph_mask"]
        if mask is not None and (mask.dim() not in (1, 2) or mask.size(-1) != data.num_undirected):
            raise CodesignError(f"{flag} {str(path)!r}: graph mask of shape {tuple(mask.shape)}, dataset "
                                f"{data.name!r} has {data.num_undirected} edges; draw a new ticket")
    now = versions()
    saved = prov.get("versions", {})
    if isinstance(saved, dict) and any(saved.get(k) != v for k, v in now.items() if k != "python"):
        warnings.warn(f"ticket {p} was written with {saved}, running {now}; results may differ", stacklevel=2)
    return Ticket(raw["graph_mask"], raw["weight_masks"], raw["start_state"], raw["init_state"],
                  raw["final_state"], prov)
