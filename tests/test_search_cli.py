"""`codesign search` (with a fake evaluator in place of training) and `codesign pareto` on stored studies."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
from test_search_study import SPACE, fake_evaluator

from codesign.cli import main
from codesign.pipelines.graph_search import GraphEvaluator, graph_space
from search import SearchConfig, parse_budget, parse_metric, run_search
from search.storage import embedded_url, open_storage


@pytest.fixture
def fake_training(monkeypatch):
    """Replace training + pricing by the fake evaluator (the graph pipeline is tested elsewhere)."""
    calls = []

    def call(self, params, seed):
        calls.append((self.device, self.epochs, params["method"]))
        return fake_evaluator(params, seed)

    monkeypatch.setattr(GraphEvaluator, "__call__", call)
    return calls


def test_search_cli_runs_resumes_and_writes_the_run_folder(tmp_path, fake_training, capsys):
    out = tmp_path / "run"
    # the budget is above the cost model's predicted range, so screening (real) leaves the fake trainings to run
    args = ["search", "--budget", "30000 mJ", "--metric", "train-energy", "--device", "h100", "--trials", "5",
            "--out", str(out), "--space", "method=gebt,random", "--epochs", "3", "--confirm-seeds", "0"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "best feasible: trial #" in text and "Pareto front" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trials"] == 5 and summary["metric"] == "train-energy" and summary["device"] == "h100"
    assert summary["budget"]["value"] == pytest.approx(30.0) and summary["best"]["cost"] <= 30.0
    assert "estimated" in summary["cost_source"]
    assert {c[2] for c in fake_training} <= {"gebt", "random"} and fake_training[0][:2] == ("h100", 3)
    assert main([*args[:7], "--trials", "8", *args[9:]]) == 0  # rerun tops up
    study = optuna.load_study(study_name=summary["study"], storage=open_storage(embedded_url(out)))
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 8 == len(fake_training)
    trials = pd.read_csv(out / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 8  # screened (PRUNED) rows are recorded beside them
    assert trials.loc[trials["state"] == "PRUNED", "val_accuracy"].isna().all()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--budget", "2 parsecs"], "unknown unit 'parsecs'"),
        (["--budget", "2J", "--metric", "infer-latency"], "measures energy"),
        (["--metric", "train-power"], "unknown metric 'train-power'"),
        (["--device", "tpu-v9"], "unknown device 'tpu-v9'"),
        (["--space", "method=gebt,magic"], "allowed values are gebt"),
        (["--space", "train_epochs=20:40:7"],  # named as written (it said train_epochs='40:7'), with the fix
         "--space train_epochs='20:40:7': '40:7' is not a number; give a value or LOW:HIGH, e.g. train_epochs=20:200"),
        (["--storage", "postgresql+psycopg2://u:pw@127.0.0.1:1/db"],  # unreachable, or no driver installed
         "--storage postgresql+psycopg2://u:***@127.0.0.1:1/db"),
        (["--storage", "postgres://u:pw@127.0.0.1/db"], "write postgresql://"),  # before any driver is asked
        (["--storage", "postgresql+psycopg2://u@127.0.0.1:pgport/db"], "the port after the host is not a number"),
        (["--storage", "postgresql+psycopg2://u@127.0.0.1:99999/db"], "port 99999 is out of range"),
        (["--measured"], "--measured: train-energy is not measured on this machine"),
    ],
)
def test_search_cli_bad_input_is_one_line(args, needle, tmp_path, capsys, fake_training):
    assert main(["search", "--out", str(tmp_path / "r"), "--trials", "1", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and err.startswith("codesign: error:")
    assert fake_training == []


def _stored(tmp_path, name, device, scale=1.0):
    metric = parse_metric("train-energy")
    run = tmp_path / name
    run.mkdir()
    cfg = SearchConfig(name, embedded_url(run), 6, metric, parse_budget("1.4 J", metric),
                       context={"device": device})
    run_search(cfg, SPACE, lambda p, s: fake_evaluator(p, s))
    return run


def test_pareto_redraws_one_stored_study(tmp_path, capsys):
    run = _stored(tmp_path, "one", "h100")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "study.db"}
    assert main(["pareto", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_trials"] == 6 and summary["study"] == "one"
    redrawn = tmp_path / "one-pareto"  # a sibling folder: the search's own files are never rewritten
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "study.db"} == before
    assert (redrawn / "pareto.png").stat().st_size > 1000
    front = pd.read_csv(redrawn / "pareto.csv")
    assert list(front["number"]) == [p["number"] for p in summary["pareto"]]
    assert main(["pareto", "--storage", embedded_url(run), "--study", "one", "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["pareto"] == summary["pareto"]


def test_pareto_puts_several_studies_on_one_plot(tmp_path, capsys):
    a, b = _stored(tmp_path, "a", "h100"), _stored(tmp_path, "b", "jetson-agx-orin")
    out = tmp_path / "both"
    assert main(["pareto", str(a), str(b), "--out", str(out)]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert sorted(trials["study"].unique()) == ["a", "b"] and len(trials) == 12
    summ = json.loads((out / "summary.json").read_text())
    assert [s["device"] for s in summ["studies"]] == ["h100", "jetson-agx-orin"]
    assert (out / "pareto.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args, needle",
    [
        (["/nonexistent/run"], "is not a folder"),
        (["--study", "x"], "--study needs --storage"),
        ([], "give RUN_DIR folders"),
    ],
)
def test_pareto_bad_input(args, needle, capsys):
    assert main(["pareto", *args]) == 2
    assert needle in capsys.readouterr().err


def test_pareto_unknown_study_lists_stored_ones(tmp_path, capsys):
    run = _stored(tmp_path, "one", "h100")
    assert main(["pareto", "--storage", embedded_url(run), "--study", "two"]) == 2
    assert "stored studies: one" in capsys.readouterr().err


def test_pareto_study_with_run_folders_picks_that_study(tmp_path, capsys):
    """--study beside RUN_DIR folders was ignored (the folder's own study was drawn, whatever was asked)."""
    run = _stored(tmp_path, "one", "h100")
    assert main(["pareto", str(run), "--study", "two"]) == 2
    assert "'two' is not in the storage; stored studies: one" in capsys.readouterr().err
    assert main(["pareto", str(run), "--study", "one", "--json", "--out", str(tmp_path / "o")]) == 0
    assert json.loads(capsys.readouterr().out)["study"] == "one"
    assert main(["pareto", str(run), "--study", "one", "--study", "two"]) == 2
    assert "give one name" in capsys.readouterr().err


def test_default_graph_space_gates_parameters():
    space = graph_space()
    assert space.names == ["method", "graph_sparsity", "weight_sparsity", "threshold", "train_epochs"]
    assert space.get("method").choices == ("gebt", "geb", "sgcn", "random", "ugs", "dense")
    sgcn = space.narrow("method=sgcn").suggest(optuna.create_study().ask())  # SGCN: a graph sparsity, no detector
    assert 0 <= sgcn["graph_sparsity"] <= 0.9 and sgcn["weight_sparsity"] == 0.0 and sgcn["threshold"] is None
    narrowed = space.narrow("method=gebt; graph_sparsity=0.3; threshold=0.1:0.2")
    assert narrowed.get("graph_sparsity").fixed and narrowed.get("method").choices == ("gebt",)
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    params = narrowed.suggest(trial)
    assert params["graph_sparsity"] == 0.3 and 0.1 <= params["threshold"] <= 0.2
    dense = space.narrow("method=dense").suggest(optuna.create_study().ask())
    assert {k: v for k, v in dense.items() if k != "train_epochs"} == {
        "method": "dense", "graph_sparsity": 0.0, "weight_sparsity": 0.0, "threshold": None}
    assert 20 <= dense["train_epochs"] <= 200 and dense["train_epochs"] % 10 == 0


# --- bad input: one line, exit 2, nothing created or overwritten ---------------------------------------------

def _bad(capsys, args):
    try:
        rc = main(["search", "--trials", "1", *args])
    except SystemExit as exc:  # numbers are checked by argparse (codesign.cli.common.BOUNDS)
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(("codesign: error:", "codesign search: error:")) and "\n" not in err
    return err


def test_search_out_must_be_a_writable_folder(tmp_path, capsys, fake_training):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    err = _bad(capsys, ["--out", str(afile)])
    assert "is a file, not a folder" in err and afile.read_text() == "keep me"
    err = _bad(capsys, ["--out", str(afile / "sub")])
    assert "is a file" in err
    err = _bad(capsys, ["--out", "/proc/sys/codesign-out"])  # read-only even for root
    assert "not writable" in err and not (tmp_path / "r").exists()
    assert fake_training == []


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--trials", "0"], "--trials 0: out of range, must be in [1, 100000]"),
        (["--model", "gcnn"], "unknown model 'gcnn'"),
        (["--dataset", "coraa"], "unknown dataset 'coraa'"),
        (["--trainings-per-config", "0"], "--trainings-per-config 0"),
    ],
)
def test_search_rejects_before_creating_anything(tmp_path, capsys, fake_training, args, needle):
    out = tmp_path / "r"
    err = _bad(capsys, ["--out", str(out), *args])
    assert needle in err and not out.exists() and fake_training == []


def test_missing_postgres_driver_names_the_extra(monkeypatch):
    import search.storage as storage
    from costmodels.errors import CodesignError

    def missing(url, kwargs):
        raise ModuleNotFoundError("No module named 'psycopg2'", name="psycopg2")

    monkeypatch.setattr(storage, "_rdb", missing)
    with pytest.raises(CodesignError, match=r"pip install 'codesign\[postgres\]'"):
        storage.open_storage("postgresql+psycopg2://u@127.0.0.1:1/db")


def test_pareto_never_writes_into_another_runs_folder(tmp_path, capsys, monkeypatch):
    other = _stored(tmp_path, "other", "h100")
    assert main(["pareto", str(other), "--out", str(other)]) == 2  # a RUN_DIR is never rewritten
    assert "never rewrites a search's own files" in capsys.readouterr().err
    assert main(["pareto", str(other)]) == 0  # into other-pareto; copied back as if the search had written them
    for p in (tmp_path / "other-pareto").iterdir():
        (other / p.name).write_bytes(p.read_bytes())
    before = (other / "trials.csv").read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["pareto", "--storage", embedded_url(other)]) == 0  # default: runs/pareto, not OTHER
    assert (tmp_path / "runs" / "pareto" / "trials.csv").is_file()
    assert (other / "trials.csv").read_bytes() == before
    mine = _stored(tmp_path, "mine", "h100")
    capsys.readouterr()
    assert main(["pareto", str(mine), "--out", str(other)]) == 2  # OTHER holds another run's outputs
    assert "holds the outputs of other" in capsys.readouterr().err
    assert (other / "trials.csv").read_bytes() == before
    afile = tmp_path / "f"
    afile.write_text("x")
    assert main(["pareto", str(mine), "--out", str(afile)]) == 2 and afile.read_text() == "x"


# --- plots: empty, one method, two runs of the same study name ----------------------------------------------

def _same_name_run(tmp_path, folder, n, space=SPACE):
    metric = parse_metric("train-energy")
    run = tmp_path / folder
    run.mkdir()
    cfg = SearchConfig("same", embedded_url(run), n, metric, parse_budget("1.4 J", metric), context={"device": "h100"})
    study = run_search(cfg, space, fake_evaluator)
    from search.outputs import write_outputs

    write_outputs(study, run)
    return run


def test_pareto_two_runs_of_one_study_name_are_told_apart(tmp_path, capsys):
    a, b = _same_name_run(tmp_path, "first", 5), _same_name_run(tmp_path, "second", 4)
    out = tmp_path / "both"
    assert main(["pareto", str(a), str(b), "--out", str(out)]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials.columns[:2]) == ["run", "study"] and sorted(trials["run"].unique()) == ["first", "second"]
    assert set(trials["study"]) == {"same"}
    summ = json.loads((out / "summary.json").read_text())
    assert [s["run"] for s in summ["studies"]] == ["first", "second"]
    assert (out / "pareto.png").stat().st_size > 1000
    assert main(["pareto", str(a), str(b), "--out", str(out)]) == 0  # redrawing the same runs is allowed


def test_plots_of_an_empty_and_a_one_method_study(tmp_path):
    from search.export import summary, trials_frame
    from search.plots import plot_studies
    from search.study import open_study

    metric = parse_metric("train-energy")
    cfg = SearchConfig("empty", embedded_url(tmp_path), 3, metric, parse_budget("1.4 J", metric))
    empty = open_study(cfg, SPACE)
    df = trials_frame(empty)
    plot_studies([("empty", df, summary(empty, df))], tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 1000 and summary(empty, df)["answer"].startswith("No trained")
    one = _same_name_run(tmp_path, "one", 4, space=SPACE.narrow("method=random"))
    assert (one / "pareto.png").stat().st_size > 1000
    assert set(pd.read_csv(one / "trials.csv")["param.method"]) == {"random"}


def test_a_budget_far_beyond_every_trial_is_a_note_not_the_axis(tmp_path, monkeypatch):
    """1 kJ for trials of a few joules drew every point against the y axis; the axis now spans the trials
    and a note names the budget and how far off it is (pareto.png and cost_split.png alike)."""
    import matplotlib.pyplot as plt

    from search.export import summary, trials_frame
    from search.plots import FAR_BUDGET, _scale, plot_studies

    metric = parse_metric("train-energy")
    cfg = SearchConfig("far", embedded_url(tmp_path), 4, metric, parse_budget("1 kJ", metric))
    study = run_search(cfg, SPACE, fake_evaluator)
    df = trials_frame(study)
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    plot_studies([("far", df, summary(study, df))], tmp_path / "far.png")
    (ax,) = [a for a in figures[-1].axes if a.get_lines() or a.collections]
    dearest = float(df["cost"].max())
    assert dearest * FAR_BUDGET < 1000.0  # the case this is about
    scale, prefix = _scale(dearest)  # the axis' unit: the trials', not the budget's
    assert f"[{prefix}J]" in ax.get_xlabel()
    assert ax.get_xlim()[1] * scale < 2 * dearest  # the trials fill the axis
    notes = [t.get_text() for t in ax.texts if "x the dearest trial" in t.get_text()]
    assert notes and notes[0].startswith(("budget 1 kJ", "budget 1kJ"))
    assert not [h for h in ax.get_legend_handles_labels()[1] if h.startswith("budget")]
