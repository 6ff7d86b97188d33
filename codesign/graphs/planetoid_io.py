"""Read the Planetoid files (``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``) without scipy.

The feature pickles hold ``scipy.sparse.csr_matrix`` objects written by Python 2. We unpickle them
with a stand-in class that keeps the CSR arrays (``data``, ``indices``, ``indptr``, ``_shape``) and
densifies them with numpy, so the project does not need scipy. The assembly below follows PyG's
``read_planetoid_data`` (same node order, same public split, same CiteSeer fix for isolated test
nodes), so the tensors are those PyG's ``Planetoid`` would give.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from costmodels.errors import CodesignError

PLANETOID_FILES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


class _CSR:
    """Stand-in for a pickled ``scipy.sparse.csr_matrix``: enough to densify it."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def dense(self) -> np.ndarray:
        rows, cols = self._shape  # type: ignore[attr-defined]
        out = np.zeros((rows, cols), dtype=np.float32)
        indptr, indices, data = self.indptr, self.indices, self.data  # type: ignore[attr-defined]
        row_of = np.repeat(np.arange(rows), np.diff(indptr))
        out[row_of, indices] = data
        return out


class _Unpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, a csr stand-in and plain containers only: a crafted file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "ndarray"),
               ("numpy", "dtype"), ("_codecs", "encode"), ("collections", "defaultdict"),
               ("collections", "OrderedDict"), ("builtins", "list"), ("builtins", "dict"), ("builtins", "set"),
               ("builtins", "tuple"), ("builtins", "int"), ("builtins", "float"), ("builtins", "object"),
               ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}

    def find_class(self, module: str, name: str):
        if module.startswith("scipy.sparse") and name.endswith("_matrix"):
            if name != "csr_matrix":
                raise pickle.UnpicklingError(f"unsupported sparse format {name} (only csr is read)")
            return _CSR
        if module == "__builtin__":
            module = "builtins"
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name} from a data file")
        if module == "numpy.core.multiarray" and not hasattr(np, "core"):
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _corrupt(path: Path, exc: BaseException) -> CodesignError:
    return CodesignError(f"{path} is truncated or corrupt ({type(exc).__name__}: {str(exc)[:80]}); delete it and "
                         "put the original Planetoid file there (or run once online to download it)")


def _bad(folder: Path, prefix: str, name: str, what: str) -> CodesignError:
    return CodesignError(f"{folder / f'ind.{prefix}.{name}'} {what}; the Planetoid files do not fit together: "
                         "put the original files there (or delete them and run once online to download them)")


def _check_shapes(folder: Path, prefix: str, items: dict) -> None:
    """Rows of x/y, allx/ally, tx/ty agree; test indices unique, after allx's rows and within the test rows."""
    tx, allx, x = items["tx"], items["allx"], items["x"]
    y, ty, ally, test_index = items["y"], items["ty"], items["ally"], items["test.index"]
    for name, t in (("x", x), ("tx", tx), ("allx", allx), ("y", y), ("ty", ty), ("ally", ally)):
        if t.dim() != 2:
            raise _bad(folder, prefix, name, f"is not a matrix (shape {list(t.shape)})")
    for a, b, ta, tb in (("ally", "allx", ally, allx), ("ty", "tx", ty, tx), ("y", "x", y, x)):
        if ta.size(0) != tb.size(0):
            raise _bad(folder, prefix, a, f"has {ta.size(0)} rows but ind.{prefix}.{b} has {tb.size(0)}")
    if y.size(0) > allx.size(0) or ty.size(1) != ally.size(1) or tx.size(1) != allx.size(1):
        raise _bad(folder, prefix, "y", "does not match allx/ally (more training rows or other widths)")
    if test_index.numel() == 0:
        raise _bad(folder, prefix, "test.index", "lists no test node")
    low, high = int(test_index.min()), int(test_index.max())
    n_all = allx.size(0)
    rows = high - low + 1 if prefix == "citeseer" else tx.size(0)  # citeseer: isolated test nodes have no row
    if low < n_all or high >= n_all + max(rows, tx.size(0)) or int(test_index.unique().numel()) != test_index.numel():
        raise _bad(folder, prefix, "test.index", f"has indices {low}..{high} (or repeats); test nodes must be "
                   f"unique and in {n_all}..{n_all + tx.size(0) - 1}")
    if prefix != "citeseer" and test_index.numel() != tx.size(0):
        raise _bad(folder, prefix, "test.index", f"lists {test_index.numel()} nodes but tx has {tx.size(0)} rows")
    if prefix == "citeseer" and rows < tx.size(0):
        raise _bad(folder, prefix, "test.index", f"spans {rows} nodes but tx has {tx.size(0)} rows")


def read_pickle(path: Path) -> object:
    """Unpickle one Planetoid file (Python 2 pickles, latin1); a damaged file is a one-line error."""
    try:
        with open(path, "rb") as f:
            out = _Unpickler(f, encoding="latin1").load()
        if isinstance(out, _CSR):
            return out.dense()
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, AttributeError, TypeError, KeyError,
            ImportError) as exc:
        raise _corrupt(path, exc) from None
    return out


def read_planetoid(folder: Path, prefix: str) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor, Tensor]]:
    """``(x [N, F], y [N], edge_index [2, E] (as listed, may repeat), (train, val, test) masks)``."""
    items = {}
    for name in PLANETOID_FILES:
        path = folder / f"ind.{prefix}.{name}"
        if name == "test.index":
            try:
                items[name] = torch.tensor([int(v) for v in path.read_text().split()], dtype=torch.long)
            except (ValueError, UnicodeDecodeError) as exc:
                raise _corrupt(path, exc) from None
        elif name == "graph":
            items[name] = read_pickle(path)
        else:
            items[name] = torch.from_numpy(np.asarray(read_pickle(path), dtype=np.float32))
    tx, allx = items["tx"], items["allx"]  # "x" (train rows) is the head of allx
    y, ty, ally = items["y"], items["ty"], items["ally"]
    graph: dict = items["graph"]  # type: ignore[assignment]
    test_index: Tensor = items["test.index"]
    _check_shapes(folder, prefix, items)
    train_index = torch.arange(y.size(0))
    val_index = torch.arange(y.size(0), y.size(0) + 500)
    sorted_test = test_index.sort()[0]
    if prefix == "citeseer":
        # isolated test nodes have no row in tx/ty: insert zero rows so indices stay consecutive
        span = int(test_index.max() - test_index.min()) + 1
        tx_ext = torch.zeros(span, tx.size(1))
        tx_ext[sorted_test - test_index.min()] = tx
        ty_ext = torch.zeros(span, ty.size(1))
        ty_ext[sorted_test - test_index.min()] = ty
        tx, ty = tx_ext, ty_ext
    x_all = torch.cat([allx, tx], dim=0)
    x_all[test_index] = x_all[sorted_test]
    labels = torch.cat([ally, ty], dim=0).max(dim=1)[1]
    labels[test_index] = labels[sorted_test]
    n = labels.size(0)

    rows: list[int] = []
    cols: list[int] = []
    if not isinstance(graph, dict):
        raise _bad(folder, prefix, "graph", f"holds a {type(graph).__name__}, not a dict of adjacency lists")
    try:
        for key, value in (graph.items() if not isinstance(graph, defaultdict) else dict(graph).items()):
            rows += [int(key)] * len(value)
            cols += [int(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise _bad(folder, prefix, "graph", f"has a non-integer node ({exc})") from None
    if (rows and min(rows) < 0) or (cols and min(cols) < 0):
        raise _bad(folder, prefix, "graph", f"has a negative node index ({min(rows + cols)})")
    edge_index = torch.tensor([rows, cols], dtype=torch.long)
    edge_index = edge_index[:, (edge_index < n).all(dim=0)]

    def mask(index: Tensor) -> Tensor:
        m = torch.zeros(n, dtype=torch.bool)
        m[index[index < n]] = True  # the 500 validation nodes are clipped on graphs smaller than that
        return m

    return x_all, labels, edge_index, (mask(train_index), mask(val_index), mask(test_index))
