"""Large CPU tensors on transparent huge pages, set once for the process before torch allocates.

:func:`prepare_huge_pages` puts ``THP_MEM_ALLOC_ENABLE=1`` into the environment unless the user set it
(the CLI calls it first thing, with the OpenMP wait policy; child processes such as search workers
inherit it). PyTorch's CPU allocator (c10 ``alloc_cpu``, since torch 2.2) then advises the kernel to
back every allocation of 2 MB or more with huge pages (``madvise(MADV_HUGEPAGE)``; the block's start is
not moved: checked here, torch 2.13), as NumPy does by default for arrays of 4 MB or more. A fresh 64 MB
tensor then costs as few as 32 page faults instead of 16384: at 10^6 nodes every epoch allocates dozens
of ``[N, 16]`` activations (64 MB) and ``[E]`` edge vectors (40 MB) that glibc maps fresh and unmaps when freed.
Measured here (2-core AMD EPYC, one thread, three interleaved pairs, ``benchmarks/gebt_scaling.py``'s
10^6-node run): search epoch 7.0-8.9 s -> 6.5-6.6 s, process 44-51 s -> 40-42 s, peak RSS 2450-2683 MiB
-> 2269-2270 MiB. Memory is unmapped when freed, as before (glibc's ``M_MMAP_MAX=0``, which keeps freed
memory instead, was faster still but raised the peak RSS by 500-900 MiB). Where the kernel's THP mode is
``never`` the advice is ignored and nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

VARIABLE = "THP_MEM_ALLOC_ENABLE"
_MARK = "CODESIGN_SET_THP_MEM_ALLOC_ENABLE"  # tells children the setting came from us, not the user
_KERNEL_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def prepare_huge_pages(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` unless the user chose (before torch's first CPU allocation)."""
    env = os.environ if environ is None else environ
    if VARIABLE not in env:
        env[VARIABLE] = "1"
        env[_MARK] = "1"


def kernel_thp_mode(path: Path = _KERNEL_MODE) -> str | None:
    """The kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``); None where unknown."""
    try:
        text = path.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def huge_pages_in_words(environ: MutableMapping[str, str] | None = None, mode: str | None = None) -> str:
    """What this process runs with, as results record it (``huge_pages``)."""
    env = os.environ if environ is None else environ
    value = env.get(VARIABLE)
    who = "set by codesign" if env.get(_MARK) == "1" else "the user's"
    if value is None:
        return "off (THP_MEM_ALLOC_ENABLE unset)"
    mode = kernel_thp_mode() if mode is None else mode
    if value.strip() in ("", "0"):
        return f"off ({VARIABLE}={value}, {who})"
    kernel = f"kernel THP mode {mode}" if mode else "kernel THP mode unknown"
    effect = "ignored by the kernel" if mode == "never" else "on for tensors of 2 MB or more"
    return f"{effect} ({VARIABLE}={value}, {who}; {kernel})"
