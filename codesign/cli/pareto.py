"""`codesign pareto` (not yet implemented: see the tracker)."""

from __future__ import annotations

import argparse

from costmodels.errors import CodesignError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="(not yet implemented)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise CodesignError("codesign pareto is not implemented yet")
