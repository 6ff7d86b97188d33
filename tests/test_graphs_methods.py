"""Every method runs on a tiny synthetic graph; runs are deterministic; tickets reload bit-identically."""

from __future__ import annotations

import json

import pytest
import torch

from codesign.graphs.models import GNN
from codesign.graphs.pipeline import GraphTrainConfig, train
from codesign.graphs.ticket import load_ticket
from costmodels.errors import CodesignError

TINY = "sbm:n=300,avg_degree=6,features=8,classes=3,seed=1"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("method", ["dense", "geb", "gebt", "sgcn", "random", "ugs"])
@pytest.mark.parametrize("model", ["gcn", "gat", "gin", "sage"])
def test_every_method_runs_two_epochs(method, model):
    cfg = GraphTrainConfig(model=model, dataset=TINY, method=method, epochs=2, rounds=1,
                           graph_sparsity=0.3, weight_sparsity=0.5, hidden=8, heads=2)
    r = train(cfg, progress=False)
    assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["val_accuracy"] <= 1.0
    assert all(p["epochs"] <= 2 for p in r["phases"])
    names = [p["name"] for p in r["phases"]]
    expected = {"dense": ["train"], "geb": ["pretrain", "search", "retrain"], "gebt": ["search", "retrain"],
                "sgcn": ["pretrain", "sparsify", "retrain"], "random": ["train"],
                "ugs": ["ugs-mask-r1", "ugs-retrain-r1"]}[method]
    assert names == expected
    und = r["cost_inputs"]["stats"]["num_edges"] // 2
    net = GNN(model, 8, 3, hidden=8, heads=2)
    total = sum(p.numel() for p in net.maskable().values())
    if method in ("dense",):
        assert r["graph_sparsity"] == 0.0 and r["weight_sparsity"] == 0.0
        assert r["requested_graph_sparsity"] is None and r["config"]["weight_sparsity"] is None
    else:  # every method lands on the requested counts (ugs: one round prunes straight to them)
        assert r["graph_sparsity"] == pytest.approx(round(0.3 * und) / und)
        expected_w = 0.0 if method in ("geb", "sgcn") else round(0.5 * total) / total
        assert r["weight_sparsity"] == pytest.approx(expected_w)
        assert r["requested_graph_sparsity"] == 0.3 and r["achieved_graph_sparsity"] == r["graph_sparsity"]
        assert r["requested_weight_sparsity"] == (None if method in ("geb", "sgcn") else 0.5)
    cost = r["cost"]
    assert cost["train_flops"] > 0 and cost["infer_flops"] > 0 and cost["infer_macs"] > 0
    assert [p["name"] for p in cost["phases"]] == names
    json.dumps(r, default=float)  # the --json output is serialisable


def test_runs_are_deterministic_and_seed_dependent():
    cfg = GraphTrainConfig(dataset=TINY, method="gebt", epochs=8, warmup=0)
    a, b = train(cfg, progress=False), train(cfg, progress=False)
    assert a["test_accuracy"] == b["test_accuracy"] and a["cost"]["train_flops"] == b["cost"]["train_flops"]
    assert a["detector"]["trajectory"] == b["detector"]["trajectory"]
    c = train(GraphTrainConfig(dataset=TINY, method="gebt", epochs=8, warmup=0, seed=1), progress=False)
    assert c["detector"]["trajectory"] != a["detector"]["trajectory"]


def test_search_cost_counts_epochs_actually_run():
    r = train(GraphTrainConfig(dataset=TINY, method="gebt", epochs=30, warmup=0, eta=10.0), progress=False)
    assert r["eb_epoch"] == 4  # eta huge: fires at the first distance (FIFO of 3 full after epoch 3)
    phases = {p["name"]: p for p in r["cost"]["phases"]}
    assert phases["search"]["epochs"] == 4 and phases["retrain"]["epochs"] == 30


def test_ticket_reloads_bit_identically_and_retrains_identically(tmp_path):
    out = tmp_path / "run"
    cfg = GraphTrainConfig(dataset=TINY, method="gebt", epochs=6, warmup=0, eta=10.0, out=str(out))
    first = train(cfg, progress=False)
    ticket = load_ticket(out)
    raw = torch.load(out / "ticket.pt", weights_only=True)
    assert torch.equal(ticket.graph_mask, raw["graph_mask"]) and ticket.graph_mask.dtype == torch.bool
    assert all(torch.equal(ticket.start_state[k], v) for k, v in raw["start_state"].items())
    prov = json.loads((out / "ticket.json").read_text())
    assert prov["eb_epoch"] == first["eb_epoch"] == 4 and prov["seed"] == 0
    assert prov["dataset_checksum"] == first["dataset_checksum"] and "torch" in prov["versions"]
    assert len(prov["detector"]["trajectory"]) == 4
    # seed and architecture come from the ticket, whatever the command line says
    again = train(GraphTrainConfig(dataset=TINY, epochs=6, seed=5, model="sage", ticket=str(out)), progress=False)
    assert again["test_accuracy"] == first["test_accuracy"] and again["val_accuracy"] == first["val_accuracy"]
    assert again["graph_sparsity"] == first["graph_sparsity"]
    assert again["weight_sparsity"] == first["weight_sparsity"]


def test_per_layer_search_draws_one_exact_symmetric_mask_per_layer(tmp_path):
    from codesign.graphs.data import load_dataset
    from codesign.graphs.masks import keep_count

    data = load_dataset(TINY)
    runs = {}
    for sharing in ("per-layer", "shared"):
        out = tmp_path / sharing
        runs[sharing] = train(GraphTrainConfig(dataset=TINY, method="gebt", epochs=6, warmup=0, layers=3,
                                               graph_sparsity=0.3, graph_sharing=sharing, out=str(out)),
                              progress=False)
        runs[sharing]["mask"] = load_ticket(out).graph_mask
    per, shared = runs["per-layer"]["mask"], runs["shared"]["mask"]
    assert per.shape == (3, data.num_undirected) and shared.shape == (data.num_undirected,)
    k = keep_count(data.num_undirected, 0.3)
    assert per.sum(dim=1).tolist() == [k, k, k] and int(shared.sum()) == k
    edges = data.layer_edges(per)
    assert len(edges) == 3
    for layer, ei in enumerate(edges):
        pairs = set(map(tuple, ei.t().tolist()))
        assert pairs == {(v, u) for u, v in pairs} and len(pairs) == 2 * int(per[layer].sum())
    assert runs["per-layer"]["graph_sparsity"] == runs["shared"]["graph_sparsity"] == pytest.approx(
        1 - k / data.num_undirected)
    # the cost model prices one trainable edge vector per layer in the search, the same inference
    search = [p for p in runs["per-layer"]["cost_inputs"]["phases"] if p["name"] == "search"][0]
    assert search["graph_copies"] == 3
    assert [p for p in runs["shared"]["cost_inputs"]["phases"] if p["name"] == "search"][0]["graph_copies"] == 1
    assert runs["per-layer"]["cost"]["infer_flops"] == runs["shared"]["cost"]["infer_flops"]


def test_ticket_with_wrong_edge_count_is_refused(tmp_path):
    out = tmp_path / "run"
    train(GraphTrainConfig(dataset=TINY, method="gebt", epochs=4, warmup=0, out=str(out)), progress=False)
    raw = torch.load(out / "ticket.pt", weights_only=True)
    raw["graph_mask"] = raw["graph_mask"][:, :-1]
    torch.save(raw, out / "ticket.pt")
    with pytest.raises(CodesignError, match="graph mask of shape .*draw a new ticket"):
        train(GraphTrainConfig(dataset=TINY, epochs=1, ticket=str(out)), progress=False)


def test_ticket_from_another_dataset_is_refused(tmp_path):
    out = tmp_path / "run"
    train(GraphTrainConfig(dataset=TINY, method="random", epochs=1, out=str(out)), progress=False)
    other = "sbm:n=300,avg_degree=6,features=8,classes=3,seed=2"
    with pytest.raises(CodesignError, match="was drawn on dataset .*use --dataset"):
        train(GraphTrainConfig(dataset=other, epochs=1, ticket=str(out)), progress=False)


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"method": "magic"}, "unknown method 'magic'"),
    ({"model": "mlp"}, "unknown model 'mlp'"),
    ({"graph_sparsity": 1.0}, "--graph-sparsity must be in"),
    ({"weight_sparsity": -0.1}, "--weight-sparsity must be in"),
    ({"criterion": "max"}, "unknown criterion 'max'"),
    ({"retrain_init": "warm"}, "unknown retrain init 'warm'"),
    ({"graph_sharing": "half"}, "unknown graph sharing 'half'"),
    ({"tie_break": "degree"}, "unknown tie break 'degree'"),
    ({"epochs": 0}, "--epochs must be >= 1"),
])
def test_bad_config_is_one_line(kwargs, pattern):
    with pytest.raises(CodesignError, match=pattern) as err:
        GraphTrainConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_ugs_mask_epoch_scores_the_network_after_its_step():
    """The validation accuracy that picks UGS's best masks is that of the weights and masks after the step
    (the ones a best epoch keeps), not the pre-step weights with the post-step edge mask."""
    from torch.func import functional_call

    from codesign.graphs.data import load_dataset
    from codesign.graphs.methods.common import RunContext, edge_weight
    from codesign.graphs.methods.ugs import mask_epoch
    from codesign.runtime.optim import Adam

    ctx = RunContext(GraphTrainConfig(dataset=TINY, method="ugs"), load_dataset(TINY), torch.device("cpu"), False)
    data, model = ctx.data, ctx.new_model()
    alive_g = torch.ones(data.num_undirected, dtype=torch.bool)
    alive_w = {k: torch.ones_like(p, dtype=torch.bool) for k, p in model.maskable().items()}
    edge_index, und = data.edges_for(alive_g)
    m_a = torch.ones(data.num_undirected, requires_grad=True)
    m_w = {k: torch.ones_like(p, requires_grad=True) for k, p in model.maskable().items()}
    opt, mask_opt = ctx.optimizer(model), Adam([m_a, *m_w.values()], lr=0.01)
    returned, after = [], []
    for _ in range(12):
        returned.append(mask_epoch(model, data, opt, mask_opt, edge_index, und, m_a, m_w, alive_g, alive_w))
        with torch.no_grad():
            model.eval()
            params = {k: p * m_w[k] * alive_w[k] for k, p in model.maskable().items()}
            pred = functional_call(model, params, (data.x, edge_index, edge_weight(m_a, und))).argmax(-1)
            after.append(float((pred == data.y)[data.val_mask].float().mean()))
    assert returned == after
    assert len(set(after)) > 3  # the accuracy moves over these epochs: a one-step lag would show


@pytest.mark.parametrize("retrain_init", ["rewind", "reinit"])
def test_ugs_ticket_retrains_as_the_run_did(tmp_path, retrain_init):
    """A saved UGS ticket holds the weights its last round retrained from (a fresh draw under reinit), so
    retraining it reproduces the run's accuracy."""
    out = tmp_path / "run"
    first = train(GraphTrainConfig(dataset=TINY, method="ugs", epochs=4, rounds=2, retrain_init=retrain_init,
                                   out=str(out)), progress=False)
    again = train(GraphTrainConfig(dataset=TINY, epochs=4, ticket=str(out)), progress=False)
    assert (again["test_accuracy"], again["val_accuracy"]) == (first["test_accuracy"], first["val_accuracy"])
    ticket = load_ticket(out)
    changed = any(not torch.equal(ticket.start_state[k], v) for k, v in ticket.init_state.items())
    assert changed == (retrain_init == "reinit")


def test_ticket_drawn_in_another_node_order_retrains_identically(tmp_path):
    """The retraining of a ticket runs in the node order the ticket was drawn in (dropout falls on nodes by
    position), whatever the command line's order: ``train --ticket`` retrains identically."""
    out = tmp_path / "run"
    first = train(GraphTrainConfig(dataset=TINY, method="dense", epochs=10, node_order="rcm", out=str(out)),
                  progress=False)
    again = train(GraphTrainConfig(dataset=TINY, ticket=str(out)), progress=False)
    assert (again["test_accuracy"], again["val_accuracy"]) == (first["test_accuracy"], first["val_accuracy"])
    assert again["config"]["node_order"] == "rcm"


def test_gebt_at_weight_sparsity_0_detects_on_the_graph_mask_alone():
    """With no weight to prune the weight mask keeps everything every epoch; fed to the detector, its distance
    of 0 halved the graph's under the default mean criterion, so the ticket came at twice the allowed distance."""
    cfg = GraphTrainConfig(dataset=TINY, method="gebt", epochs=12, graph_sparsity=0.3, weight_sparsity=0.0)
    r = train(cfg, progress=False)
    trajectory = r["detector"]["trajectory"]
    assert trajectory and all(row["d_weight"] is None for row in trajectory)
    fired = r["detector"]["fired_epoch"]
    scores = [row["score"] for row in trajectory if row["score"] is not None]
    assert fired is None or scores[-1] < cfg.eta  # fired on the graph distance itself
