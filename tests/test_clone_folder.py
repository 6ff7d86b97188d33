"""Run from the folder that holds a clone named ``codesign`` (the README's example as a user runs it):
that folder's ``codesign/`` is found first, as a namespace package with no ``__init__``. A run must
not depend on the package's own module attributes there (it did: ``codesign.__version__``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_from_the_folder_holding_a_clone_named_codesign(tmp_path):
    (tmp_path / "codesign").mkdir()  # what `git clone .../codesign` leaves beside the user's script
    code = ("import json\n"
            "from codesign.graphs.pipeline import GraphTrainConfig, train\n"
            "r = train(GraphTrainConfig(dataset='sbm:n=200,avg_degree=4,features=8,classes=2', method='dense',"
            " epochs=2, out='run'), progress=False)\n"
            "print(r['test_accuracy'])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    accuracy = float(out.stdout.strip().splitlines()[-1])
    assert json.loads((tmp_path / "run" / "result.json").read_text())["test_accuracy"] == accuracy
    saved = json.loads((tmp_path / "run" / "ticket.json").read_text())["versions"]  # the ticket's provenance
    assert saved["codesign"] not in ("", "absent") and saved["torch"]
