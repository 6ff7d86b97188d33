"""Skip markers for tests that need the real datasets (present in ../shared/data or $CODESIGN_DATA)."""

from __future__ import annotations

import pytest

from codesign.runtime.data_root import resolve_data_root


def planetoid_present(name: str = "Cora") -> bool:
    return (resolve_data_root() / "Planetoid" / name / "raw" / f"ind.{name.lower()}.x").is_file()


def actor_present() -> bool:
    return (resolve_data_root() / "Actor" / "raw" / "out1_graph_edges.txt").is_file()


requires_cora = pytest.mark.skipif(
    not planetoid_present("Cora"), reason="Cora raw files not found: set CODESIGN_DATA to the shared data folder"
)
