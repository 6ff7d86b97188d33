"""Torch-free `codesign train --task cnn` options (owned by the CNN pruning code)."""

from __future__ import annotations

import argparse


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add the CNN-task options to the `train` parser."""
