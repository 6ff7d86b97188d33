"""Where datasets are read from and where processed files are written.

Data root (read, may be read-only): ``--data-root`` if given, else ``$CODESIGN_DATA``, else the
project's sibling ``../shared/data`` when it exists, else ``~/.cache/codesign/data`` (where loaders
download to when online). Cache (written): ``$CODESIGN_CACHE`` or ``~/.cache/codesign``.
"""

from __future__ import annotations

import os
from pathlib import Path

TRUST_ENV = "CODESIGN_TRUST_PICKLE"  # "1": loaders may unpickle a user's graph file (``--trust-pickle``)
_REPO = Path(__file__).resolve().parents[2]


def resolve_data_root(arg: str | os.PathLike[str] | None = None) -> Path:
    """The folder datasets are read from (see the module docstring for the order); a given root that is a
    file is refused (one line). A root that does not exist is not created: a loader that finds no files
    there downloads into ``cache_dir() / "data"`` (which is the last fallback root itself)."""
    text, source = (str(arg), "--data-root") if arg else (os.environ.get("CODESIGN_DATA", ""), "CODESIGN_DATA")
    if text:
        root = Path(text).expanduser()
        if root.exists() and not root.is_dir():
            from costmodels.errors import CodesignError

            raise CodesignError(f"{source} {text!r} is a file; give the folder that holds the datasets "
                                "(e.g. the one with Cora/ or MNIST/ in it)")
        return root
    shared = _REPO.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return cache_dir() / "data"


def cache_dir(create: bool = True) -> Path:
    """A writable folder for processed files (created on first use; ``create=False``: only its path)."""
    env = os.environ.get("CODESIGN_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "codesign"
    if not create:
        if path.exists() and not path.is_dir():
            from costmodels.errors import CodesignError

            raise CodesignError(f"CODESIGN_CACHE {str(path)!r} is a file; point CODESIGN_CACHE at a folder")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from costmodels.errors import CodesignError

        where = "CODESIGN_CACHE" if env else "the cache folder"
        raise CodesignError(f"{where} {str(path)!r} cannot be a folder here ({exc.strerror or exc}); point "
                            "CODESIGN_CACHE at a writable folder") from None
    if not os.access(path, os.W_OK | os.X_OK):
        from costmodels.errors import CodesignError

        raise CodesignError(f"cache folder {str(path)!r} is not writable; point CODESIGN_CACHE at a writable folder")
    return path
