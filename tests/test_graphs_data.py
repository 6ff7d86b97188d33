"""Datasets: Planetoid and Actor readers (real files and small written files), downloads through a
fake fetch (no test touches the network), SBM, clear errors."""

from __future__ import annotations

import hashlib
import pickle
import urllib.error
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from codesign.graphs import download
from codesign.graphs.data import load_dataset
from codesign.graphs.synthetic import parse_sbm
from codesign.runtime.data_root import resolve_data_root
from costmodels.errors import CodesignError

SHARED = resolve_data_root(None)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path / "cache"))

    def offline(url, dest):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "_fetch", offline)  # never the network, whatever a test forgets


def write_planetoid(root: Path, name: str = "pubmed") -> None:
    """A 12-node graph in the Planetoid format: 3 train, test nodes 8..11 listed out of order."""
    raw = root / "Planetoid" / {"pubmed": "PubMed"}[name] / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    feats = rng.random((12, 5)).astype(np.float32)
    labels = np.eye(3, dtype=np.int64)[[0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0]]
    test_index = [10, 8, 11, 9]
    sorted_test = sorted(test_index)
    # tx/ty rows are in test_index order: row r belongs to node test_index[r]
    order = [sorted_test.index(t) for t in test_index]
    tx, ty = feats[8:][order], labels[8:][order]
    objs = {"x": feats[:3], "y": labels[:3], "allx": feats[:8], "ally": labels[:8], "tx": tx, "ty": ty,
            "graph": defaultdict(list, {0: [1, 2], 1: [0], 2: [0, 3], 3: [2, 4, 4], 4: [3, 5], 5: [4, 6],
                                        6: [5, 7], 7: [6, 8], 8: [7, 9], 9: [8, 10], 10: [9, 11], 11: [10, 11]})}
    for key, obj in objs.items():
        (raw / f"ind.{name}.{key}").write_bytes(pickle.dumps(obj, protocol=2))
    (raw / f"ind.{name}.test.index").write_text("\n".join(map(str, test_index)) + "\n")
    return feats, labels.argmax(1)


def test_pubmed_loader_reads_planetoid_format(tmp_path):
    feats, labels = write_planetoid(tmp_path / "data")
    data = load_dataset("pubmed", tmp_path / "data")
    assert (data.num_nodes, data.num_features, data.num_classes) == (12, 5, 3)
    assert data.y.tolist() == labels.tolist()
    row_norm = feats / feats.sum(1, keepdims=True)
    assert np.allclose(data.x.numpy(), row_norm, atol=1e-6)
    # 12 undirected edges (duplicate 3-4 and self-loop 11-11 dropped), both directions
    assert data.num_undirected == 11 and data.num_edges == 22
    assert data.train_mask.nonzero().view(-1).tolist() == [0, 1, 2]
    assert data.val_mask.nonzero().view(-1).tolist() == list(range(3, 12))  # 500 clipped to the graph
    assert data.test_mask.nonzero().view(-1).tolist() == [8, 9, 10, 11]
    again = load_dataset("pubmed", tmp_path / "data")  # from the cache
    assert torch.equal(again.x, data.x) and again.checksum == data.checksum


def test_offline_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(CodesignError) as err:
        load_dataset("pubmed", tmp_path)
    msg = str(err.value).replace("\\", "/")
    assert "\n" not in msg and "Planetoid/PubMed/raw" in msg and "CODESIGN_DATA" in msg
    assert "download of https://github.com/kimiyoung/planetoid/raw/master/data/ind.pubmed.x failed" in msg
    assert "name resolution" in msg
    assert not list((tmp_path / "cache" / "data").rglob("*.part"))  # nothing half-written is left


def fake_fetch_from(src: Path, calls: list[str]):
    """A ``_fetch`` serving the files in ``src`` by name (what the real URL would return)."""
    def fetch(url: str, dest: Path) -> None:
        calls.append(url)
        dest.write_bytes((src / url.rsplit("/", 1)[1]).read_bytes())
    return fetch


def test_missing_planetoid_is_downloaded_into_the_cache_and_verified(tmp_path, monkeypatch):
    feats, labels = write_planetoid(tmp_path / "upstream")
    src = tmp_path / "upstream" / "Planetoid" / "PubMed" / "raw"
    monkeypatch.setattr(download, "SHA256", {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                             for p in src.iterdir()})
    calls: list[str] = []
    monkeypatch.setattr(download, "_fetch", fake_fetch_from(src, calls))
    data = load_dataset("pubmed", tmp_path / "empty-root")
    base = "https://github.com/kimiyoung/planetoid/raw/master/data/ind.pubmed."
    assert calls == [base + ext for ext in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]
    cached = tmp_path / "cache" / "data" / "Planetoid" / "PubMed" / "raw"
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.name for p in src.iterdir())
    assert data.y.tolist() == labels.tolist() and data.num_edges == 22
    again = load_dataset("pubmed", tmp_path / "empty-root")  # found in the cache: no second download
    assert len(calls) == 8 and again.checksum == data.checksum


def test_download_with_a_wrong_checksum_is_rejected(tmp_path, monkeypatch):
    write_planetoid(tmp_path / "upstream")  # small files: not the upstream PubMed, sha256 differs
    calls: list[str] = []
    monkeypatch.setattr(download, "_fetch",
                        fake_fetch_from(tmp_path / "upstream" / "Planetoid" / "PubMed" / "raw", calls))
    with pytest.raises(CodesignError, match=r"ind.pubmed.x has sha256 [0-9a-f]{16}\.\.\., expected fbe9cb5c47200d1b"):
        load_dataset("pubmed", tmp_path / "empty-root")
    assert calls == ["https://github.com/kimiyoung/planetoid/raw/master/data/ind.pubmed.x"]
    assert not list((tmp_path / "cache" / "data").rglob("ind.pubmed.*"))  # the bad file is not kept


def write_actor(raw: Path) -> None:
    """A 4-node Actor-format set: 0-based feature ids, 2 undirected edges (one listed twice), split 0."""
    raw.mkdir(parents=True)
    (raw / "out1_node_feature_label.txt").write_text(
        "node_id\tfeature\tlabel\n0\t0,2\t1\n1\t1\t0\n2\t2,3\t1\n3\t0\t2\n")
    (raw / "out1_graph_edges.txt").write_text("node_id\tnode_id\n0\t1\n2\t3\n1\t0\n")
    t, f = True, False
    np.savez(raw / "film_split_0.6_0.2_0.npz", train_mask=np.array([t, t, f, f]),
             val_mask=np.array([f, f, t, f]), test_mask=np.array([f, f, f, t]))


def test_missing_actor_is_downloaded_from_geom_gcn(tmp_path, monkeypatch):
    write_actor(tmp_path / "upstream")
    monkeypatch.setattr(download, "SHA256", {})  # no known values for these small files: kept unchecked
    calls: list[str] = []
    monkeypatch.setattr(download, "_fetch", fake_fetch_from(tmp_path / "upstream", calls))
    data = load_dataset("actor", tmp_path / "empty-root")
    base = "https://raw.githubusercontent.com/graphdml-uiuc-jlu/geom-gcn/master/"
    assert calls == [base + "new_data/film/out1_node_feature_label.txt", base + "new_data/film/out1_graph_edges.txt",
                     base + "splits/film_split_0.6_0.2_0.npz"]
    assert data.x.tolist() == [[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]]
    assert data.y.tolist() == [1, 0, 1, 2] and data.num_undirected == 2 and data.num_edges == 4
    assert data.test_mask.tolist() == [False, False, False, True]


@pytest.mark.parametrize("file, damage, needle", [
    ("out1_node_feature_label.txt", lambda b: b[:-9], "not enough values to unpack"),  # cut mid-row
    ("out1_node_feature_label.txt", lambda b: b.replace(b"\n3\t", b"\n7\t"), "node ids are not 0..3"),
    ("out1_graph_edges.txt", lambda b: b + b"2\t", "invalid literal"),
    ("out1_graph_edges.txt", lambda b: b + b"2\t9\n", "not within 0..3"),
    ("film_split_0.6_0.2_0.npz", lambda b: b[: len(b) // 2], "BadZipFile"),
])
def test_damaged_actor_files_are_one_line_naming_the_file(tmp_path, file, damage, needle):
    """A cut-off or inconsistent Actor file was a ValueError / IndexError / BadZipFile traceback."""
    raw = tmp_path / "data" / "Actor" / "raw"
    write_actor(raw)
    (raw / file).write_bytes(damage((raw / file).read_bytes()))
    with pytest.raises(CodesignError) as err:
        load_dataset("actor", tmp_path / "data")
    msg = str(err.value)
    assert "\n" not in msg and f"{raw / file} is truncated or corrupt" in msg and needle in msg, msg


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(CodesignError, match="unknown dataset 'coraa'.*cora"):
        load_dataset("coraa")


@pytest.mark.skipif(not (SHARED / "Planetoid/Cora/raw/ind.cora.x").exists(), reason="shared data absent")
def test_real_cora_matches_pyg_counts():
    data = load_dataset("cora")
    assert (data.num_nodes, data.num_edges, data.num_features, data.num_classes) == (2708, 10556, 1433, 7)
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (140, 500, 1000)
    assert data.checksum[:12] == load_dataset("cora").checksum[:12]


def test_sbm_is_seeded_and_class_correlated():
    name = "sbm:n=2000,avg_degree=8,features=16,classes=4"
    a, b = load_dataset(name), load_dataset(name)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    c = load_dataset(name + ",seed=1")
    assert not torch.equal(a.edge_index, c.edge_index) and a.checksum != c.checksum
    assert 0.9 * 8 * 2000 < a.num_edges <= 8 * 2000  # duplicates/self-loops dropped only
    same = (a.y[a.edge_index[0]] == a.y[a.edge_index[1]]).float().mean()
    assert 0.8 < float(same) < 0.9  # p_in = 0.8 plus 1/4 of the uniform draws
    assert int(a.train_mask.sum()) == 80 and int(a.val_mask.sum()) == 500 and int(a.test_mask.sum()) == 1000


def test_sbm_seed_out_of_generator_range_is_one_line():
    """seed=1e30 or 2^64 was a ValueError traceback from torch.Generator.manual_seed ('Overflow when unpacking
    long long'); seed=-1 gave the graph of seed 2^64-1 under another name; a seed past 2^53 was rounded
    through float (2^64-1 was read as 2^64)."""
    for seed in ("1e30", "18446744073709551616", "-1"):
        with pytest.raises(CodesignError, match=r"seed must be a whole number in 0\.\.2\^64-1"):
            load_dataset(f"sbm:n=200,avg_degree=4,features=4,classes=2,seed={seed}")
    top = load_dataset("sbm:n=200,avg_degree=4,features=4,classes=2,seed=18446744073709551615")
    assert top.name.endswith(",seed=18446744073709551615")
    assert parse_sbm("sbm:n=200,avg_degree=4,features=4,classes=2,seed=9007199254740993").seed == 2**53 + 1


@pytest.mark.parametrize("bad", ["sbm:n=100", "sbm:n=100,avg_degree=2,features=4,classes=2,colour=3",
                                 "sbm:n=abc,avg_degree=2,features=4,classes=2",
                                 "sbm:n=3,avg_degree=2,features=4,classes=2"])
def test_bad_sbm_names_are_one_line(bad):
    with pytest.raises(CodesignError) as err:
        parse_sbm(bad)
    assert "\n" not in str(err.value) and "sbm:n=1000" in str(err.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_build_graph_refuses_non_finite_features_anywhere(bad):
    """One NaN or infinity anywhere in the features is refused (the check is one min/max pass, no sum)."""
    from codesign.graphs.data import build_graph

    n = 64
    ei = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    split = torch.ones(n, dtype=torch.bool)
    for pos in (0, 77, 4 * n - 1):
        x = torch.randn(n, 4)
        x.view(-1)[pos] = bad
        with pytest.raises(CodesignError, match="NaN or infinite features"):
            build_graph("toy", x, torch.zeros(n, dtype=torch.long), ei, (split, split, split), "x")
    huge = torch.full((n, 4), 3e38)  # finite, though a float32 sum of it overflows
    assert build_graph("toy", huge, torch.zeros(n, dtype=torch.long), ei, (split, split, split), "x").num_nodes == n


@pytest.mark.parametrize("seed,e", [(0, 2000), (1, 2000), (2, 2000), (3, 120)])
def test_build_graph_equals_the_plain_coalesce(seed, e):
    """build_graph's placement of both directions by counting (numpy sorts, no division) gives exactly what
    sorting both directions of the deduplicated undirected edges gives: the coalesced list, its undirected
    index, and each directed edge's undirected edge (self-loops and duplicates in the input, in both
    directions; with 120 edges on 300 nodes, many isolated nodes)."""
    from codesign.graphs.data import build_graph

    g = torch.Generator().manual_seed(seed)
    n = 300
    ei = torch.randint(0, n, (2, e), generator=g)
    ei[:, :50] = ei[:, :50].flip(0)  # reversed duplicates too
    ei = torch.cat([ei, ei[:, :40], torch.arange(5).repeat(2, 1)], 1)  # exact duplicates and self-loops
    split = torch.ones(n, dtype=torch.bool)
    d = build_graph("toy", torch.randn(n, 3), torch.zeros(n, dtype=torch.long), ei, (split, split, split), "x")
    keep = ei[0] != ei[1]
    lo, hi = torch.minimum(ei[0], ei[1])[keep], torch.maximum(ei[0], ei[1])[keep]
    und_key = torch.unique(lo * n + hi)
    assert torch.equal(d.undirected, torch.stack([und_key // n, und_key % n]))
    directed = torch.cat([und_key, (und_key % n) * n + und_key // n])
    key, order = torch.sort(directed)
    assert torch.equal(d.edge_index, torch.stack([key // n, key % n]))
    assert torch.equal(d.dir_to_und, order % und_key.numel())


def test_an_unwritable_or_full_cache_costs_the_rebuild_not_the_run(tmp_path, monkeypatch):
    """Data present in the data root loads without a writable cache (it was refused), and a cache write that
    fails (full disk) is a warning: the graph is the one a cached load gives."""
    import codesign.graphs.data as gd
    from codesign.graphs.data import forget_loaded

    write_planetoid(tmp_path / "data")
    expected = load_dataset("pubmed", tmp_path / "data")
    forget_loaded()

    def unwritable(create=True):
        raise CodesignError("cache folder '/ro' is not writable; point CODESIGN_CACHE at a writable folder")

    monkeypatch.setattr(gd, "cache_dir", unwritable)
    with pytest.warns(UserWarning, match="not writable.*processed again on every load"):
        got = load_dataset("pubmed", tmp_path / "data")
    assert torch.equal(got.edge_index, expected.edge_index) and torch.equal(got.x, expected.x)
    forget_loaded()
    monkeypatch.setattr(gd, "cache_dir", lambda create=True: tmp_path / "fresh")

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gd.torch, "save", full)
    with pytest.warns(UserWarning, match="cannot cache the processed pubmed.*No space left"):
        got = load_dataset("pubmed", tmp_path / "data")
    assert torch.equal(got.edge_index, expected.edge_index)
    assert not list((tmp_path / "fresh").rglob("*.pt*"))  # no partial file left
