"""The loaders' one way to the network, and file digests (graph and image datasets share them)."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path


def fetch(url: str, dest: Path, timeout_s: float = 60.0) -> None:
    """Download ``url`` to ``dest``. ``CODESIGN_OFFLINE=1`` forbids it (the test suite sets it:
    tests never touch the network); failures are ``OSError`` (``URLError`` included)."""
    if os.environ.get("CODESIGN_OFFLINE") == "1":
        raise urllib.error.URLError("downloads are disabled (CODESIGN_OFFLINE=1)")
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks (``sha256`` for graphs, ``md5`` for CIFAR)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
