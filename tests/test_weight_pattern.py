"""N:M weight masks (`--weight-pattern`): valid masks at the requested sparsity, their measured pattern
reaching the cost model, and the 2:4 credit only where the mask is 2:4."""

from __future__ import annotations

import pytest
import torch
from datasets_available import requires_cora

from codesign.cli import main
from codesign.graphs.masks import (
    global_weight_mask,
    mask_pattern,
    nm_conformance,
    nm_weight_mask,
    output_layer,
    sparsity,
)
from codesign.graphs.pipeline import GraphTrainConfig, train
from codesign.graphs.ticket import load_ticket
from costmodels import GNNSpec, graph_stats, load_profile, price_gnn_run
from costmodels.errors import CodesignError

TINY = "sbm:n=300,avg_degree=6,features=12,classes=3,seed=1"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))


def _groups_ok(mask: torch.Tensor, n: int, m: int) -> bool:
    rows = mask.reshape(mask.shape[0], -1)
    for start in range(0, rows.shape[1], m):
        if int(rows[:, start:start + m].sum(1).max()) > n:
            return False
    return True


@pytest.mark.parametrize("ratio", [0.5, 0.7, 0.9])
def test_nm_mask_is_2_4_at_the_exact_requested_sparsity(ratio):
    g = torch.Generator().manual_seed(0)
    params = {"a": torch.randn(16, 30, generator=g), "b": torch.randn(5, 16, generator=g)}
    masks = nm_weight_mask(params, ratio, 2, 4)
    total = sum(p.numel() for p in params.values())
    assert sparsity(masks) == pytest.approx(1 - (total - round(ratio * total)) / total)
    assert all(_groups_ok(mk, 2, 4) for mk in masks.values())  # every group of 4 inputs keeps <= 2
    assert nm_conformance(masks) == 1.0 and mask_pattern(masks) == "2:4"
    kept = masks["a"][0, :4].nonzero().view(-1)  # the largest magnitudes of the group were kept (at 0.5)
    if ratio == 0.5:
        assert set(kept.tolist()) == set(params["a"][0, :4].abs().topk(2).indices.tolist())


def test_a_gnn_2_4_ticket_keeps_its_classifier_dense_at_the_exact_sparsity():
    g = torch.Generator().manual_seed(0)
    params = {"convs.0.lin.weight": torch.randn(16, 40, generator=g),
              "convs.1.lin.weight": torch.randn(3, 16, generator=g)}
    assert output_layer(params) == ("convs.1.lin.weight",)
    masks = nm_weight_mask(params, 0.5, 2, 4)
    assert sparsity(masks) == 0.5  # the classifier's share is pruned from the first layer
    assert bool(masks["convs.1.lin.weight"].all()) and _groups_ok(masks["convs.0.lin.weight"], 2, 4)
    assert int(masks["convs.0.lin.weight"].sum()) == 688 // 2 - 48
    assert mask_pattern(masks) == "2:4"
    pruned = dict(masks, **{"convs.1.lin.weight": masks["convs.1.lin.weight"].clone()})
    pruned["convs.1.lin.weight"][0, 0] = False  # a pruned classifier: not the layout the cost model credits
    assert mask_pattern(pruned) == "unstructured"
    with pytest.raises(CodesignError, match="the output layer stays dense, so at most 0.9302"):
        nm_weight_mask(params, 0.95, 2, 4)


def test_a_global_magnitude_mask_is_not_2_4():
    g = torch.Generator().manual_seed(0)
    params = {"a": torch.randn(16, 32, generator=g)}
    masks = global_weight_mask(params, 0.5)
    assert nm_conformance(masks) < 0.8 and mask_pattern(masks) == "unstructured"


def test_nm_mask_below_its_floor_is_refused():
    with pytest.raises(CodesignError, match="--weight-pattern 2:4 prunes at least 0.5"):
        nm_weight_mask({"a": torch.ones(4, 8)}, 0.3, 2, 4)


@pytest.mark.parametrize("method", ["gebt", "random"])
def test_weight_pattern_gives_a_2_4_ticket_priced_with_the_credit(method, tmp_path):
    out = tmp_path / "run"
    r = train(GraphTrainConfig(dataset=TINY, method=method, epochs=3, warmup=0, weight_sparsity=0.6,
                               weight_pattern="2:4", hidden=8, out=str(out)), progress=False)
    ticket = load_ticket(out)
    classifier = output_layer(ticket.weight_masks)
    assert classifier and all(bool(ticket.weight_masks[name].all()) for name in classifier)
    assert all(_groups_ok(mk, 2, 4) for name, mk in ticket.weight_masks.items() if name not in classifier)
    total = sum(mk.numel() for mk in ticket.weight_masks.values())
    assert r["weight_sparsity"] == pytest.approx(round(0.6 * total) / total)
    assert r["cost_inputs"]["infer_weight_pattern"] == "2:4"
    assert r["cost_inputs"]["phases"][-1]["weight_pattern"] == "2:4"
    dense = train(GraphTrainConfig(dataset=TINY, method=method, epochs=3, warmup=0, weight_sparsity=0.6,
                                   hidden=8), progress=False)
    assert dense["cost_inputs"]["infer_weight_pattern"] == "unstructured"


def test_2_4_ticket_earns_the_h100_credit_only_in_fp16():
    spec, g = GNNSpec("gcn", hidden=64), graph_stats("cora")
    h100 = load_profile("h100")

    def infer_flops(dtype: str, pattern: str) -> float:
        run = price_gnn_run(spec, g, [], infer_weight_density=0.5, device=h100, dtype=dtype,
                            infer_weight_pattern=pattern)
        return float(run.infer.flops)

    first_gemm = 2.0 * g.num_nodes * g.num_features * 64  # the classifier stays dense: no credit for it
    assert infer_flops("fp16", "2:4") == pytest.approx(infer_flops("fp16", "unstructured") - first_gemm / 2)
    assert infer_flops("fp32", "2:4") == infer_flops("fp32", "unstructured")  # fp32: CUDA cores, no credit


@pytest.mark.parametrize("argv, pattern", [
    (["--weight-pattern", "2:4", "--weight-sparsity", "0.3"], "prunes at least 0.5"),
    (["--weight-pattern", "2:4", "--method", "ugs"], "applies to --method gebt or random"),
    (["--weight-pattern", "4:2"], "expected unstructured or N:M"),
])
def test_bad_weight_pattern_is_one_line(argv, pattern, capsys, tmp_path):
    args = ["train", "--dataset", TINY, "--epochs", "1", "--out", str(tmp_path / "x"), *argv]
    if "--method" not in argv:
        args += ["--method", "gebt"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert pattern in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@requires_cora
def test_a_2_4_gebt_ticket_keeps_cora_within_1_5_points_of_unstructured():
    """Issue 20: the 2:4 ticket (classifier dense) against the unstructured one at weight sparsity 0.5, paired by
    seed; measured gaps +0.5 / -0.4 / +0.1 points on seeds 0-2 (benchmarks/weight_pattern.py has 5 seeds)."""
    gaps = []
    for seed in range(3):
        acc = {p: train(GraphTrainConfig(dataset="cora", method="gebt", seed=seed, graph_sparsity=0.2,
                                         weight_sparsity=0.5, weight_pattern=p), progress=False)["test_accuracy"]
               for p in ("unstructured", "2:4")}
        gaps.append(100 * (acc["unstructured"] - acc["2:4"]))
    assert sum(gaps) / len(gaps) <= 1.5, gaps
