"""Large CPU tensors on transparent huge pages (``codesign.runtime.memory``): the CLI asks torch's
allocator for them unless the user chose, and results say what the run had."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from codesign.runtime.memory import VARIABLE, huge_pages_in_words, kernel_thp_mode, prepare_huge_pages


def test_set_when_unset_and_the_users_choice_kept():
    env: dict[str, str] = {}
    prepare_huge_pages(env)
    assert env[VARIABLE] == "1"
    assert "set by codesign" in huge_pages_in_words(env, mode="madvise")
    users = {VARIABLE: "0"}
    prepare_huge_pages(users)
    assert users == {VARIABLE: "0"}
    assert huge_pages_in_words(users, mode="madvise") == f"off ({VARIABLE}=0, the user's)"


def test_words_follow_the_kernel_mode(tmp_path):
    env = {VARIABLE: "1"}
    assert huge_pages_in_words(env, mode="never").startswith("ignored by the kernel")
    assert huge_pages_in_words(env, mode="madvise").startswith("on for tensors of 2 MB or more")
    sysfs = tmp_path / "enabled"
    sysfs.write_text("always [madvise] never\n")
    assert kernel_thp_mode(sysfs) == "madvise"
    assert kernel_thp_mode(tmp_path / "missing") is None


def test_torch_backs_large_tensors_with_huge_pages_once_set():
    """What the variable does inside torch (c10 ``alloc_cpu``: ``madvise(MADV_HUGEPAGE)`` on blocks of 2 MB
    or more): a 64 MB tensor is backed by huge pages (``AnonHugePages``), where the kernel allows them."""
    if kernel_thp_mode() not in ("always", "madvise"):
        pytest.skip(f"kernel THP mode {kernel_thp_mode()}: no huge pages to get")
    probe = ("from codesign.runtime.memory import prepare_huge_pages; prepare_huge_pages(); import torch; "
             "x = torch.ones(16 * 2**20); "
             "print([int(l.split()[1]) for l in open('/proc/self/smaps_rollup') if l.startswith('AnonHuge')][0])")
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert int(out.stdout) >= 2048  # kB: at least one 2 MB page (64 MB asked; the kernel may fall short)


def test_train_records_huge_pages(capsys):
    from codesign.cli import main

    assert main(["train", "--dataset", "sbm:n=200,avg_degree=4,features=8,classes=2", "--method", "dense",
                 "--epochs", "2", "--json"]) == 0
    words = json.loads(capsys.readouterr().out)["huge_pages"]
    assert VARIABLE in words
