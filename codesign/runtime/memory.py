"""Large CPU tensors: on transparent huge pages, and reused once freed.

Huge pages (set once for the process before torch allocates).

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

Reuse (:func:`reuse_freed_blocks`, called by the training loops from the end of the process's first
epoch on; :func:`release_free_memory` when a run's epochs end, if more than :data:`RELEASE_ABOVE` is
free). Even on huge pages every fresh mapping is zeroed by the kernel on first touch: at 10^6 nodes an
epoch mapped ~4 GB of new tensors that way (~50,000 page faults). glibc's mmap threshold raised to
:data:`REUSE_BELOW` serves blocks under it from the heap, and its trim threshold raised to
:data:`KEEP_TOP` keeps the heap's free top for the next blocks (torch's 64-byte-aligned requests often
do not fit a freed block in the middle of the heap exactly), so an epoch reuses what the previous one
freed. Why after the first epoch: that epoch builds the run's long-lived state (CSR plans, optimiser
state); built inside the heap among the epoch's transient tensors it pinned holes that the heap then
grew around. Measured here (2-core AMD EPYC, one thread, the 10^6-node run of
``benchmarks/gebt_scaling.py``, 3 epochs per phase):

* set after the set-up: search epoch 4.28-4.42 s -> 3.63-3.98 s (three interleaved pairs), but peak RSS
  2121-2152 MiB -> 2419-2763 MiB over 14 runs (trim threshold default, 256 MiB or unlimited); set from
  process start: ~3100 MiB;
* set after the first epoch (kept): epochs 2 and 3 3.95-4.20 s and 3.63-3.86 s (the second still maps
  the heap's pages once), peak RSS 2267-2318 MiB.

A user's own glibc malloc setting (``MALLOC_MMAP_*``/``MALLOC_TRIM_*`` variables, or those tunables in
``GLIBC_TUNABLES``) is left alone.
"""

from __future__ import annotations

import functools
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

VARIABLE = "THP_MEM_ALLOC_ENABLE"
_MARK = "CODESIGN_SET_THP_MEM_ALLOC_ENABLE"  # tells children the setting came from us, not the user
_KERNEL_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def prepare_huge_pages(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` unless the user chose (before torch's first CPU allocation)."""
    env = os.environ if environ is None else environ
    if VARIABLE not in env:
        env[VARIABLE] = "1"
        env[_MARK] = "1"


REUSE_BELOW = 64 << 20  # bytes: glibc's mmap threshold during training (its default ceiling is 32 MiB)
RELEASE_ABOVE = 256 << 20  # bytes: a run hands its heap back only when more than this is free (train_record)
KEEP_TOP = 2**31 - 1  # bytes: the heap's free top is trimmed only above this (all of it: release_free_memory)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters (malloc.h)
_USER_MALLOC = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
_reuse: str | None = None  # what reuse_freed_blocks did in this process (None: not called yet)


def reuse_freed_blocks(environ: MutableMapping[str, str] | None = None) -> str:
    """From now on serve blocks under :data:`REUSE_BELOW` from glibc's heap and keep its free top
    (``mallopt(M_MMAP_THRESHOLD)``, ``mallopt(M_TRIM_THRESHOLD)``), so freed tensors are reused instead of
    mapped again until :func:`release_free_memory`; set once per process. Returns what it did, in words
    (what results record as ``freed_memory``)."""
    global _reuse
    if _reuse is not None:
        return _reuse
    env = os.environ if environ is None else environ
    tunables = env.get("GLIBC_TUNABLES", "")
    if any(k in env for k in _USER_MALLOC) or any(t in tunables for t in ("mmap_threshold", "mmap_max", "trim_")):
        _reuse = "glibc's, as the user set it (MALLOC_* or GLIBC_TUNABLES)"
        return _reuse
    try:
        libc = glibc()
        done = bool(libc.mallopt(M_MMAP_THRESHOLD, REUSE_BELOW)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_TOP))
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own allocator's behaviour
        done = False
    _reuse = (f"reused below {REUSE_BELOW >> 20} MiB (glibc mmap and trim thresholds, from the second epoch on)" if done
              else "the C library's default (no glibc mallopt)")
    return _reuse


def release_free_memory(above: int = 0) -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere) when the heap holds
    more than ``above`` bytes free (``mallinfo2().fordblks``; always where that is not known)."""
    try:
        libc = glibc()
        if above > 0 and _heap_free_bytes(libc) <= above:
            return
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


@functools.cache
def glibc() -> Any:
    """The C library, for ``mallopt`` / ``malloc_trim`` / ``mallinfo2`` (``OSError`` where it cannot be
    loaded; a missing function raises ``AttributeError`` when used: not glibc). Looked up once per process
    (``find_library`` runs ``ldconfig -p``; every trial of a search calls this)."""
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _heap_free_bytes(libc: Any) -> int:
    """Free bytes in glibc's heap (``mallinfo2().fordblks``, glibc >= 2.33); a huge number where unknown."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                         "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        libc.mallinfo2.restype = MallInfo2
        return int(libc.mallinfo2().fordblks)
    except AttributeError:
        return 2**62


def freed_memory_in_words() -> str:
    """What this process does with freed large blocks, as results record it (``freed_memory``)."""
    return _reuse or "the C library's default (no training run in this process set it)"


def allocator_record() -> dict[str, str]:
    """What a run's result records of how this process allocated: ``huge_pages`` and ``freed_memory``."""
    return {"huge_pages": huge_pages_in_words(), "freed_memory": freed_memory_in_words()}


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
