"""Large CPU tensors (``codesign.runtime.memory``): on transparent huge pages (the CLI asks torch's
allocator for them unless the user chose), reused once freed during a training run (glibc's mmap
threshold, unless the user set glibc's malloc), and results say what the run had."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from codesign.runtime import memory
from codesign.runtime.memory import VARIABLE, huge_pages_in_words, kernel_thp_mode, prepare_huge_pages

GLIBC = platform.libc_ver()[0] == "glibc"


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
    result = json.loads(capsys.readouterr().out)
    assert VARIABLE in result["huge_pages"]
    if GLIBC:
        assert result["freed_memory"].startswith(f"reused below {memory.REUSE_BELOW >> 20} MiB")


@pytest.mark.parametrize("env", [{"MALLOC_MMAP_THRESHOLD_": "1048576"}, {"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"}])
def test_the_users_glibc_setting_is_kept(monkeypatch, env):
    monkeypatch.setattr(memory, "_reuse", None)
    called = []
    monkeypatch.setattr(memory, "glibc", lambda: called.append(1))
    assert memory.reuse_freed_blocks(env) == "glibc's, as the user set it (MALLOC_* or GLIBC_TUNABLES)"
    assert called == []  # glibc was not touched
    assert memory.reuse_freed_blocks({}) == memory.freed_memory_in_words()  # once per process


def _faults_of_repeated_steps(reuse: bool) -> list[int]:
    """Minor page faults of each of eight repeated steps that allocate and free 40 MB tensors (four per step),
    after three warm-up steps (the heap reaches its steady layout), in a fresh process on 4 kB pages (huge
    pages off, so every page not reused costs a fault): 4 x 10240 per step when every block is mapped afresh."""
    probe = textwrap.dedent(f"""
        import resource, torch
        from codesign.runtime import memory
        if {reuse}:
            memory.reuse_freed_blocks()
        x = torch.ones(10 * 2**20)
        def step():
            ((x * 2 + 1).relu() * x).sum()
        for _ in range(3):
            step()
        per_step = []
        for _ in range(8):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            step()
            per_step.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        print(*per_step)
        """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env[VARIABLE] = "0"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    return [int(n) for n in out.stdout.splitlines()[-1].split()]


def test_freed_large_tensors_are_reused_not_mapped_again():
    """The reason for the setting: without it glibc maps every block this size afresh, every step (40,960
    faults per step here); with it the freed blocks are reused, and a step takes no fresh pages at all.
    The bound is on the quietest step, not the sum: a kernel that reclaims idle pages (this VM runs DAMON
    pageout) can take back a kept block between steps, and one CI run saw 6 blocks mapped again over 5 steps."""
    if not GLIBC:
        pytest.skip("glibc's malloc only")
    fresh, reused = _faults_of_repeated_steps(False), _faults_of_repeated_steps(True)
    assert min(fresh) >= 3 * 10000, fresh
    assert min(reused) < 2000, reused  # not one 40 MB block (10,240 pages) mapped afresh


def test_a_run_hands_back_its_heap_only_when_much_of_it_is_free(monkeypatch):
    """``release_free_memory(above=...)`` trims only a heap with more than ``above`` bytes free (a Cora-sized
    run keeps its few freed blocks for the next trial); with no bound it always trims."""
    import types

    trims: list[int] = []

    def fake_libc(free: int) -> types.SimpleNamespace:
        def mallinfo2():  # what glibc's mallinfo2 returns, as far as the rule reads it
            return types.SimpleNamespace(fordblks=free)
        return types.SimpleNamespace(mallinfo2=mallinfo2, malloc_trim=lambda pad: trims.append(pad))

    for free, above, trimmed in ((100 << 20, memory.RELEASE_ABOVE, False), (900 << 20, memory.RELEASE_ABOVE, True),
                                 (100 << 20, 0, True)):
        trims.clear()
        monkeypatch.setattr(memory, "glibc", lambda free=free: fake_libc(free))
        memory.release_free_memory(above=above)
        assert trims == ([0] if trimmed else [])
