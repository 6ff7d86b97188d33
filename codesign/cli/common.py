"""Shared CLI plumbing: a parser whose errors are one line, output helpers, option groups.

Nothing here imports torch: ``codesign --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, NoReturn

from costmodels.errors import check_fraction


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fraction(name: str):
    """argparse ``type=`` for a sparsity in [0, 1); the message names the option."""

    def parse(text: str) -> float:
        try:
            return check_fraction(name, float(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number in [0, 1), got {text!r}") from None
        except Exception as exc:  # CodesignError -> argparse one-liner
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _jsonable(obj.item())
    return obj


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout."""
    json.dump(_jsonable(obj), sys.stdout, indent=2)
    sys.stdout.write("\n")


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print results as JSON instead of a table")


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--threads must be a whole number >= 1, got {text!r}")
    return n


def add_threads_flag(p: argparse.ArgumentParser, default: int | None = None, help: str | None = None) -> None:
    """``--threads N``: torch CPU threads; left out, ``codesign.threads`` chooses from the cores this process
    may use, the workers sharing them and the workload's size (OMP_NUM_THREADS, when set, is honoured)."""
    p.add_argument("--threads", type=_threads, default=default, metavar="N",
                   help=help or "torch CPU threads (default: chosen from usable cores, workers and workload size)")


def add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root",
        default=None,
        help="folder holding the datasets (default: $CODESIGN_DATA, else ../shared/data or ~/.cache)",
    )
