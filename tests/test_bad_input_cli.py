"""Bad input found by a sweep of every command (session 13): each is refused with one line on stderr, exit
status 2, and nothing created or changed; and no run's results are replaced without ``--overwrite``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from codesign.cli import main
from tests.test_bad_input import assert_refused

TINY = "sbm:n=300,avg_degree=6,features=8,classes=3,seed=1"
SEARCH = ["search", "--model", "gcn", "--dataset", TINY, "--budget", "1J", "--trials", "1", "--epochs", "2"]
READ_ONLY = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")


def _not_a_journal(t: Path) -> list[str]:
    (t / "notes.txt").write_text("my own notes\n")
    return [*SEARCH, "--storage", f"journal:///{t / 'notes.txt'}", "--out", str(t / "o")]


def _export_folder(t: Path) -> list[str]:
    (t / "pyg").mkdir()
    for name in ("ticket.json", "state_dict.pt", "edge_index.pt"):
        (t / "pyg" / name).write_text("{}")
    return ["train", "--dataset", TINY, "--epochs", "1", "--out", str(t / "pyg")]


def _earlier_profile(t: Path) -> list[str]:
    (t / "prof").mkdir()
    (t / "prof" / "profile.json").write_text("{}")
    return ["profile", "--dataset", TINY, "--repeats", "1", "--warmup", "0", "--out", str(t / "prof")]


def _file_as_root(t: Path) -> list[str]:
    (t / "root.txt").write_text("")
    return ["train", "--dataset", "cora", "--epochs", "1", "--data-root", str(t / "root.txt")]


def _text_as_graph(t: Path) -> list[str]:
    (t / "g.pt").write_text("garbage\n")
    return ["train", "--dataset", f"file:{t / 'g.pt'}", "--epochs", "1"]


CASES = {
    "threads-huge": (lambda t: ["train", "--dataset", TINY, "--threads", "100000"], "from 1 to 1024"),
    "search-out-proc": (lambda t: [*SEARCH, "--out", "/proc/x"], "is not writable"),
    "profile-out-proc": (lambda t: ["profile", "--dataset", TINY, "--out", "/proc/x"], "is not writable"),
    "profile-out-empty": (lambda t: ["profile", "--dataset", TINY, "--out", ""], "--out is empty"),
    "search-out-empty": (lambda t: [*SEARCH, "--out", ""], "--out is empty"),
    "pareto-out-empty": (lambda t: ["pareto", str(t), "--out", ""], "--out is empty"),
    "hardware-space-word": (lambda t: [*SEARCH, "--device", "gcn-accelerator", "--hardware-space", "pes=abc",
                                       "--out", str(t / "o")], "pes='abc' is not a number"),
    "storage-not-a-url": (lambda t: [*SEARCH, "--storage", "notaurl", "--out", str(t / "runs" / "o")],
                          "is not a URL"),
    "storage-not-a-journal": (_not_a_journal, "is not an Optuna journal"),
    "train-into-an-export": (_export_folder, "ticket.json, state_dict.pt, edge_index.pt"),
    "profile-over-an-earlier-one": (_earlier_profile, "holds an earlier run's results"),
    "val-size-fraction-above-one": (lambda t: ["train", "--task", "cnn", "--dataset", "synthetic-images",
                                               "--epochs", "1", "--val-size", "1.5"], "give a fraction below 1"),
    "profile-sparsity-not-applicable": (lambda t: ["profile", "--dataset", TINY, "--method", "dense",
                                                   "--graph-sparsity", "0.5"], "does not apply to --method dense"),
    "data-root-is-a-file": (_file_as_root, "is a file; give the folder that holds the datasets"),
    "estimate-data-root-missing": (lambda t: ["estimate", "--model", "gcn", "--dataset", "cora", "--data-root",
                                              str(t / "missing")], "is not a folder"),
    "graph-file-not-torch": (_text_as_graph, "it is not a torch.save file"),
    "budget-overflow-example": (lambda t: [*SEARCH[:5], "--budget", "1e999J"], "e.g. '2 J'"),
    "area-budget-negative": (lambda t: [*SEARCH, "--device", "gcn-accelerator", "--area-budget=-1mm2"],
                             "a positive area"),
    # an empty --model / --method trained the default (gcn, gebt) instead of being refused
    # an empty --data-root read as left out ($CODESIGN_DATA, else ../shared/data) and the run went on
    "train-data-root-empty": (lambda t: ["train", "--dataset", TINY, "--epochs", "1", "--data-root", "",
                                         "--out", str(t / "o")], "--data-root is empty"),
    "estimate-data-root-empty": (lambda t: ["estimate", "--model", "gcn", "--dataset", "cora", "--data-root", ""],
                                 "--data-root is empty"),
    "train-model-empty": (lambda t: ["train", "--dataset", TINY, "--epochs", "1", "--model", "",
                                     "--out", str(t / "o")], "unknown model ''"),
    "train-method-empty": (lambda t: ["train", "--dataset", TINY, "--epochs", "1", "--method", "",
                                      "--out", str(t / "o")], "unknown method ''"),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_one_line_and_nothing_created_or_changed(case, tmp_path, monkeypatch, capsys):
    if "proc" in case and not Path("/proc/self").is_dir():
        pytest.skip("needs /proc (Linux)")
    build, needle = CASES[case]
    argv = build(tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path)
    assert_refused(argv, needle, capsys)
    assert _snapshot(tmp_path) == before


def test_method_is_matched_in_any_case_when_checking_its_options(tmp_path, capsys):
    # `--method UGS --rounds 2` was refused with "--rounds 2 does not apply to --method UGS (only ugs)"
    assert main(["train", "--dataset", TINY, "--method", "UGS", "--rounds", "1", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert_refused(["train", "--dataset", TINY, "--method", "GEBT", "--rounds", "1", "--epochs", "1"],
                   "--rounds 1 does not apply to --method gebt (only ugs)", capsys)


def test_no_command_says_so_on_stderr(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("codesign: error: give a command")


def test_profile_without_out_never_replaces_an_earlier_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["profile", "--dataset", TINY, "--repeats", "1", "--warmup", "0", "--device-profile", "cloud-cpu-2core"]
    assert main(argv) == 0 and main(argv) == 0
    out = capsys.readouterr().out
    assert "wrote runs/profile/profile.json" in out and "wrote runs/profile-2/profile.json" in out


@READ_ONLY
def test_pareto_writes_nothing_into_the_run_it_reads(tmp_path, monkeypatch, capsys):
    """A refused pareto (its --out is the run folder, or a file) leaves the run's study.db byte for byte as it was:
    the storage is opened read-only, after the output folder is checked; a missing journal is not created."""
    monkeypatch.chdir(tmp_path)
    assert main([*SEARCH, "--confirm-seeds", "0", "--out", "run"]) == 0
    db = tmp_path / "run" / "study.db"
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    (tmp_path / "afile").write_text("")
    for out in ("run", "afile"):
        assert main(["pareto", "run", "--out", out]) == 2
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert main(["pareto", "run", "--out", "drawn"]) == 0  # read-only still draws
    assert (tmp_path / "drawn" / "pareto.png").is_file()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert main(["pareto", "--storage", f"journal:///{tmp_path / 'missing.log'}", "--study", "x"]) == 2
    assert not (tmp_path / "missing.log").exists()
    capsys.readouterr()


def test_calibrate_keeps_the_commas_of_a_synthetic_graph_spec():
    from codesign.cli.calibrate import _datasets, _list

    given = _list("cora,sbm:n=300,avg_degree=6,features=8,classes=3,citeseer", "datasets")
    assert _datasets(given) == ["cora", "sbm:n=300,avg_degree=6,features=8,classes=3", "citeseer"]

