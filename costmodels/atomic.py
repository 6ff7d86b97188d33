"""Atomic file writes: the one helper every output goes through.

Rule: the bytes go to a temporary file in the target's own folder (same filesystem), are flushed and
``fsync``-ed, then ``os.replace`` puts the temporary file in place in one step. A full disk, an
exception or a kill part-way leaves the previous file (or none) -- never half of one -- and no
temporary file behind (it is removed on any error; a ``kill -9`` can leave a ``.<name>.tmp-*``
beside the target, never the target itself half-written).

``atomic_path(path)`` is for writers that want a path (``torch.save``, ``DataFrame.to_csv``,
``savefig``): write to the path it yields; it is renamed over ``path`` when the block ends without an
error. ``write_text`` / ``write_bytes`` cover the rest. Plain Python, no torch.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit fsync it and rename it over ``path``."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", suffix=target.suffix, dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(folder)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see the module docstring)."""
    write_bytes(path, text.encode("utf-8"))
