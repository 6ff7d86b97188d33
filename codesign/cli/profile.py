"""`codesign profile` (not yet implemented: see the tracker)."""

from __future__ import annotations

import argparse

from costmodels.errors import CodesignError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="(not yet implemented)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise CodesignError("codesign profile is not implemented yet")
