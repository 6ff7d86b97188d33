"""One profile resolution, never a silent substitute: the resolver's kind and file, the user profile
dir, distinct labels in `estimate`, the profile named by `search`, and calibration refusing a profile
of another device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_search_cli import fake_training  # noqa: F401 - fixture

from codesign.cli import main
from costmodels.errors import ProfileError
from costmodels.profiles import (
    check_calibration_target,
    list_profiles,
    load_profile,
    resolve_profile,
    shipped_profile_dir,
    user_profile_dir,
)

SHIPPED_CAL = shipped_profile_dir() / "calibrated" / "cloud-cpu-2core.toml"


@pytest.fixture
def profile_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CODESIGN_PROFILE_HOME", str(tmp_path))
    return tmp_path


def _write_calibrated(home: Path, name: str, display: str) -> Path:
    text = (shipped_profile_dir() / f"{name}.toml").read_text()
    text = text.replace('display_name = "', f'display_name = "{display} ', 1)
    path = home / "calibrated" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + '\n[calibration]\nmachine = "test"\nmape_after = 0.1\n')
    return path


def test_the_suite_never_uses_the_real_user_dir():
    assert str(user_profile_dir()) == os.environ["CODESIGN_PROFILE_HOME"]
    assert user_profile_dir() != Path.home() / ".local" / "share" / "codesign" / "profiles"


def test_resolver_reports_kind_and_file_and_never_substitutes(profile_home):
    r = resolve_profile("h100")
    assert (r.name, r.kind, Path(r.path)) == ("h100", "datasheet", shipped_profile_dir() / "h100.toml")
    cal = resolve_profile("calibrated/cloud-cpu-2core")
    assert (cal.kind, Path(cal.path)) == ("calibrated", SHIPPED_CAL)
    user = _write_calibrated(profile_home, "h100", "USER")
    assert "calibrated/h100" in list_profiles()
    assert resolve_profile("h100").kind == "datasheet"  # the datasheet name stays the datasheet
    r = resolve_profile("calibrated/h100")
    assert (r.kind, Path(r.path), r.profile.display_name[:4]) == ("calibrated", user, "USER")
    assert r.describe() == f"calibrated/h100 (calibrated profile, {user})"
    assert r.to_dict() == {"name": "calibrated/h100", "kind": "calibrated", "path": str(user)}
    by_path = resolve_profile(str(user))
    assert (by_path.kind, by_path.path) == ("calibrated", str(user))


def test_user_dir_comes_first_for_calibrated_profiles(profile_home):
    user = _write_calibrated(profile_home, "cloud-cpu-2core", "USER")
    r = resolve_profile("calibrated/cloud-cpu-2core")
    assert Path(r.path) == user and load_profile("calibrated/cloud-cpu-2core").display_name.startswith("USER")
    (profile_home / "h100.toml").write_text("not toml [")  # the user dir holds no datasheets: ignored
    assert resolve_profile("h100").kind == "datasheet"


def test_estimate_labels_datasheet_and_calibrated_rows_apart(capsys):
    assert main(["estimate", "--model", "gcn", "--dataset", "cora", "--device", "cloud-cpu-2core",
                 "--device", "calibrated/cloud-cpu-2core", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    labels = {(r["device"], r["profile_kind"], Path(r["profile_file"])) for r in rows}
    assert labels == {("cloud-cpu-2core", "datasheet", shipped_profile_dir() / "cloud-cpu-2core.toml"),
                      ("calibrated/cloud-cpu-2core", "calibrated", SHIPPED_CAL)}
    lat = {r["device"]: r["latency_s"] for r in rows if r["phase"] == "train_epoch"}
    assert lat["cloud-cpu-2core"] != lat["calibrated/cloud-cpu-2core"]  # two profiles, two answers
    assert main(["estimate", "--model", "gcn", "--dataset", "cora", "--device", "cloud-cpu-2core",
                 "--device", "calibrated/cloud-cpu-2core"]) == 0
    text = capsys.readouterr().out
    assert f"calibrated/cloud-cpu-2core (calibrated profile, {SHIPPED_CAL})" in text
    assert f"cloud-cpu-2core (datasheet profile, {shipped_profile_dir() / 'cloud-cpu-2core.toml'})" in text


def test_search_summary_names_the_profile_used(tmp_path, fake_training, capsys, profile_home):  # noqa: F811
    user = _write_calibrated(profile_home, "h100", "USER")
    for device, kind, file in [("h100", "datasheet", "profiles/h100.toml"),
                               ("calibrated/h100", "calibrated", str(user))]:
        out = tmp_path / kind
        assert main(["search", "--device", device, "--trials", "2", "--out", str(out), "--space", "method=gebt",
                     "--epochs", "2", "--threads", "1"]) == 0
        text = capsys.readouterr().out
        summary = json.loads((out / "summary.json").read_text())
        assert summary["device"] == device and summary["context"]["profile_kind"] == kind
        assert summary["context"]["profile_file"] == file
        assert f"{kind} profile {device}" in summary["cost_source"]
        assert f"profile: {device} ({kind}, {file})" in text
        assert summary["thread_policy"]["threads"] == 1
        import pandas as pd

        assert set(pd.read_csv(out / "trials.csv")["torch_threads"]) == {1}
        assert main(["pareto", str(out), "--out", str(tmp_path / f"pareto-{kind}")]) == 0  # pareto says it too
        assert f"profile: {device} ({kind}, {file})" in capsys.readouterr().out
    assert fake_training[0][0] == "h100" and fake_training[-1][0] == "calibrated/h100"


def test_calibration_fits_a_profile_only_to_the_device_it_measured():
    h100 = load_profile("h100")
    with pytest.raises(ProfileError, match=r"--device-profile h100 is a gpu profile .* measures cpu 'AMD EPYC'"):
        check_calibration_target(h100, "cpu", "AMD EPYC")
    with pytest.raises(ProfileError, match=r"this GPU is 'NVIDIA A100-SXM4-80GB' \(profile a100-80gb\)"):
        check_calibration_target(h100, "cuda", "NVIDIA A100-SXM4-80GB")  # matched by its NVML name
    with pytest.raises(ProfileError, match="cloud-cpu-2core is a cpu profile"):
        check_calibration_target(load_profile("cloud-cpu-2core"), "cuda", "NVIDIA H100")
    with pytest.raises(ProfileError, match="gcn-accelerator is a accelerator profile"):
        check_calibration_target(load_profile("gcn-accelerator"), "cpu", "AMD EPYC")
    check_calibration_target(load_profile("cloud-cpu-2core"), "cpu", "AMD EPYC")  # the right pairs pass
    check_calibration_target(h100, "cuda", "NVIDIA H100 80GB HBM3")
    check_calibration_target(h100, "cuda", "NVIDIA H100 80GB HBM3", matches="calibrated/h100")


def test_calibrate_h100_on_a_cpu_exits_2_with_one_line_and_writes_nothing(tmp_path):
    env = {**os.environ, "CODESIGN_PROFILE_HOME": str(tmp_path / "profiles")}
    proc = subprocess.run([sys.executable, "-m", "codesign", "calibrate", "--device-profile", "h100", "--models", "gcn",
                           "--datasets", "cora", "--threads", "1", "--report", str(tmp_path / "r.json")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "h100" in lines[0]
    assert "--run-on cuda" in lines[0] and "--device-profile auto" in lines[0]
    assert not (tmp_path / "profiles").exists() and not (tmp_path / "r.json").exists()


def test_a_gpu_profile_is_matched_to_its_gpu_by_what_it_names_not_its_file_name():
    """The shipped measured H200 profile (name h200-2026-12-04) is this H200's own, and was refused on an H200
    because its name is not ``h200``; an H100 profile on a GPU no pattern knows was accepted."""
    measured = load_profile("measured/h200-2026-12-04")
    check_calibration_target(measured, "cuda", "NVIDIA H200", action="profile")
    check_calibration_target(measured, "cuda", "NVIDIA H200")
    with pytest.raises(ProfileError, match=r"this GPU is 'NVIDIA H100 80GB HBM3' \(profile h100\)"):
        check_calibration_target(measured, "cuda", "NVIDIA H100 80GB HBM3", action="profile")
    with pytest.raises(ProfileError, match=r"this GPU is 'NVIDIA L40S' \(profile none\).*pass a profile of this GPU"):
        check_calibration_target(load_profile("h100"), "cuda", "NVIDIA L40S", action="profile")
    check_calibration_target(load_profile("gtx-1080-ti"), "cuda", "NVIDIA GeForce GTX 1080 Ti")  # no pattern: its own
    with pytest.raises(ProfileError, match=r"\(profile h100\)"):
        check_calibration_target(load_profile("gtx-1080-ti"), "cuda", "NVIDIA H100 80GB HBM3")
