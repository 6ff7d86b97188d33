"""The library versions a result records (graph tickets and CNN runs alike)."""

from __future__ import annotations

import platform


def versions() -> dict[str, str]:
    """codesign, torch, torch_geometric and Python versions. codesign and PyG come from the installed
    metadata (importing PyG costs seconds; and ``import codesign`` run from the folder that holds a clone
    named ``codesign`` finds that folder, a namespace package without ``__version__``)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    return {"codesign": installed("codesign"), "torch": str(torch.__version__),
            "torch_geometric": installed("torch_geometric"), "python": platform.python_version()}
