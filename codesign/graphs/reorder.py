"""Node orders for locality: train on a relabelled graph, report tickets in the user's node ids.

``--node-order`` (``GraphTrainConfig.node_order``):

* ``natural``: the dataset's ids (default: a run is then bit-identical to one without this module);
* ``degree``: descending degree, ties by id (hubs' rows together at the front);
* ``rcm``: reverse Cuthill-McKee (BFS from a minimum-degree node per component, neighbours by
  ascending degree, reversed): neighbours get nearby ids, so the rows an aggregation reads for
  one node lie close together. The orders are ``costmodels.traffic.node_order``'s, the ones
  ``codesign estimate --node-order`` prices (rcm's BFS is a Python loop: seconds per 10^6 edges).

The run trains on the relabelled graph (features, labels, split masks and edges permuted; the
undirected edges re-indexed by ``build_graph``); the ticket's graph mask is mapped back to the
original undirected edge order before it is returned or saved, and the order is recorded in the
result (``node_order``). Accuracy is that of the same model up to floating-point summation order,
dropout draws per node and the index tie-break between equal edge values (measured in the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .data import GraphData, build_graph

NODE_ORDERS = ("natural", "degree", "rcm")


@dataclass(frozen=True)
class NodeOrder:
    """A relabelling: ``perm[k]`` = the original id of new node ``k``; ``und_to_orig[i]`` = the
    original index of the new graph's undirected edge ``i``."""

    name: str
    perm: Tensor
    und_to_orig: Tensor

    def mask_to_original(self, mask: Tensor | None) -> Tensor | None:
        """A graph mask ``[..., E/2]`` over the new undirected edges, in the original edge order."""
        if mask is None:
            return None
        out = torch.empty_like(mask)
        out[..., self.und_to_orig.to(mask.device)] = mask
        return out

    def mask_from_original(self, mask: Tensor | None) -> Tensor | None:
        """A graph mask in the original edge order (a saved ticket), over the new edges."""
        return None if mask is None else mask[..., self.und_to_orig.to(mask.device)]


def node_permutation(data: GraphData, order: str) -> Tensor:
    """``perm`` of ``order`` (see the module docstring) for ``data``."""
    import numpy as np

    from costmodels.traffic import node_order

    und = data.undirected.cpu().numpy()  # each edge once: node_order's degree counts both ends
    return torch.from_numpy(np.ascontiguousarray(node_order(und[0], und[1], data.num_nodes, order))).long()


def reorder(data: GraphData, order: str) -> tuple[GraphData, NodeOrder | None]:
    """``data`` relabelled by ``order`` and the relabelling (None for ``natural``: ``data`` itself)."""
    if order == "natural":
        return data, None
    perm = node_permutation(data, order)
    n = data.num_nodes
    pos = torch.empty_like(perm)
    pos[perm] = torch.arange(n)
    new = build_graph(data.name, data.x[perm], data.y[perm], pos[data.edge_index],
                      (data.train_mask[perm], data.val_mask[perm], data.test_mask[perm]), data.checksum)
    # new undirected edge (a, b) is the original (perm[a], perm[b]); find it among the original keys
    a, b = perm[new.undirected[0]], perm[new.undirected[1]]
    orig_key = data.undirected[0] * n + data.undirected[1]  # sorted (build_graph)
    und_to_orig = torch.searchsorted(orig_key, torch.minimum(a, b) * n + torch.maximum(a, b))
    return new, NodeOrder(order, perm, und_to_orig)
