"""A fuzz test of the CLI (issue 21): several hundred generated command lines, run in-process.

Every case must end with exit 0 or 2 (never a traceback), a refusal (2) must print exactly one line and
create nothing (no file or folder in the working folder, the inputs, the profile folder), and a JSON result
(0) must hold no NaN, no infinity and no negative number (except where a key says it is a difference).
The cases are drawn from a fixed seed: each command's options get a good value, a hostile one (NaN, inf,
huge, negative, empty, a path escaping its folder, a folder or a binary file where a file is expected) or
nothing. Cases that would train are kept cheap (tiny synthetic graphs and images, 1-2 epochs); most are
refusals or analytical estimates.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import traceback
from pathlib import Path

import pytest
import torch

from codesign.cli import main

SEED = 21
N_CASES = int(os.environ.get("CODESIGN_FUZZ_CASES", "420"))
TINY = "sbm:n=120,avg_degree=4,features=4,classes=2,seed=1"
BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e30", "99999999999999999999", "abc", "", "2.5", "1e-320"]
NEGATIVE_OK = ("rel_err", "error", "delta", "_vs_", "gap", "saving", "violation", "relative", "diff")


def _inputs(root: Path) -> dict[str, str]:
    """Files the cases point at: good and hostile graphs, a folder, a binary file, a non-UTF-8 profile."""
    root.mkdir()
    g = torch.Generator().manual_seed(0)
    n = 30
    src = torch.arange(n - 1)
    good = {"x": torch.randn(n, 3, generator=g), "y": torch.arange(n) % 2, "edge_index": torch.stack([src, src + 1])}
    files = {
        "good": good,
        "nan": {**good, "x": torch.full((n, 3), float("nan"))},
        "empty": {"x": torch.zeros(0, 3), "y": torch.zeros(0, dtype=torch.long),
                  "edge_index": torch.zeros(2, 0, dtype=torch.long)},
        "one": {"x": torch.zeros(1, 3), "y": torch.zeros(1, dtype=torch.long),
                "edge_index": torch.zeros(2, 0, dtype=torch.long)},
        "loops": {**good, "edge_index": torch.stack([src, src])},
        "badidx": {**good, "edge_index": torch.tensor([[0, 1], [1, 99]])},
        "neglabel": {**good, "y": torch.full((n,), -1)},
        "masks": {**good, **{k: torch.ones(n, dtype=torch.bool) for k in ("train_mask", "val_mask", "test_mask")}},
    }
    out = {}
    for name, obj in files.items():
        torch.save(obj, root / f"{name}.pt")
        out[name] = f"file:{root / f'{name}.pt'}"
    (root / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (root / "folder.toml").mkdir()
    (root / "latin1.toml").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    (root / "afile").write_text("x")
    out.update(binary=str(root / "binary.bin"), folder=str(root / "folder.toml"), latin1=str(root / "latin1.toml"),
               afile=str(root / "afile"))
    return out


def _pick(rng: random.Random, good: list[str], bad: list[str], p_bad: float) -> str:
    return rng.choice(bad) if rng.random() < p_bad else rng.choice(good)


def _case(rng: random.Random, inp: dict[str, str]) -> list[str]:
    """One command line. ``p_bad`` per option keeps about half the cases refusals."""
    kind = rng.choices(["estimate", "train-graph", "train-cnn", "search", "devices", "pareto", "export", "calibrate",
                        "profile"], weights=[34, 20, 5, 9, 2, 6, 5, 8, 8])[0]
    p = 0.12
    graphs_bad = [inp[k] for k in ("nan", "empty", "one", "loops", "badidx", "neglabel", "masks")] + [
        f"file:{inp['binary']}", f"file:{inp['folder']}", "file:", "file:/nonexistent.pt", "sbm:n=0", "nosuch",
        "sbm:n=4,avg_degree=0.01,features=2,classes=2"]
    devices_bad = ["nosuch", inp["folder"], inp["latin1"], inp["binary"], "../../etc/passwd", ""]
    argv: list[str]

    def opt(flag: str, good: list[str], bad: list[str], present: float = 0.5) -> None:
        if rng.random() < present:
            argv.extend([flag, _pick(rng, good, bad, p)])

    if kind == "estimate":
        argv = ["estimate", "--json"]
        cnn = rng.random() < 0.3
        argv += ["--model", _pick(rng, ["vgg11", "resnet18", "preresnet20"] if cnn else ["gcn", "gat", "gin", "sage"],
                                  ["nosuch", "", "GCN;rm"], p)]
        argv += ["--dataset", _pick(rng, ["mnist", "cifar10", "cifar100"] if cnn else
                                    ["cora", "citeseer", "pubmed", "actor", "ogbn-arxiv", TINY, inp["good"]],
                                    graphs_bad, p)]
        opt("--device", ["h100", "v100", "gcn-accelerator", "hygcn", "jetson-agx-orin"], devices_bad)
        opt("--graph-sparsity", ["0", "0.3", "0.9"], ["1", "-0.1", *BAD_NUMBERS])
        opt("--weight-sparsity", ["0", "0.5", "0.99"], ["1", "-0.1", *BAD_NUMBERS])
        opt("--layers", ["1", "2", "4"], ["17", "1000", *BAD_NUMBERS])  # 1-4: counted ahead (codesign.dispatch.opcount)
        opt("--hidden", ["8", "64", "256"], ["0", "100000", *BAD_NUMBERS])
        opt("--heads", ["1", "8"], ["65", *BAD_NUMBERS])
        opt("--dtype", ["fp32", "fp16", "bf16"], ["fp64", ""])
        opt("--aggregation-order", ["transform-first", "aggregate-first"], ["x"])
        opt("--width", ["0.25", "1"], ["5", *BAD_NUMBERS])
        opt("--batch-size", ["1", "128"], ["100000", *BAD_NUMBERS])
        if "gcn-accelerator" in argv or "hygcn" in argv:
            opt("--hw", ["pes=2048", "pes=1024,buffer_mb=8", "dram_gbs=256"],
                ["pes=64.5", "pes=2048,pes=4096", "pes=nan", "pes=inf", "nosuch=1", "pes", "buffer_mb=-1",
                 "precision_bits=8.5"], present=0.6)
        if not cnn and any(d in argv for d in ("cora", "citeseer", TINY, inp["good"])):
            opt("--node-order", ["natural", "degree", "rcm"], ["x"], present=0.15)
    elif kind == "train-graph":
        argv = ["train", "--json", "--dataset", _pick(rng, [TINY, inp["good"]], graphs_bad, p)]
        opt("--method", ["dense", "geb", "gebt", "sgcn", "random", "ugs"], ["nosuch", ""], present=0.8)
        argv += ["--epochs", _pick(rng, ["1", "2"], ["0", "-1", "nan", "10001", "1.5"], p)]
        opt("--model", ["gcn", "gat", "gin", "sage"], ["nosuch", "vgg11"])
        opt("--graph-sparsity", ["0.2", "0.5"], ["1", "nan", "-0.5"])
        opt("--weight-sparsity", ["0.2", "0.5"], ["1", "nan", "-0.5"])
        opt("--lr", ["0.01", "0.1"], BAD_NUMBERS, present=0.3)
        opt("--graph-lr", ["0.001"], BAD_NUMBERS, present=0.15)
        opt("--admm-rho", ["0.001"], BAD_NUMBERS, present=0.15)
        opt("--eta", ["0.1", "0.5"], BAD_NUMBERS, present=0.15)
        opt("--dropout", ["0", "0.5"], ["1", *BAD_NUMBERS], present=0.2)
        opt("--layers", ["1", "2"], ["0", "17", "1000", "nan"], present=0.3)
        opt("--hidden", ["4", "16"], ["0", "100000", "nan"], present=0.3)
        opt("--heads", ["1", "2"], ["0", "65"], present=0.15)
        opt("--seed", ["0", "7", "2147483647"], ["-1", "99999999999999999999", "1.5", "nan"], present=0.3)
        opt("--eb-warmup", ["0", "1"], ["-1", "nan"], present=0.15)
        opt("--fifo-length", ["1", "3"], ["0", "101"], present=0.15)
        opt("--rounds", ["1", "2"], ["0", "1000"], present=0.1)
        opt("--tie-break", ["min-degree", "random", "index"], ["x"], present=0.1)
        opt("--graph-sharing", ["per-layer", "shared"], ["x"], present=0.1)
        opt("--out", ["out"], [inp["afile"], "/proc/x", inp["folder"] + "/sub"], present=0.3)
        opt("--width", ["0.25"], ["nan"], present=0.05)  # a CNN option: refused for the graph task
        opt("--warmup", ["1"], ["1"], present=0.05)  # the old spelling: refused with the new one
    elif kind == "train-cnn":
        argv = ["train", "--json", "--task", "cnn",
                "--dataset", _pick(rng, ["synthetic-images"], ["nosuch", "cora"], p),
                "--width", _pick(rng, ["0.125"], ["0", "nan", "5", "inf"], p),
                "--train-subset", _pick(rng, ["64"], ["1", "0", "-5", "nan"], p),
                "--epochs", _pick(rng, ["1"], ["0", "nan"], p),
                "--model", _pick(rng, ["vgg11"], ["nosuch", "gcn", "preresnet20"], p)]
        opt("--method", ["dense", "eb", "spline-eb", "spline", "slimming", "random"], ["nosuch"], present=0.8)
        opt("--channel-sparsity", ["0.3", "0.5"], ["1", "nan", "-0.1"])
        opt("--lr", ["0.1"], BAD_NUMBERS, present=0.2)
        opt("--bn-l1", ["0.0001"], ["nan", "-1", "2"], present=0.15)
        opt("--eb-eps", ["0.1"], ["nan", "-1", "0"], present=0.15)
        opt("--spline-threshold", ["0.16"], ["nan", "-1"], present=0.15)
        opt("--batch-size", ["32", "64"], ["0", "nan", "100000"], present=0.3)
        opt("--val-size", ["0.1", "8"], ["nan", "-1", "1000"], present=0.2)
        opt("--probe-grid", ["4"], ["1", "100000"], present=0.2)
        opt("--graph-sparsity", ["0.3"], ["0.3"], present=0.05)
    elif kind == "search":
        argv = ["search", "--json", "--dataset", _pick(rng, [TINY], graphs_bad, p), "--out", "run",
                "--trials", _pick(rng, ["1"], ["0", "-1", "nan", "1e9"], 0.3),
                "--epochs", _pick(rng, ["1"], ["0", "nan"], p)]
        opt("--metric", ["train-flops", "infer-flops", "train-energy"], ["nosuch", "", "train"], present=0.7)
        opt("--budget", ["1 GFLOP", "10J"], ["", "8", "-1J", "nanJ", "infJ", "1 parsec", "0J", "1e400J"], present=0.5)
        opt("--device", ["h100", "gcn-accelerator"], devices_bad, present=0.3)
        opt("--area-budget", ["8mm2"], ["8", "-1mm2", "nanmm2", ""], present=0.15)
        opt("--power-budget", ["7W"], ["7", "-1W", ""], present=0.1)
        opt("--storage", ["journal:///" + "x"], ["sqlite://", "sqlite:///", "sqlite:////nonexistent/x.db", "nope",
                                                 "postgresql://u@127.0.0.1:1/db", "journal:///nonexistent/dir/x.log"],
            present=0.15)
        opt("--study", ["s1"], ["../x", "a/b", "", ".hidden"], present=0.2)
        opt("--space", ["method=dense,random"], ["nosuch=1", "graph_sparsity=2:3", "method=", ";"], present=0.2)
        opt("--n-jobs", ["1"], ["0", "-1", "1000"], present=0.15)
        opt("--trainings-per-config", ["1", "2"], ["0", "101"], present=0.1)
        opt("--seed", ["0"], ["-1", "99999999999999999999"], present=0.1)
        opt("--hardware-space", ["pes=256:8192"], ["pes=1:inf", "pes=nan:2", "x", "pes=5:1"], present=0.1)
        opt("--width", ["0.25"], ["0.25"], present=0.05)  # a CNN option on the graph task
        opt("--repeats", ["2"], ["2"], present=0.05)  # the old spelling
        if "--storage" in argv and argv[argv.index("--storage") + 1].startswith("journal:///x"):
            argv[argv.index("--storage") + 1] = "journal:///@CASE@/run-journal.log"  # the case's own folder
    elif kind == "devices":
        argv = ["devices", "--json"]
    elif kind == "pareto":
        argv = ["pareto", "--json"]
        argv += rng.choice([[inp["folder"]], ["/nonexistent"], [inp["afile"]], ["--study", "x"], [],
                            ["--storage", "sqlite:///new.db"], ["--storage", "sqlite://", "--study", "x"]])
    elif kind == "export":
        argv = ["export", rng.choice([inp["folder"], "/nonexistent", inp["afile"], "."]),
                "--out", rng.choice(["exp", inp["afile"], "."]), "--json"]
    elif kind == "calibrate":  # always one option refused before anything is measured (a sweep takes minutes)
        bad = rng.choice([["--name", "../../x"], ["--name", "a/b"], ["--name", ".."], ["--rounds", "0"],
                          ["--per-round", "nan"], ["--warmup", "-1"], ["--sparsities", "1.5"], ["--models", ""],
                          ["--report", inp["folder"]], ["--output", inp["afile"] + "/x.toml"],
                          ["--device-profile", inp["latin1"]], ["--device-profile", inp["folder"]],
                          ["--holdout-every", "1"], ["--hidden", "nan"], ["--run-on", "tpu"]])
        argv = ["calibrate", "--json", "--report", "rep.json", "--output", "prof", *bad]
    else:  # profile
        argv = ["profile", "--json", "--dataset", _pick(rng, [TINY, inp["good"]], graphs_bad, p), "--out", "prof",
                "--repeats", _pick(rng, ["1"], ["0", "nan", "100000"], p),
                "--warmup", _pick(rng, ["0"], ["-1", "nan"], p)]
        opt("--method", ["dense", "random", "gebt"], ["nosuch"], present=0.5)
        opt("--device-profile", ["cloud-cpu-2core"], devices_bad, present=0.5)
        opt("--layers", ["2"], ["0", "1000"], present=0.2)
        opt("--graph-sparsity", ["0.3"], ["1", "nan"], present=0.2)
        opt("--mode", ["train", "infer"], ["x"], present=0.3)
    return argv


def _tree(*roots: Path) -> list[tuple[str, int]]:
    return sorted((str(p), p.stat().st_size if p.is_file() else -1) for r in roots for p in r.rglob("*"))


def _bad_numbers(obj, path: str = "") -> list[str]:
    """Paths of NaN, infinite or (where not a difference) negative numbers in a JSON result."""
    if isinstance(obj, dict):
        return [b for k, v in obj.items() for b in _bad_numbers(v, f"{path}.{k}")]
    if isinstance(obj, list):
        return [b for i, v in enumerate(obj) for b in _bad_numbers(v, f"{path}[{i}]")]
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        return []
    if not math.isfinite(obj):
        return [f"{path}={obj}"]
    if obj < 0 and not any(w in path.lower() for w in NEGATIVE_OK):
        return [f"{path}={obj}"]
    return []


def _reject_constant(name: str):
    raise ValueError(f"JSON holds {name}")


def test_cli_fuzz(tmp_path, monkeypatch, capsys):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    monkeypatch.setenv("CODESIGN_PROFILE_HOME", str(profiles))
    inp = _inputs(tmp_path / "inputs")
    rng = random.Random(SEED)
    cases = [_case(rng, inp) for _ in range(N_CASES)]
    failures: list[str] = []
    codes = {0: 0, 2: 0}
    took: list[tuple[float, int, list[str]]] = []
    t0 = time.perf_counter()
    for i, argv in enumerate(cases):
        work = tmp_path / f"c{i}"
        work.mkdir()
        monkeypatch.chdir(work)
        argv = [a.replace("@CASE@", str(work)) for a in argv]
        before = _tree(work, tmp_path / "inputs", profiles)
        started = time.perf_counter()
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse refusals exit themselves
            rc = exc.code
        except BaseException:  # noqa: BLE001 - a traceback is the failure this test looks for
            capsys.readouterr()
            failures.append(f"{argv}: traceback {traceback.format_exc(limit=-3)}")
            continue
        out, err = capsys.readouterr()
        took.append((time.perf_counter() - started, rc, argv))
        if rc not in (0, 2):
            failures.append(f"{argv}: exit {rc}: {err.strip()[-300:]}")
            continue
        codes[rc] += 1
        if rc == 2:
            lines = err.strip().splitlines()
            if len(lines) != 1:
                failures.append(f"{argv}: refusal printed {len(lines)} lines: {err.strip()[-400:]}")
            after = _tree(work, tmp_path / "inputs", profiles)
            if after != before:
                failures.append(f"{argv}: refusal created {sorted(set(after) - set(before))[:4]}")
        elif "--json" in argv:
            try:
                result = json.loads(out, parse_constant=_reject_constant)
            except ValueError as exc:
                failures.append(f"{argv}: stdout is not clean JSON ({exc})")
                continue
            bad = _bad_numbers(result)
            if bad:
                failures.append(f"{argv}: result holds {bad[:4]}")
    elapsed = time.perf_counter() - t0
    slowest = sorted(took, key=lambda t: t[0], reverse=True)[:int(os.environ.get("CODESIGN_FUZZ_SLOW", "0"))]
    for seconds, rc, argv in slowest:  # CODESIGN_FUZZ_SLOW=N: the N slowest cases
        print(f"{seconds:6.2f} s exit {rc}: {' '.join(argv)}")
    print(f"fuzz: {len(cases)} cases, {codes[0]} ran, {codes[2]} refused, {len(failures)} failures, {elapsed:.1f} s")
    assert codes[0] >= 50 and codes[2] >= 150  # both kinds well represented
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures[:25])


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q", "-s"])
