"""Masks: exact sparsity, symmetric graph masks, self-loops never pruned, edge-list bookkeeping."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.graphs.data import GraphData, build_graph, load_dataset
from codesign.graphs.masks import (
    global_weight_mask,
    keep_count,
    magnitude_mask,
    random_mask,
    sparsity,
    topk_mask,
)
from codesign.graphs.methods.search import edge_tiebreak
from codesign.graphs.models import GNN
from codesign.graphs.sparsify import ADMMSparsifier, L1Sparsifier

TINY = "sbm:n=200,avg_degree=6,features=8,classes=4,seed=3"


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 500), ratio=st.floats(0.0, 0.999), seed=st.integers(0, 10))
def test_masks_reach_the_requested_sparsity_exactly(n, ratio, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 5, (n,), generator=g).float()  # many ties on purpose
    k = keep_count(n, ratio)
    assert k == n - round(ratio * n)
    assert int(topk_mask(scores, ratio).sum()) == k
    assert int(random_mask(n, ratio, g).sum()) == k
    assert sparsity(topk_mask(scores, ratio)) == pytest.approx(1 - k / n)


def test_topk_breaks_ties_by_lower_index_and_keeps_largest():
    scores = torch.tensor([1.0, 3.0, 1.0, 2.0, 1.0])
    assert topk_mask(scores, 0.4).tolist() == [True, True, False, True, False]  # keep 3: 3, 2, first 1


def test_global_weight_mask_is_one_threshold_over_layers():
    params = {"a": torch.tensor([[0.1, -5.0], [0.2, 0.3]]), "b": torch.tensor([[4.0, -0.05, 0.6]])}
    m = global_weight_mask(params, 3 / 7)  # keep 4 of 7 by |w|: 5, 4, 0.6, 0.3
    assert m["a"].tolist() == [[False, True], [False, True]]
    assert m["b"].tolist() == [[True, False, True]]
    # iterative: remove 50% of the 4 alive -> keep 2 (5 and 4)
    m2 = global_weight_mask(params, 0.5, among=m)
    assert m2["a"].tolist() == [[False, True], [False, False]] and m2["b"].tolist() == [[True, False, False]]


def test_magnitude_mask_among_alive_only():
    values = torch.tensor([9.0, 1.0, 2.0, 3.0])
    alive = torch.tensor([False, True, True, True])
    assert magnitude_mask(values, 1 / 3, among=alive).tolist() == [False, False, True, True]


def test_magnitude_mask_among_alive_breaks_ties_by_the_tiebreak():
    """UGS's graph mask: equal mask values among the alive edges go to the larger tie-break key (it went by index)."""
    values = torch.tensor([9.0, 1.0, 1.0, 1.0, 5.0])
    alive = torch.tensor([False, True, True, True, True])
    assert magnitude_mask(values, 0.5, among=alive).tolist() == [False, True, False, False, True]
    key = torch.tensor([0.0, 1.0, 3.0, 2.0, 0.0])
    assert magnitude_mask(values, 0.5, among=alive, tiebreak=key).tolist() == [False, False, True, False, True]


def test_graph_masks_are_symmetric_and_exclude_self_loops():
    data = load_dataset(TINY)
    ei = data.edge_index
    assert not bool((ei[0] == ei[1]).any())  # no self-loops in the (prunable) edge list
    assert data.num_edges == 2 * data.num_undirected
    assert bool((data.undirected[0] < data.undirected[1]).all())
    mask = random_mask(data.num_undirected, 0.6, torch.Generator().manual_seed(0))
    kept, _ = data.edges_for(mask)
    forward = set(map(tuple, kept.t().tolist()))
    assert forward == {(v, u) for u, v in forward}  # symmetric
    assert len(forward) == 2 * int(mask.sum())


def test_self_loops_survive_full_pruning():
    # every edge pruned: a GCN still sees each node's self-loop, so out = lin(x) + bias (degree 1)
    data = load_dataset(TINY)
    torch.manual_seed(0)
    model = GNN("gcn", data.num_features, data.num_classes, layers=1, dropout=0.0).eval()
    none = torch.zeros(data.num_undirected, dtype=torch.bool)
    ei, _ = data.edges_for(none)
    assert ei.size(1) == 0
    conv = model.convs[0]
    expected = torch.log_softmax(data.x @ conv.lin.weight.t() + conv.bias, dim=-1)
    assert torch.allclose(model(data.x, ei), expected, atol=1e-6)


@pytest.mark.parametrize("cls", [ADMMSparsifier, L1Sparsifier])
def test_sparsifier_masks_exact_count(cls):
    theta = torch.linspace(0.5, 1.5, 101)
    sp = cls(0.2, theta)
    m = sp.mask(theta)
    assert int(m.sum()) == 81 and bool(m[-81:].all())


def test_admm_z_step_projects_to_sparsity():
    theta = torch.tensor([1.0, 0.2, 0.9, 0.4, 1.1])
    sp = ADMMSparsifier(0.4, theta)  # keep 3 of 5
    assert sp.z.tolist() == pytest.approx([1.0, 0.0, 0.9, 0.0, 1.1])
    assert float(sp.penalty(theta)) == pytest.approx(1e-3 * (0.2**2 + 0.4**2))
    sp.after_step(theta)  # v = theta + 0 -> same Z; U = theta - Z
    assert sp.u.tolist() == pytest.approx([0.0, 0.2, 0.0, 0.4, 0.0])


def test_gcn_layer_matches_pyg_gcnconv_with_edge_weights():
    pyg = pytest.importorskip("torch_geometric.nn")
    from codesign.graphs.aggregate import segment_softmax
    from codesign.graphs.models import GCNLayer

    data = load_dataset(TINY)
    torch.manual_seed(0)
    ours = GCNLayer(data.num_features, 5)
    ref = pyg.GCNConv(data.num_features, 5)
    ref.lin.weight.data.copy_(ours.lin.weight.data)
    ours.bias.data.uniform_()
    ref.bias.data.copy_(ours.bias.data)
    w = torch.rand(data.num_edges)
    assert torch.allclose(ours(data.x, data.edge_index, w), ref(data.x, data.edge_index, w), atol=1e-5)
    from torch_geometric.utils import softmax

    logits = torch.randn(data.num_edges, 3)
    assert torch.allclose(segment_softmax(logits, data.edge_index[1], data.num_nodes),
                          softmax(logits, data.edge_index[1], num_nodes=data.num_nodes), atol=1e-6)


@pytest.mark.parametrize("model", ["gcn", "gat", "sage", "gin"])
def test_sparse_features_train_as_csr_with_the_dense_results(model):
    from codesign.graphs.models import sparse_features

    data = load_dataset(TINY)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(data.num_nodes, 64, generator=gen) * (torch.rand(data.num_nodes, 64, generator=gen) < 0.05)
    dense_x = torch.rand(data.num_nodes, 64, generator=gen)
    assert hasattr(sparse_features(x), "_codesign_csr") and not hasattr(x, "_codesign_csr")  # a marked view
    assert sparse_features(dense_x) is dense_x  # 100% non-zero: left dense
    outs, grads = [], []
    for features in (x, sparse_features(x)):
        torch.manual_seed(0)
        gnn = GNN(model, 64, 4, dropout=0.0)
        out = gnn(features, data.edge_index, torch.rand(data.num_edges, generator=torch.Generator().manual_seed(1)))
        out.sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in gnn.parameters()])
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*grads))


def _clique_with_tail() -> GraphData:
    # nodes 0-3: a 4-clique; node 4 hangs off node 3 by its only edge
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3), (3, 4)]
    ei = torch.tensor(pairs).t()
    n = 5
    split = torch.zeros(n, dtype=torch.bool)
    return build_graph("toy", torch.eye(n), torch.zeros(n, dtype=torch.long), ei, (split, split, split), "x")


def test_resistance_tiebreak_prunes_inside_dense_regions_first():
    data = _clique_with_tail()
    key = edge_tiebreak(data, "resistance", seed=0)
    u, v = data.undirected
    deg = torch.tensor([3, 3, 3, 4, 1]) + 1.0  # self-loop counted
    assert torch.allclose(key, 1 / deg[u] + 1 / deg[v])
    # all theta tied: pruning 1 of 7 edges removes a clique edge at node 3, never the tail (3, 4)
    sp = ADMMSparsifier(1 / 7, torch.ones(data.num_undirected), tiebreak=key)
    kept = sp.mask(torch.ones(data.num_undirected))
    pruned = {tuple(e) for e in data.undirected[:, ~kept].t().tolist()}
    # lowest 1/d_u + 1/d_v: (0,3), (1,3), (2,3); among those the lower index is kept
    assert pruned == {(2, 3)}
    tail = [i for i, e in enumerate(data.undirected.t().tolist()) if e == [3, 4]][0]
    assert bool(kept[tail])


def test_min_degree_tiebreak_orders_by_weaker_then_stronger_end():
    from codesign.graphs.masks import tiebreak_order

    # a star with 1,500 leaves (hub degree > 1000: the key must stay exact) plus a sparse SBM part
    sbm = load_dataset(TINY)
    hub, leaves = sbm.num_nodes, torch.arange(sbm.num_nodes + 1, sbm.num_nodes + 1501)
    star = torch.stack([torch.full_like(leaves, hub), leaves])
    ei = torch.cat([sbm.undirected, star, torch.tensor([[0], [hub]])], dim=1)
    n = sbm.num_nodes + 1501
    split = torch.zeros(n, dtype=torch.bool)
    data = build_graph("star", torch.eye(n)[:, :2], torch.zeros(n, dtype=torch.long), ei, (split, split, split), "x")
    deg = (torch.bincount(data.edge_index[0], minlength=n) + 1).tolist()
    und = data.undirected.t().tolist()
    expected = sorted(range(len(und)), key=lambda i: (min(deg[und[i][0]], deg[und[i][1]]),
                                                        max(deg[und[i][0]], deg[und[i][1]]), i))
    order = tiebreak_order(edge_tiebreak(data, "min-degree", seed=0))
    assert order.tolist() == expected  # kept first: smaller min degree, then smaller max degree, then index


def test_models_take_one_edge_list_per_layer():
    from costmodels.errors import CodesignError

    data = load_dataset(TINY)
    torch.manual_seed(0)
    model = GNN("gcn", data.num_features, data.num_classes, layers=2).eval()
    w = torch.rand(data.num_edges)
    same = model(data.x, data.edge_index, w)
    assert torch.equal(model(data.x, [data.edge_index, data.edge_index], [w, w]), same)
    half = random_mask(data.num_undirected, 0.5, torch.Generator().manual_seed(1))
    sparse = data.edges_for(half)[0]
    mixed = model(data.x, [sparse, data.edge_index])
    conv0, conv1 = model.convs
    expected = torch.log_softmax(conv1(torch.relu(conv0(data.x, sparse, None)), data.edge_index, None), dim=-1)
    assert torch.allclose(mixed, expected, atol=1e-6)
    with pytest.raises(CodesignError, match="per-layer graph has 1 entries for a 2-layer model"):
        model(data.x, [data.edge_index])


@pytest.mark.parametrize("shape, wshape", [((7, 3), (20,)), ((7, 2, 3), (20, 2)), ((7, 2, 3), (20,)), ((7, 3), None)])
def test_weighted_aggregate_matches_index_add_and_gradchecks(shape, wshape):
    from codesign.graphs.aggregate import weighted_aggregate

    g = torch.Generator().manual_seed(0)
    h = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    ei = torch.randint(0, shape[0], (2, 20), generator=g)  # unsorted, with duplicates and self-loops
    w = None if wshape is None else torch.rand(*wshape, generator=g, dtype=torch.float64, requires_grad=True)
    base = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    msg = h[ei[0]] if w is None else h[ei[0]] * w.view(*w.shape, *([1] * (h.dim() - w.dim())))
    expected = base.clone().index_add(0, ei[1], msg)

    def agg(hh, bb, *ww):
        return weighted_aggregate(hh, ei, ww[0] if ww else None, bb)

    args = (h, base, *([w] if w is not None else []))
    assert torch.allclose(agg(*args), expected)
    assert torch.autograd.gradcheck(agg, args)
    # no edges: only the base (self) term remains
    none = torch.empty(2, 0, dtype=torch.long)
    assert torch.equal(weighted_aggregate(h, none, None if w is None else w[:0], base), base)


def _sorted_mask(scores, ratio, order=None):
    """The definition: stable descending sort (in ``order`` when given), keep the first k."""
    from codesign.graphs.masks import keep_count

    n, k = scores.numel(), keep_count(scores.numel(), ratio)
    mask = torch.zeros(n, dtype=torch.bool)
    if k:
        ranked = (torch.sort(scores, descending=True, stable=True).indices if order is None
                  else order[torch.sort(scores[order], descending=True, stable=True).indices])
        mask[ranked[:k]] = True
    return mask


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.sampled_from([0.0, 0.2, 0.5, 0.9, 0.99]),
       st.integers(0, 1000), st.booleans())
def test_topk_by_selection_equals_the_stable_sort(values, ratio, seed, ordered):
    """topk_mask selects (k-th value, then ties in order) instead of sorting: the same mask as the
    stable sort it replaced, ties included (issue 22: O(n) per search epoch, not O(n log n))."""
    scores = torch.tensor(values, dtype=torch.float32) / 2
    order = torch.randperm(len(values), generator=torch.Generator().manual_seed(seed)) if ordered else None
    assert torch.equal(topk_mask(scores, ratio, order=order), _sorted_mask(scores, ratio, order))


def test_symmetric_weights_aggregate_on_the_transpose_bit_for_bit():
    """Weights declared symmetric (edge_weight from undirected values) run on A^T's CSR without the
    per-call gather into A's order: the same output and gradients, bit for bit."""
    from codesign.graphs.aggregate import is_symmetric, weighted_aggregate
    from codesign.graphs.methods.common import edge_weight

    data = load_dataset("sbm:n=400,avg_degree=6,features=8,classes=4,seed=3")
    torch.manual_seed(0)
    theta = torch.rand(data.num_undirected, requires_grad=True)
    h = torch.randn(data.num_nodes, 5, requires_grad=True)
    assert is_symmetric(edge_weight(theta, data.dir_to_und)) and not is_symmetric(theta * 1.0)
    outs = []
    for sym in (True, False):
        w = edge_weight(theta, data.dir_to_und)
        out = weighted_aggregate(h, data.edge_index, w, symmetric=sym)
        gh, gt = torch.autograd.grad((out * out).sum(), [h, theta])
        outs.append((out.detach(), gh, gt))
    for a, b in zip(*outs, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("kind", ["gcn", "gin", "sage", "gat"])
def test_undirected_gradient_path_matches_the_directed_one(kind, frozen):
    """Edge weights that know their undirected values and pairs (``aggregate.mark_undirected``, what the
    ticket search passes) give the same forward bit for bit, and the same gradients (to the values, and to
    the weights when they train) up to floating-point summation order: per pair ``[h_i | g_i] . [g_j | h_j]``
    plus the degree's ``dd_i + dd_j`` instead of per directed edge and a scatter back; with the weights
    frozen (the search's edge-value step) GCN takes its degree's gradient from those pair values instead of
    a product with ``A``. A masked edge list (not both directions of every pair of ``pairs``) falls back
    to the directed path."""
    from codesign.graphs.methods.common import edge_weight

    data = load_dataset("sbm:n=400,avg_degree=6,features=8,classes=4,seed=3")
    torch.manual_seed(0)
    model = GNN(kind, data.num_features, data.num_classes, layers=2, hidden=16, heads=2, dropout=0.0)
    model.eval()
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(not frozen)
    theta = (torch.rand(data.num_undirected) + 0.1).requires_grad_(True)
    results = []
    for pairs in (None, data.undirected):
        w = edge_weight(theta, data.dir_to_und, pairs)
        out = model(data.x, data.edge_index, w)
        grads = torch.autograd.grad((out * out).sum(), [theta] + ([] if frozen else params))
        results.append((out.detach(), grads))
    (out_d, g_d), (out_u, g_u) = results
    assert torch.equal(out_d, out_u)
    assert g_d[0].abs().max() > 0
    for a, b in zip(g_u, g_d, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
    # a masked list: the pair path does not apply, and the result is the directed path's
    keep = torch.rand(data.num_undirected, generator=torch.Generator().manual_seed(1)) < 0.7
    edges, und = data.edges_for(keep)
    grads = []
    for pairs in (None, data.undirected):
        w = edge_weight(theta, und, pairs)
        (gt,) = torch.autograd.grad(model(data.x, edges, w).square().sum(), [theta])
        grads.append(gt)
    assert torch.equal(grads[0], grads[1])
