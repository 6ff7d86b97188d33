"""A sweep of bad inputs: each is one line on stderr naming the value, exit status 2, nothing created.

Plus the guarantees that make results trustworthy: a method reaches the sparsity it was asked for
(or fails saying why), a sparsity that does not apply is None, a run at chance says so, and the CNN
model list is one list.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from codesign.cli import main
from codesign.runtime.data_root import resolve_data_root
from costmodels.errors import CodesignError

TINY = "sbm:n=300,avg_degree=6,features=8,classes=3,seed=1"
PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def _idx(arr: np.ndarray, magic: int) -> bytes:
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    assert magic in (0x0801, 0x0803)
    return head + arr.astype(np.uint8).tobytes()


def _fashion_root(tmp_path: Path) -> Path:
    """A data root with small IDX files whose training images are a truncated gzip."""
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 255, (20, 28, 28)), rng.integers(0, 10, 20)
    full = gzip.compress(_idx(images, 0x0803))
    (raw / "train-images-idx3-ubyte.gz").write_bytes(full[: len(full) // 2])  # cut off mid-stream
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels, 0x0801)))
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images, 0x0803)))
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels, 0x0801)))
    return tmp_path / "data"


def _planetoid_root(tmp_path: Path) -> Path:
    """A copy of Cora's raw files with ``ind.cora.x`` cut in half."""
    src = resolve_data_root() / "Planetoid" / "Cora" / "raw"
    if not (src / "ind.cora.x").is_file():
        pytest.skip("Cora raw files not found")
    dst = tmp_path / "data" / "Planetoid" / "Cora" / "raw"
    shutil.copytree(src, dst)
    x = dst / "ind.cora.x"
    x.write_bytes(x.read_bytes()[: x.stat().st_size // 2])
    return tmp_path / "data"


def _profile(tmp_path: Path, key: str, value: str) -> Path:
    """h100.toml with ``key = value`` (e.g. ``peak_fp32_tflops = nan``)."""
    lines = (PROFILES / "h100.toml").read_text().splitlines()
    out = [f"{key} = {value}" if line.split("=")[0].strip() == key else line for line in lines]
    assert out != lines
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(out) + "\n")
    return path


CASES = {
    "sbm-degree-nan": (lambda t: ["train", "--dataset", "sbm:n=1000,avg_degree=nan,features=8,classes=2",
                                  "--method", "dense", "--epochs", "1"], "avg_degree='nan'"),
    "sbm-degree-huge": (lambda t: ["train", "--dataset", "sbm:n=1000000,avg_degree=999999,features=8,classes=2",
                                   "--method", "dense", "--epochs", "1"], "GiB"),
    "sbm-degree-not-below-n": (lambda t: ["train", "--dataset", "sbm:n=100,avg_degree=100,features=8,classes=2",
                                          "--method", "dense", "--epochs", "1"], "avg_degree=100 must be below n=100"),
    "sbm-n-not-integer": (lambda t: ["train", "--dataset", "sbm:n=1000.5,avg_degree=3,features=8,classes=2",
                                     "--method", "dense", "--epochs", "1"], "n='1000.5'"),
    "truncated-idx": (lambda t: ["train", "--task", "cnn", "--dataset", "fashion-mnist", "--data-root",
                                 str(_fashion_root(t)), "--epochs", "1"], "train-images-idx3-ubyte.gz is truncated"),
    "truncated-planetoid": (lambda t: ["train", "--dataset", "cora", "--data-root", str(_planetoid_root(t)),
                                       "--method", "dense", "--epochs", "1"], "ind.cora.x is truncated"),
    "profile-peak-zero": (lambda t: ["estimate", "--model", "gcn", "--dataset", "cora", "--device",
                                     str(_profile(t, "peak_fp32_tflops", "0"))], "peak_fp32_tflops = 0"),
    "profile-peak-nan": (lambda t: ["estimate", "--model", "gcn", "--dataset", "cora", "--device",
                                    str(_profile(t, "peak_fp32_tflops", "nan"))], "peak_fp32_tflops = nan"),
    "profile-bandwidth-inf": (lambda t: ["estimate", "--model", "gcn", "--dataset", "cora", "--device",
                                         str(_profile(t, "dram_bandwidth_gbs", "inf"))], "dram_bandwidth_gbs = inf"),
    "profile-bandwidth-zero": (lambda t: ["estimate", "--model", "gcn", "--dataset", "cora", "--device",
                                          str(_profile(t, "dram_bandwidth_gbs", "0.0"))], "dram_bandwidth_gbs = 0.0"),
    "budget-negative": (lambda t: ["search", "--budget", "-1J", "--trials", "1"], "'-1J'"),
    "area-budget-negative": (lambda t: ["search", "--device", "gcn-accelerator", "--hardware-space", "pes=256:8192",
                                        "--area-budget", "-1mm2", "--trials", "1"], "'-1mm2'"),
    "budget-zero": (lambda t: ["search", "--budget=0J", "--trials", "1"], "'0J'"),
    "cnn-sparsity-unreachable": (lambda t: ["train", "--task", "cnn", "--dataset", "synthetic-images", "--width",
                                            "0.125", "--channel-sparsity", "0.99", "--epochs", "1"],
                                 "can reach at most channel sparsity 0.9767, not the requested 0.9900"),
    "sparsity-not-applicable": (lambda t: ["train", "--dataset", TINY, "--method", "dense", "--graph-sparsity",
                                           "0.3", "--epochs", "1"], "--graph-sparsity 0.3 does not apply"),
    "weight-sparsity-geb": (lambda t: ["train", "--dataset", TINY, "--method", "geb", "--weight-sparsity",
                                       "0.5", "--epochs", "1"], "--weight-sparsity 0.5 does not apply"),
}


def assert_refused(argv: list[str], needle: str, capsys) -> None:  # type: ignore[no-untyped-def]
    """``codesign ARGV`` exits 2 with one line on stderr that contains ``needle``."""
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse-level errors exit themselves
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert needle in err, err


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_nothing_created(case, tmp_path, monkeypatch, capsys):
    build, needle = CASES[case]
    argv = build(tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    out = tmp_path / "out"
    argv = [*argv, "--out", str(out)] if argv[0] in ("train", "search") else argv
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert_refused(argv, needle, capsys)
    assert not out.exists()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing created


def test_cnn_model_lists_agree():
    from codesign.cnn.models import MODELS, build_model
    from codesign.cnn.pipeline import CNNTrainConfig
    from costmodels.cnn_resnets import cnn_model_names

    assert list(MODELS) == cnn_model_names() and "vgg13" in MODELS
    CNNTrainConfig(model="vgg13")  # accepted by train / search as by estimate
    assert len([c for c in build_model("vgg13", width=0.25).cfg if c != "M"]) == 10
    assert main(["estimate", "--model", "vgg13", "--dataset", "cifar10", "--device", "h100"]) == 0


def test_ugs_reaches_requested_sparsities():
    """The issue's case: --graph-sparsity 0.4 --weight-sparsity 0.43 used to end at 0.143 / 0.488."""
    from codesign.graphs.methods.ugs import round_targets
    from codesign.graphs.pipeline import GraphTrainConfig, train

    assert round_targets(0.43, 0.2, 3) == pytest.approx([0.2, 0.36, 0.43])
    assert round_targets(0.4, 0.05, 3)[-1] == 0.4 and round_targets(0.0, 0.05, 2) == [0.0, 0.0]
    r = train(GraphTrainConfig(dataset=TINY, method="ugs", epochs=2, graph_sparsity=0.4, weight_sparsity=0.43,
                               hidden=8), progress=False)
    assert r["rounds"] == 3
    assert abs(r["achieved_graph_sparsity"] - 0.4) <= 0.01 and abs(r["achieved_weight_sparsity"] - 0.43) <= 0.01
    assert (r["requested_graph_sparsity"], r["requested_weight_sparsity"]) == (0.4, 0.43)


def test_unreachable_sparsity_fails_with_reason():
    from codesign.runtime.result_checks import check_sparsity

    check_sparsity("gebt", "graph", 0.3, 0.305, 1000)
    check_sparsity("dense", "graph", None, 0.0, 1000)
    with pytest.raises(CodesignError, match="only 8 prunable channel entries"):
        check_sparsity("eb", "channel", 0.3, 0.25, 8)
    with pytest.raises(CodesignError, match="reached graph sparsity 0.1430, not the requested 0.4000"):
        check_sparsity("ugs", "graph", 0.4, 0.143, 5000)


def test_dense_records_no_sparsity_targets():
    from codesign.graphs.config import GraphTrainConfig

    cfg = GraphTrainConfig(method="dense")
    assert cfg.graph_sparsity is None and cfg.weight_sparsity is None
    geb = GraphTrainConfig(method="geb")
    assert geb.graph_sparsity == 0.2 and geb.weight_sparsity is None
    with pytest.raises(CodesignError, match="needs --graph-sparsity"):
        GraphTrainConfig(method="gebt", graph_sparsity=None)


def test_chance_warning():
    from codesign.runtime.result_checks import chance_warning

    counts = [1000] * 10  # balanced 10-class test set: chance 10 %
    assert chance_warning(0.10, counts) is not None and "no better than chance" in chance_warning(0.10, counts)
    assert chance_warning(0.115, counts) is not None and chance_warning(0.125, counts) is None  # bound: 12 %
    assert chance_warning(0.70, counts) is None
    assert chance_warning(0.5, [900, 100]) is not None  # worse than always answering the majority class


def test_estimate_rows_say_what_they_are_per(capsys):
    import json

    assert main(["estimate", "--model", "vgg16", "--dataset", "cifar100", "--device", "h100", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["phase"]: (r["per"], r["batch_size"]) for r in rows} == {"inference": ("batch", 128),
                                                                        "train_epoch": ("epoch", 128)}
    assert main(["estimate", "--model", "gcn", "--dataset", "cora", "--device", "h100"]) == 0
    out = capsys.readouterr().out
    assert "per: inference = one full-graph forward" in out and " per " in out.splitlines()[0] + " "


def test_cnn_retrain_keeps_its_own_length():
    """`--epochs 10` with a ticket at epoch 9 used to leave one retraining epoch at lr 0.001."""
    from codesign.cnn.methods import _retrain_lrs, retrain_epochs
    from codesign.cnn.pipeline import CNNTrainConfig

    cfg = CNNTrainConfig(epochs=10).resolved()
    assert cfg.finetune_epochs == 5
    assert retrain_epochs(cfg, 9, True) == 5 and retrain_epochs(cfg, 2, True) == 8
    assert retrain_epochs(cfg, 10, False) == 5
    # the papers' case (retrain = the rest of the run) continues the step schedule of the run
    assert _retrain_lrs(cfg, 2, 8) == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001])
    late = _retrain_lrs(cfg, 9, 5)
    assert len(late) == 5 and max(late) > 0.001  # not a degenerate tail at the smallest rate
