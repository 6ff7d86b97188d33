"""Torch-free `codesign train --task graph` options (owned by the graph-ticket code)."""

from __future__ import annotations

import argparse


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add the graph-task options to the `train` parser."""
