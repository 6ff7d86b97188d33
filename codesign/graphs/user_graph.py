"""A user's own graph: ``--dataset file:PATH.pt``, validated, split and identified by checksum.

The file is a plain dict of tensors saved with ``torch.save`` (``torch.save({k: data[k] for k in
data.keys()}, PATH)`` turns a ``torch_geometric.data.Data`` into one). It is read with
``torch.load(weights_only=True)`` only: tensors, dicts, lists, numbers and strings, never code. A
pickled ``Data`` object would run code from the file while loading, so it is refused unless the user
passes ``--trust-pickle`` (or sets ``CODESIGN_TRUST_PICKLE=1``) for a file they made themselves.
Keys:

* ``x`` ``[N, F]`` float node features, every value finite (no NaN / Inf), ``N >= 2`` and at least one
  edge; ``y`` ``[N]`` integer labels in ``0..C-1`` (``C = max + 1``, at most ``N``);
* ``edge_index`` ``[2, E]`` integer, every index in ``0..N-1``. The graph is made undirected (both
  directions of every edge kept), self-loops and duplicate edges are dropped, as for every dataset;
* ``train_mask``/``val_mask``/``test_mask`` ``[N]`` bool. When all three are absent the split rule
  is: a seeded random permutation of the nodes (seed 0), the first 60% train, the next 20%
  validation, the rest test. Some but not all masks present is an error.

Each defect is one line naming the field, what was found and what is expected (a
``CodesignError``). The dataset's name is ``file:<file stem>`` and its checksum the sha256 of the
file's bytes, which results and tickets record.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from codesign.runtime.data_root import TRUST_ENV
from costmodels.errors import CodesignError, load_failure

MASKS = ("train_mask", "val_mask", "test_mask")
SPLIT_RULE = "no masks in the file: seeded random split (seed 0), 60% train / 20% val / 20% test"


def _fields(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    keys = getattr(obj, "keys", None)
    if callable(keys):  # torch_geometric.data.Data (keys() is a method in PyG 2.4+)
        return {k: obj[k] for k in keys()}
    raise CodesignError(f"expected a torch_geometric.data.Data or a dict of tensors, got {type(obj).__name__}")




def pickle_trusted() -> bool:
    """True when the user said ``--trust-pickle`` (the CLI sets ``CODESIGN_TRUST_PICKLE=1`` for the run)."""
    return os.environ.get(TRUST_ENV) == "1"


def _read(path: Path) -> Any:
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, weights_only=True, map_location="cpu")  # data only: no code runs
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # not a pickled object: e.g. "invalid load key", "Unsupported operand"
            raise CodesignError(f"not readable: {load_failure(exc)}") from None
        if not pickle_trusted():
            found = re.search(r"GLOBAL ([\w.]+)", str(exc))
            what = f" ({found.group(1)})" if found else ""
            raise CodesignError(
                f"the file holds a pickled object{what}, and loading it would run code from the file; save a plain "
                "dict instead: torch.save({k: data[k] for k in data.keys()}, PATH), or pass --trust-pickle if you "
                "made the file yourself") from None
    except Exception as exc:
        raise CodesignError(f"not readable: {load_failure(exc)}") from None
    try:  # --trust-pickle: a pickled Data object (unpickling imports torch_geometric and may run code)
        return torch.load(path, weights_only=False, map_location="cpu")
    except Exception as exc:
        raise CodesignError(f"not readable: {load_failure(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:120]


def validate(fields: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor, Tensor] | None]:
    """Check shapes, index and label ranges; one line per defect (all defects in one error)."""
    x, y, ei = fields.get("x"), fields.get("y"), fields.get("edge_index")
    problems = [f"{k} is a {_describe(t)} tensor, " + ("which holds no values; save the tensor with its values"
                                                       if t.device.type == "meta"
                                                       else f"not a dense one; save {k}.to_dense()")
                for k, t in ((k, fields.get(k)) for k in ("x", "y", "edge_index", *MASKS))
                if isinstance(t, Tensor) and (t.layout != torch.strided or t.device.type == "meta")]
    if problems:  # the checks below read values: a sparse or meta tensor has none to read
        raise CodesignError("; ".join(problems))
    if not isinstance(x, Tensor) or x.dim() != 2 or not (x.is_floating_point() or x.dtype == torch.bool):
        problems.append(f"x must be a float tensor [N, F], got {_describe(x)}")
    n = int(x.size(0)) if isinstance(x, Tensor) and x.dim() >= 1 else -1
    if isinstance(x, Tensor) and x.dim() == 2 and x.is_floating_point():
        bad_x = int((~torch.isfinite(x)).sum())
        if bad_x:
            problems.append(f"x has {bad_x} NaN or infinite value(s); features must be finite (impute or drop them)")
    if isinstance(x, Tensor) and x.dim() == 2 and (n < 2 or x.size(1) < 1):
        problems.append(f"x has {n} node(s) and {int(x.size(1))} feature(s); a graph needs at least 2 nodes and 1 "
                        "feature")
    if not isinstance(y, Tensor):
        problems.append(f"y (node labels) is missing: need an integer tensor [N]{f' with N = {n}' if n >= 0 else ''}")
    elif y.dim() != 1 or y.size(0) != n or y.is_floating_point() or y.is_complex():
        problems.append(f"y must be an integer tensor [{n}] (one label per node), got {_describe(y)}")
    elif y.numel() and int(y.min()) < 0:
        problems.append(f"y has label {int(y.min())}: labels must be 0..C-1 (every node labelled)")
    elif y.numel() and int(y.max()) >= n:  # C = max + 1 output units: more classes than nodes is not 0..C-1
        problems.append(f"y has label {int(y.max())} with {n} nodes: labels must be 0..C-1 with C <= N; renumber "
                        "them: y = torch.unique(y, return_inverse=True)[1]")
    if (not isinstance(ei, Tensor) or ei.dim() != 2 or ei.size(0) != 2 or ei.is_floating_point()
            or ei.is_complex() or ei.dtype == torch.bool):
        problems.append(f"edge_index must be an integer tensor [2, E], got {_describe(ei)}")
    elif ei.numel() and n >= 0 and (int(ei.min()) < 0 or int(ei.max()) >= n):
        bad = int(((ei < 0) | (ei >= n)).any(0).sum())
        problems.append(f"edge_index has {bad} edge(s) with a node index outside 0..{n - 1} "
                        f"(min {int(ei.min())}, max {int(ei.max())})")
    elif not bool((ei[0] != ei[1]).any()):
        problems.append(f"edge_index has no edge between two different nodes ({int(ei.size(1))} self-loop(s) "
                        "only); a graph needs at least one edge")
    present = [k for k in MASKS if fields.get(k) is not None]
    masks = None
    if present and len(present) < 3:
        problems.append(f"has {', '.join(present)} but not {', '.join(k for k in MASKS if k not in present)}: "
                        "give all three masks or none (then: " + SPLIT_RULE + ")")
    elif present:
        ms = []
        for k in MASKS:
            m = fields[k]
            if not isinstance(m, Tensor) or m.dim() != 1 or m.size(0) != n:
                problems.append(f"{k} must be a bool tensor [{n}], got {_describe(m)}")
            else:
                ms.append(m.bool())
        if len(ms) == 3:
            problems += mask_problems(ms[0], ms[1], ms[2])
            masks = (ms[0], ms[1], ms[2])
    if problems:
        raise CodesignError("; ".join(problems))
    assert isinstance(x, Tensor) and isinstance(y, Tensor) and isinstance(ei, Tensor)
    return x, y, ei, masks


def mask_problems(train: Tensor, val: Tensor, test: Tensor) -> list[str]:
    """Each split selects a node, and no node is both trained on and evaluated (accuracy would be inflated)."""
    problems = [f"{k} selects no node" for k, m in zip(MASKS, (train, val, test)) if not bool(m.any())]
    for (a, ma), (b, mb) in (((MASKS[0], train), (MASKS[1], val)), ((MASKS[0], train), (MASKS[2], test))):
        both = int((ma & mb).sum())
        if both:
            problems.append(f"{a} and {b} share {both} node(s); the splits must not overlap")
    return problems


def _describe(t: Any) -> str:
    if t is None:
        return "nothing"
    if isinstance(t, Tensor):
        layout = "" if t.layout == torch.strided else f"{str(t.layout).replace('torch.', '')} "
        meta = "meta " if t.device.type == "meta" else ""
        return f"{meta}{layout}{str(t.dtype).replace('torch.', '')} {list(t.shape)}"
    return type(t).__name__


def default_split(n: int) -> tuple[Tensor, Tensor, Tensor]:
    """The documented split rule when the file has no masks (see the module docstring)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    n_train, n_val = int(0.6 * n), int(0.2 * n)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][perm[:n_train]] = True
    masks[1][perm[n_train:n_train + n_val]] = True
    masks[2][perm[n_train + n_val:]] = True
    return masks[0], masks[1], masks[2]


def load_user_graph(path_text: str, build: Callable) -> Any:
    """Load, validate and index ``path_text`` (see the module docstring); ``build`` = ``data.build_graph``."""
    path = Path(path_text).expanduser()
    label = f"--dataset file:{path_text}"
    if not path_text or not path.is_file():
        raise CodesignError(f"{label}: no such file; save a torch_geometric.data.Data with torch.save(data, PATH)")
    raw = path.read_bytes()
    checksum = hashlib.sha256(raw).hexdigest()
    try:
        x, y, ei, masks = validate(_fields(_read(path)))
    except CodesignError as err:
        raise CodesignError(f"{label}: {err}") from None
    if masks is None:
        masks = default_split(int(x.size(0)))
        if mask_problems(*masks):
            raise CodesignError(f"{label}: {int(x.size(0))} nodes are too few for the default split (60/20/20 needs "
                                "at least 5 nodes); add nodes or give train/val/test masks")
    return build(f"file:{path.stem}", x.float(), y.long(), ei.long(), masks, checksum)
