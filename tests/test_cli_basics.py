"""CLI contract: --help without torch, one-line user errors, JSON output of estimate/devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codesign.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = "sbm:n=300,avg_degree=6,features=8,classes=3,seed=1"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codesign", *args], capture_output=True, text=True, timeout=120)


def test_help_does_not_import_torch():
    code = ("import sys; from codesign.cli import build_parser; build_parser().format_help(); "
            "bad = [m for m in ('torch', 'torch_geometric', 'optuna', 'pandas', 'matplotlib') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    assert run_cli("--help").returncode == 0


@pytest.mark.parametrize(
    "args, needles",
    [
        (["estimate", "--model", "gcx", "--dataset", "cora"], ["unknown model 'gcx'", "gcn", "sage", "vgg16"]),
        (["estimate", "--model", "gcn", "--dataset", "corra"], ["unknown graph dataset 'corra'", "citeseer"]),
        (["estimate", "--model", "gcn", "--dataset", "cora", "--device", "h1000"], ["unknown device", "h100"]),
        (["estimate", "--model", "gcn", "--dataset", "cora", "--graph-sparsity", "1.0"], ["--graph-sparsity"]),
        (["estimate", "--model", "gcn", "--dataset", "cora", "--weight-sparsity", "-0.1"], ["--weight-sparsity"]),
        (["estimate", "--model", "vgg16", "--dataset", "cora"], ["unknown image dataset 'cora'", "cifar100"]),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, needles, capsys):
    with pytest.raises(SystemExit) if "sparsity" in " ".join(args) else _nullcontext():
        code = main(args)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_estimate_json_keys_and_paper_number(capsys):
    assert main(["estimate", "--model", "gcn", "--dataset", "cora", "--aggregation-order", "aggregate-first",
                 "--device", "h100", "--device", "jetson-agx-orin", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["device"] for r in rows} == {"h100", "jetson-agx-orin"}
    keys = {"device", "phase", "flops", "macs", "dram_bytes", "memory_bytes", "latency_s", "energy_j"}
    assert all(keys <= set(r) for r in rows)
    infer = next(r for r in rows if r["phase"] == "inference")
    assert abs(infer["macs"] - 77.95e6) / 77.95e6 < 0.01
    # the edge device is slower than the H100 on the same work
    lat = {r["device"]: r["latency_s"] for r in rows if r["phase"] == "inference"}
    assert lat["jetson-agx-orin"] > lat["h100"] > 0


def test_estimate_sparse_ticket_is_cheaper(capsys):
    main(["estimate", "--model", "gcn", "--dataset", "cora", "--device", "gcn-accelerator", "--json"])
    dense = {r["phase"]: r for r in json.loads(capsys.readouterr().out)}
    main(["estimate", "--model", "gcn", "--dataset", "cora", "--graph-sparsity", "0.6", "--weight-sparsity", "0.9",
          "--device", "gcn-accelerator", "--json"])
    sparse = {r["phase"]: r for r in json.loads(capsys.readouterr().out)}
    for phase in ("inference", "train_epoch"):
        assert sparse[phase]["energy_j"] < dense[phase]["energy_j"]
        assert sparse[phase]["flops"] < 0.2 * dense[phase]["flops"]


def test_devices_table_and_json(capsys):
    assert main(["devices", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"h100", "cloud-cpu-2core", "gcn-accelerator"} <= names
    h100 = next(r for r in rows if r["name"] == "h100")
    assert h100["peak_fp32_tflops"] == 67.0 and h100["weight_sparsity"] == "2:4"
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("jetson-agx-orin ") for line in lines)
    # the long descriptions come last and pad nothing: the header is as wide as the numbers
    assert lines[0].rstrip().endswith("device") and len(lines[0]) < 140
    assert next(line for line in lines if line.startswith("a100-80gb ")).endswith("  NVIDIA A100 SXM4 80GB")


def test_the_estimate_table_of_every_device_prints_no_nan(capsys):
    """Area and power exist for template chips only: the other devices' cells say "-", not "nan"."""
    assert main(["estimate", "--model", "gcn", "--dataset", "cora"]) == 0
    out = capsys.readouterr().out
    assert "area_mm2" in out and "gcn-accelerator" in out and "nan" not in out
    h100 = [line for line in out.splitlines() if line.startswith("h100")][0]
    assert h100.split()[-2:] == ["-", "-"]


def _interrupt_result_json(monkeypatch, exc: type[BaseException]) -> None:
    """Make the write of a run's result.json (its last file) raise ``exc`` (a Ctrl-C there)."""
    import costmodels.atomic

    real = costmodels.atomic.write_text

    def write(path, text):
        if Path(path).name == "result.json":
            raise exc
        real(path, text)

    monkeypatch.setattr(costmodels.atomic, "write_text", write)


def test_overwrite_replaces_the_earlier_run_whole_even_when_interrupted(tmp_path, monkeypatch, capsys):
    # --overwrite used to replace ticket.pt / ticket.json / result.json one by one and leave the rest: a Ctrl-C
    # before result.json paired the new ticket with the earlier run's result.json, and another task's model.pt
    # or an export's state_dict.pt stayed beside the new ticket
    run = tmp_path / "run"
    train = ["train", "--dataset", TINY, "--method", "dense", "--epochs", "1", "--out", str(run)]
    assert main(train) == 0
    (run / "model.pt").write_bytes(b"a cnn run's model")
    (run / ".codesign-study").write_text("a search's study\n")  # the folder's claim by a search: cleared too
    (run / "state_dict.pt").write_bytes(b"an export's weights")
    _interrupt_result_json(monkeypatch, KeyboardInterrupt)
    assert main([*train, "--seed", "1", "--overwrite"]) == 130
    left = sorted(p.name for p in run.iterdir())
    assert left == ["ticket.json", "ticket.pt"]  # the new ticket, no result: never the earlier run's result.json
    assert json.loads((run / "ticket.json").read_text())["seed"] == 1
    monkeypatch.undo()
    capsys.readouterr()
    assert main([*train, "--seed", "2", "--overwrite", "--json"]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["result.json", "ticket.json", "ticket.pt"]
    assert json.loads((run / "result.json").read_text())["seed"] == json.loads(capsys.readouterr().out)["seed"] == 2


def test_train_refuses_a_folder_a_search_has_claimed(tmp_path, capsys):
    # a folder holding only a search's claim (.codesign-study: the search started, no trial written yet) was
    # taken by train without --overwrite
    run = tmp_path / "run"
    run.mkdir()
    (run / ".codesign-study").write_text("gcn-cora-8J\n")
    rc = main(["train", "--dataset", TINY, "--method", "dense", "--epochs", "1", "--out", str(run)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "already holds .codesign-study" in err and "--overwrite" in err
    assert [p.name for p in run.iterdir()] == [".codesign-study"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals (POSIX)")
def test_sigterm_while_saving_leaves_no_temporary_file_and_no_stale_result(tmp_path):
    # SIGTERM used to kill `train --out` at once: the .result.json.tmp-* being written stayed in the folder
    run = tmp_path / "run"
    train = ["train", "--dataset", TINY, "--method", "dense", "--epochs", "1", "--out", str(run)]
    assert main(train) == 0
    code = textwrap.dedent(f"""
        import os, signal, sys, time
        import costmodels.atomic as atomic
        from codesign.cli import main
        real = os.replace

        class Os:  # the rename of result.json's temporary file: SIGTERM arrives just before it
            def __getattr__(self, name):
                return getattr(os, name)

            def replace(self, src, dst):
                if str(dst).endswith("result.json"):
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(30)
                return real(src, dst)

        atomic.os = Os()
        sys.exit(main({[*train, "--seed", "1", "--overwrite"]!r}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert sorted(p.name for p in run.iterdir()) == ["ticket.json", "ticket.pt"]
    assert json.loads((run / "ticket.json").read_text())["seed"] == 1
