"""Issue 21: nothing executed from a data file, nothing half-written, nothing clobbered, workers die
with their parent, Ctrl-C leaves a resumable study, bad graphs and data files are one-line refusals."""

from __future__ import annotations

import errno
import gzip
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from codesign.cli import main
from costmodels.atomic import atomic_path, write_text
from costmodels.errors import CodesignError

REPO = Path(__file__).resolve().parents[1]
TINY = "sbm:n=300,avg_degree=6,features=8,classes=3,seed=1"


def _run(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse-level refusals
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err.strip()


def _graph(n: int = 40) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    src = torch.arange(n - 1)
    return {"x": torch.randn(n, 4, generator=g), "y": torch.arange(n) % 2,
            "edge_index": torch.stack([src, src + 1])}


class Payload:
    """A pickle whose loading creates a file: the attack a data file must never get to run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# --- 1. security --------------------------------------------------------------------------------------------

def test_crafted_pickle_never_runs_its_payload(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({**_graph(), "x": Payload(marker)}, evil)
    for argv in (["estimate", "--model", "gcn", "--dataset", f"file:{evil}", "--device", "h100"],
                 ["train", "--dataset", f"file:{evil}", "--epochs", "1"]):
        rc, _, err = _run(argv, capsys)
        assert rc == 2 and len(err.splitlines()) == 1
        assert "loading it would run code from the file" in err and "--trust-pickle" in err
        assert not marker.exists()


def test_pickled_data_needs_trust_pickle_and_plain_dicts_load(tmp_path, capsys):
    Data = pytest.importorskip("torch_geometric.data").Data
    pickled, plain = tmp_path / "g.pt", tmp_path / "plain.pt"
    torch.save(Data(**_graph()), pickled)
    torch.save(_graph(), plain)
    base = ["estimate", "--model", "gcn", "--device", "h100", "--json"]
    rc, _, err = _run([*base, "--dataset", f"file:{pickled}"], capsys)
    assert rc == 2 and "torch_geometric.data.data.Data" in err
    rc, out, _ = _run([*base, "--dataset", f"file:{pickled}", "--trust-pickle"], capsys)
    assert rc == 0 and json.loads(out)[0]["flops"] > 0
    assert "CODESIGN_TRUST_PICKLE" not in os.environ  # the flag lasts one command
    rc, out, _ = _run([*base, "--dataset", f"file:{plain}"], capsys)
    assert rc == 0 and json.loads(out)[0]["flops"] > 0


@pytest.mark.parametrize("argv", [
    ["calibrate", "--name", "../../x"], ["calibrate", "--name", "a/b"], ["calibrate", "--name", ".."],
    ["search", "--study", "../escape", "--trials", "1"], ["search", "--study", "a/b", "--trials", "1"],
])
def test_names_that_become_paths_are_validated(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, _, err = _run(argv, capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and "no '/' or '..'" in err
    assert list(tmp_path.iterdir()) == []


# --- 2. atomic writes, no clobbering -----------------------------------------------------------------------

def _full_disk_after(limit: int):
    """A write() that stores ``limit`` bytes, then fails as a full disk does."""
    real = os.write

    def write(fd, data):
        nonlocal limit
        if limit <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real(fd, bytes(data[:limit]))
        limit -= n
        return n

    return write


def test_atomic_write_under_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old contents\n")
    monkeypatch.setattr(os, "write", _full_disk_after(5))

    class Raw:  # unbuffered file object whose writes go through os.write
        def __init__(self, path):
            self.fd = os.open(path, os.O_WRONLY | os.O_TRUNC)

        def write(self, b):
            return os.write(self.fd, b)

        def close(self):
            os.close(self.fd)

    with pytest.raises(OSError) as err, atomic_path(target) as tmp:
        fh = Raw(tmp)
        try:
            fh.write(b"new contents that do not fit\n")
            fh.write(b"more")
        finally:
            fh.close()
    assert err.value.errno == errno.ENOSPC
    assert target.read_text() == "old contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]  # no temp file left


def test_ticket_and_export_survive_a_full_disk(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", TINY, "--method", "random", "--graph-sparsity", "0.3",
                 "--weight-sparsity", "0.3", "--epochs", "2", "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    real_save = torch.save

    def save_half(obj, f, *a, **k):  # writes some bytes, then the disk is full
        Path(f).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save_half)
    from codesign.graphs.ticket import load_ticket, save_ticket

    ticket = load_ticket(run)
    with pytest.raises(CodesignError, match="cannot write the ticket .*previous files, if any, are unchanged"):
        save_ticket(run, ticket)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    capsys.readouterr()
    rc, _, err = _run(["export", str(run), "--out", str(tmp_path / "pyg")], capsys)
    assert rc == 2 and "cannot write the export" in err and len(err.splitlines()) == 1
    assert not [p for p in (tmp_path / "pyg").iterdir() if p.suffix == ".pt"]  # none, never half of one
    monkeypatch.setattr(torch, "save", real_save)


def test_refuses_to_clobber_another_runs_results(tmp_path, capsys):
    run = tmp_path / "run"
    train = ["train", "--dataset", TINY, "--method", "dense", "--epochs", "1", "--out", str(run)]
    assert main(train) == 0
    ticket = (run / "ticket.pt").read_bytes()
    capsys.readouterr()
    rc, _, err = _run(train, capsys)  # a second train over the ticket
    assert rc == 2 and "already holds ticket.pt" in err and "--overwrite" in err
    assert (run / "ticket.pt").read_bytes() == ticket
    rc, _, err = _run(["export", str(run), "--out", str(run)], capsys)  # export into the run folder
    assert rc == 2 and "holds ticket.pt" in err and json.loads((run / "ticket.json").read_text()).get("format") is None
    assert main(["export", str(run), "--out", str(tmp_path / "pyg")]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "pyg"), "--json"]) == 0  # the same run again: allowed
    exported = json.loads(capsys.readouterr().out)  # --json: the export's ticket.json and its folder, nothing else
    assert exported["folder"] == str(tmp_path / "pyg") and exported["source_run"] == str(run.resolve())
    assert exported == {"folder": str(tmp_path / "pyg"), **json.loads((tmp_path / "pyg" / "ticket.json").read_text())}
    assert main([*train, "--overwrite"]) == 0


def test_search_folder_belongs_to_one_study(tmp_path):
    from codesign.cli.run_folder import CLAIM, claim_run_folder
    from codesign.cli.search import _canonical_budget

    out = tmp_path / "r"
    claim_run_folder(out, "gcn-cora-8J", overwrite=False)
    assert (out / CLAIM).read_text().strip() == "gcn-cora-8J"
    claim_run_folder(out, "gcn-cora-8J", overwrite=False)  # the same study again (a resume, a second worker)
    with pytest.raises(CodesignError, match="holds the results of 'gcn-cora-8J', not of study 'gcn-cora-2J'"):
        claim_run_folder(out, "gcn-cora-2J", overwrite=False)
    claim_run_folder(out, "gcn-cora-2J", overwrite=True)
    assert (out / CLAIM).read_text().strip() == "gcn-cora-2J"
    assert _canonical_budget("8 J") == _canonical_budget("8J") == _canonical_budget("8000mJ") == "8J"


def test_stored_budget_is_compared_by_value():
    from search.study import _same

    stored = {"value": 8.0, "unit": "J", "metric": "train-energy", "text": "8 J"}
    assert _same("budget", stored, {**stored, "value": 8.0 * (1 + 1e-12), "text": "8000mJ"})
    assert not _same("budget", stored, {**stored, "value": 2.0, "text": "2J"})


# --- 3. workers die with their parent; Ctrl-C ----------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not yet reaped) is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL of a parent process group (Linux)")
def test_workers_die_with_their_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, sys, time
        from search.study import die_with_parent

        def worker(ready):
            die_with_parent()
            ready.release()
            time.sleep(60)

        if __name__ == "__main__":
            ctx = multiprocessing.get_context("spawn")
            ready = ctx.Semaphore(0)
            procs = [ctx.Process(target=worker, args=(ready,), daemon=True) for _ in range(2)]
            for p in procs:
                p.start()
            for p in procs:  # every worker has reached die_with_parent, however slow the machine
                ready.acquire()
            print(" ".join(str(p.pid) for p in procs), flush=True)
            time.sleep(60)
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    pids = [int(p) for p in parent.stdout.readline().split()]
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups (Linux)")
def test_ctrl_c_with_two_workers_is_one_line_and_the_study_resumes(tmp_path):
    import optuna

    out = tmp_path / "run"
    # train_epochs as before --epochs capped them (20-200): 3-epoch trials end so fast that Ctrl-C often lands
    # between a worker's ask and its tag, a RUNNING trial recovery leaves for GRACE_S (a known window)
    cmd = [sys.executable, "-m", "codesign", "search", "--dataset", TINY, "--epochs", "3", "--trials", "200",
           "--n-jobs", "2", "--threads", "1", "--study", "s", "--out", str(out), "--metric", "train-flops",
           "--space", "train_epochs=20:200"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # its own group (Ctrl-C reaches all of it), with Ctrl-C's default action as in a terminal's foreground job:
    # a runner that started the tests as a background job (`cmd &` in a script) ignores SIGINT, the child would
    # inherit that, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    storage = f"sqlite:///{out / 'study.db'}"
    deadline, done = time.time() + 120, 0
    while time.time() < deadline and done < 1 and proc.poll() is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="s", storage=storage)
            done = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
        except Exception:  # not created yet
            continue
    assert done >= 1, "no trial finished in time"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # stopping hung: say where, and leave no process behind
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"the search did not stop within 60 s of Ctrl-C; its stderr:\n{err[-3000:]}")
    lines = [ln for ln in err.splitlines() if not ln.startswith("[search]")]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("codesign: interrupted; rerun the same command to resume"), err
    assert "trials.csv" in lines[0]
    assert (out / "trials.csv").is_file() and len((out / "trials.csv").read_text().splitlines()) >= 2
    # resumable: the stopped workers' trials are INTERRUPTED and queued again (not left RUNNING: "worker died")
    trials = optuna.load_study(study_name="s", storage=storage).get_trials(deepcopy=False)
    stopped = [t.number for t in trials if t.state.name == "FAIL" and t.user_attrs.get("interrupted")]
    queued = sorted(t.user_attrs.get("retry_of") for t in trials if t.state.name == "WAITING")
    assert stopped and queued == sorted(stopped) and not [t for t in trials if t.state.name == "RUNNING"]


# --- 4. graphs and data files --------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "needle"), [
    ({"x": torch.tensor([[float("nan"), 1.0]] * 40)}, "x has 40 NaN or infinite value(s)"),
    ({"x": torch.tensor([[float("inf"), 1.0]] * 40)}, "x has 40 NaN or infinite value(s)"),
    ({"x": torch.zeros(0, 4), "y": torch.zeros(0, dtype=torch.long),
      "edge_index": torch.zeros(2, 0, dtype=torch.long)}, "x has 0 node(s)"),
    ({"x": torch.zeros(1, 4), "y": torch.zeros(1, dtype=torch.long),
      "edge_index": torch.zeros(2, 0, dtype=torch.long)}, "x has 1 node(s)"),
    ({"edge_index": torch.zeros(2, 0, dtype=torch.long)}, "edge_index has no edge between two different nodes"),
    ({"edge_index": torch.tensor([[0, 1], [0, 1]])}, "2 self-loop(s) only"),
    ({"train_mask": torch.ones(40, dtype=torch.bool), "val_mask": torch.ones(40, dtype=torch.bool),
      "test_mask": torch.ones(40, dtype=torch.bool)}, "train_mask and val_mask share 40 node(s)"),
])
def test_bad_graph_files_are_refused(tmp_path, capsys, change, needle):
    path = tmp_path / "g.pt"
    torch.save({**_graph(), **change}, path)
    before = sorted(tmp_path.rglob("*"))
    rc, _, err = _run(["train", "--dataset", f"file:{path}", "--epochs", "1", "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_too_few_nodes_for_the_default_split(tmp_path, capsys):
    path = tmp_path / "g.pt"
    torch.save(_graph(4), path)
    rc, _, err = _run(["train", "--dataset", f"file:{path}", "--epochs", "1"], capsys)
    assert rc == 2 and "too few for the default split" in err


def _planetoid(root: Path, test_index: list[int]) -> None:
    from collections import defaultdict

    raw = root / "Planetoid" / "PubMed" / "raw"
    raw.mkdir(parents=True)
    feats = np.random.default_rng(0).random((12, 5)).astype(np.float32)
    labels = np.eye(3, dtype=np.int64)[[0, 1, 2] * 4]
    objs = {"x": feats[:3], "y": labels[:3], "allx": feats[:8], "ally": labels[:8], "tx": feats[8:],
            "ty": labels[8:], "graph": defaultdict(list, {i: [i + 1] for i in range(11)})}
    for key, obj in objs.items():
        (raw / f"ind.pubmed.{key}").write_bytes(pickle.dumps(obj, protocol=2))
    (raw / "ind.pubmed.test.index").write_text("\n".join(map(str, test_index)) + "\n")


@pytest.mark.parametrize(("test_index", "needle"), [
    ([8, 9, 10, -1], "has indices -1..10"), ([8, 9, 10, 99], "has indices 8..99"),
    ([8, 9, 10, 10], "(or repeats)"), ([8, 9, 10], "lists 3 nodes but tx has 4 rows"),
])
def test_planetoid_index_out_of_range(tmp_path, test_index, needle):
    from codesign.graphs.data import load_dataset

    _planetoid(tmp_path, test_index)
    with pytest.raises(CodesignError, match="ind.pubmed.test.index") as err:
        load_dataset("pubmed", tmp_path)
    assert needle in str(err.value)


def _idx(root: Path, labels: np.ndarray, n_images: int) -> None:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)

    def write(path, arr, magic):
        header = bytes([0, 0, 8, magic]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + arr.tobytes())

    imgs = np.zeros((n_images, 28, 28), np.uint8)
    for split in ("train", "t10k"):
        write(raw / f"{split}-images-idx3-ubyte.gz", imgs, 3)
        write(raw / f"{split}-labels-idx1-ubyte.gz", labels.astype(np.uint8), 1)


@pytest.mark.parametrize(("labels", "n_images", "needle"), [
    (np.array([1, 2, 12]), 3, "has label 12; labels must be 0..9"),
    (np.array([1, 2]), 3, "holds [3, 28, 28] images but"),
])
def test_idx_label_files_out_of_range(tmp_path, labels, n_images, needle):
    from codesign.cnn.data import load_dataset

    _idx(tmp_path, labels, n_images)
    with pytest.raises(CodesignError) as err:
        load_dataset("fashion-mnist", tmp_path)
    assert needle in str(err.value)


def test_planetoid_good_files_still_load(tmp_path):
    from codesign.graphs.data import load_dataset

    _planetoid(tmp_path, [8, 9, 10, 11])
    data = load_dataset("pubmed", tmp_path)
    assert data.num_nodes == 12 and int(data.test_mask.sum()) == 4


def test_write_text_replaces_whole_files(tmp_path):
    target = tmp_path / "a.json"
    write_text(target, "one\n")
    write_text(target, "two\n")
    assert target.read_text() == "two\n" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_planetoid_pickles_cannot_run_code(tmp_path):
    from codesign.graphs.data import load_dataset

    _planetoid(tmp_path, [8, 9, 10, 11])
    marker = tmp_path / "pwned"
    (tmp_path / "Planetoid" / "PubMed" / "raw" / "ind.pubmed.graph").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CodesignError, match="ind.pubmed.graph is truncated or corrupt"):
        load_dataset("pubmed", tmp_path)
    assert not marker.exists()


def test_debug_still_exits_2_and_help_shows_every_default(capsys):
    assert main(["--debug", "estimate", "--model", "nosuch", "--dataset", "cora"]) == 2
    err = capsys.readouterr().err
    assert err.rstrip().splitlines()[-1].startswith("codesign: error: unknown model") and "Traceback" in err
    import argparse

    from codesign.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.option_strings[0]}" for name, sub in subs.choices.items() for a in sub._actions
               if a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
               and "default" not in (a.help or "").lower()]
    assert missing == []


def test_export_of_a_search_folder_names_the_run_dir(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trials.csv").write_text("number\n")
    rc, _, err = _run(["export", str(tmp_path / "run"), "--out", str(tmp_path / "pyg")], capsys)
    assert rc == 2 and err.startswith("codesign: error: RUN_DIR") and "--ticket" not in err
    assert not (tmp_path / "pyg").exists()


def test_bad_profiles_are_refused_and_devices_skips_them(tmp_path, monkeypatch, capsys):
    home = tmp_path / "profiles"
    (home / "calibrated").mkdir(parents=True)
    (home / "calibrated" / "latin1.toml").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    (home / "calibrated" / "folder.toml").mkdir()
    monkeypatch.setenv("CODESIGN_PROFILE_HOME", str(home))
    rc, out, err = _run(["devices", "--json"], capsys)
    assert rc == 0 and "h100" in {r["name"] for r in json.loads(out)}
    assert err.splitlines() == [ln for ln in err.splitlines() if ln.startswith("codesign: warning: skipped profile")]
    assert len(err.splitlines()) == 1 and "not UTF-8" in err
    rc, _, err = _run(["estimate", "--model", "gcn", "--dataset", "cora", "--device", str(home / "calibrated")],
                      capsys)
    assert rc == 2 and "is a folder, not a profile file" in err
    text = (REPO / "profiles" / "h100.toml").read_text()
    import re

    denormal = tmp_path / "denormal.toml"
    denormal.write_text(re.sub(r"(?m)^dram_bandwidth_gbs\s*=.*$", "dram_bandwidth_gbs = 1e-310", text))
    rc, _, err = _run(["estimate", "--model", "gcn", "--dataset", "cora", "--device", str(denormal)], capsys)
    assert rc == 2 and "dram_bandwidth_gbs = 1e-310 must be >= 1e-06" in err


def test_train_help_shows_the_real_default_of_an_option_its_config_decides():
    """An option left out takes the run config's default (GraphTrainConfig, CNNTrainConfig: one place per
    default); its --help must say that value, not "none" (it said "none" for --model, --width, --detector,
    --bn-l1, --probe-grid, --epochs)."""
    import argparse
    import dataclasses

    from codesign.cli import build_parser
    from codesign.cnn.pipeline import PAPER_EPOCHS as CNN_EPOCHS
    from codesign.cnn.pipeline import CNNTrainConfig
    from codesign.graphs.config import PAPER_EPOCHS, GraphTrainConfig

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = subs.choices["train"]
    graph = {f.name: f.default for f in dataclasses.fields(GraphTrainConfig)} | {"epochs": PAPER_EPOCHS}
    cnn = {f.name: f.default for f in dataclasses.fields(CNNTrainConfig)} | {"epochs": CNN_EPOCHS}
    owned = {task: {dest for _, dest in options} for task, options in train.get_default("task_options").items()}
    wrong = []
    for a in train._actions:
        if not a.option_strings or a.default is not None:
            continue
        tasks = [t for t in ("graph", "cnn") if a.dest in owned[t]] or ["graph", "cnn"]  # neither: both read it
        for config in ({"graph": graph, "cnn": cnn}[t] for t in tasks):
            value = config.get(a.dest, dataclasses.MISSING)
            if value in (None, dataclasses.MISSING) or isinstance(value, bool):
                continue
            help_text = a.help or ""
            numbers = [float(x) for x in re.findall(r"\d+(?:\.\d*)?(?:e-?\d+)?", help_text)]
            said = (value in numbers) if isinstance(value, (int, float)) else any(
                form in help_text for form in (f"default: {value}", f"default {value}", f"{value} for --task",
                                               f"{value} (default"))
            if not said:
                wrong.append(f"{a.option_strings[0]}: {value!r} not in {help_text!r}")
    assert wrong == []
    profile = subs.choices["profile"]
    shown = {a.option_strings[0]: a.help for a in profile._actions if a.option_strings}
    assert "(default: per-layer)" in shown["--graph-sharing"] and "(default: reuse)" in shown["--allocator"]
    calibrate = {a.option_strings[0]: a.help for a in subs.choices["calibrate"]._actions if a.option_strings}
    assert "(default: reuse)" in calibrate["--allocator"]
