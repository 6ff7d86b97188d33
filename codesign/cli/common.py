"""Shared CLI plumbing: a parser whose errors are one line, output helpers, option groups.

Nothing here imports torch: ``codesign --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from costmodels.errors import CodesignError, check_fraction


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class Renamed(argparse.Action):
    """An option spelling that meant something else here before (``--repeats``, ``--warmup`` mean the measured
    and unmeasured epochs of `profile` / `calibrate`): refused with one line naming the new spelling."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(option_strings, argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        parser.error(f"{option_string} is now {self.new} in `{parser.prog}` ({option_string} means measured / "
                     f"warm-up epochs in `codesign profile` and `codesign calibrate`)")


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append ``(default: X)`` to every option help that does not state its default (recursing into
    subcommands), so that ``--help`` of every command shows every option's default."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                show_defaults(sub)
            continue
        if not action.option_strings or action.help == argparse.SUPPRESS or action.default == argparse.SUPPRESS:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        text = action.help or ""
        if "default" in text.lower():
            continue
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            shown = "on" if action.default else "off"
        elif action.default is None:
            shown = "none"
        else:
            shown = str(action.default).replace("%", "%%")
        action.help = (text + " " if text else "") + f"(default: {shown})"


TRUST_ENV = "CODESIGN_TRUST_PICKLE"  # read by codesign.graphs.user_graph (one name for both)


def add_trust_pickle(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-pickle", action="store_true",
                   help="let a --dataset file:PATH.pt hold a pickled object (e.g. a PyG Data); unpickling runs code "
                        "from the file, so only for files you made (default: off, plain dicts of tensors only)")


def check_file_out(path: str | Path, flag: str) -> None:
    """An output file we may write: not a folder, its nearest existing parent a writable folder (nothing created)."""
    out = Path(path)
    if out.is_dir():
        raise CodesignError(f"{flag} {str(path)!r} is a folder; give a file path")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CodesignError(f"{flag} {str(path)!r}: {str(parent)!r} is a file, not a folder; give another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CodesignError(f"{flag} {str(path)!r}: {str(parent)!r} is not writable; give a path you can write")


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
