"""Shared CLI plumbing: a parser whose errors are one line, output helpers, option groups.

Nothing here imports torch: ``codesign --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

from codesign.runtime.threads import THREADS_MAX
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


def add_trust_pickle(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-pickle", action="store_true",
                   help="let a --dataset file:PATH.pt hold a pickled object (e.g. a PyG Data); unpickling runs code "
                        "from the file, so only for files you made (default: off, plain dicts of tensors only)")


def check_file_out(path: str | Path, flag: str) -> None:
    """An output file we may write: not a folder, its nearest existing parent a writable folder (nothing created)."""
    if not str(path):
        raise CodesignError(f"{flag} is empty; give a file path")
    out = Path(path)
    if out.is_dir():
        raise CodesignError(f"{flag} {str(path)!r} is a folder; give a file path")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CodesignError(f"{flag} {str(path)!r}: {str(parent)!r} is a file, not a folder; give another path")
    from .run_folder import can_write_in

    if not can_write_in(parent):
        raise CodesignError(f"{flag} {str(path)!r}: {str(parent)!r} is not writable; give a path you can write")


# Every numeric option's accepted range, in one place: (low, high, whole number?, low excluded?). Size knobs
# are bounded so that a typo cannot ask for hours of work or gigabytes (``--layers 1000``).
SEED_MAX = 2**31 - 1
BOUNDS: dict[str, tuple[float, float, bool, bool]] = {
    "--seed": (0, SEED_MAX, True, False),
    "--epochs": (1, 10_000, True, False),
    "--layers": (1, 16, True, False),  # beyond 4 layers estimate counts kernels live: ~10 s at 8, minutes at 32
    "--hidden": (1, 8192, True, False),
    "--heads": (1, 64, True, False),
    "--rounds": (1, 100, True, False),
    "--parallel-threads": (0, 1024, True, False),
    "--fifo-length": (1, 100, True, False),
    "--eb-warmup": (0, 10_000, True, False),
    "--lr": (0.0, 10.0, False, True),
    "--graph-lr": (0.0, 10.0, False, True),
    "--admm-rho": (0.0, 1e6, False, True),
    "--eta": (0.0, 100.0, False, True),
    "--dropout": (0.0, 0.99, False, False),
    "--width": (0.0, 4.0, False, True),
    "--batch-size": (1, 65_536, True, False),
    "--train-subset": (20, 10_000_000, True, False),
    "--val-size": (0.0, 1_000_000, False, False),
    "--bn-l1": (0.0, 1.0, False, False),
    "--eb-eps": (0.0, 1.0, False, True),
    "--spline-threshold": (0.0, 1.0, False, True),
    "--probe-grid": (2, 512, True, False),
    "--finetune-epochs": (0, 10_000, True, False),
    "--trials": (1, 100_000, True, False),
    "--n-jobs": (1, 256, True, False),
    "--trainings-per-config": (1, 100, True, False),
    "--confirm-seeds": (0, 50, True, False),
    "--repeats": (1, 10_000, True, False),
    "--warmup": (0, 10_000, True, False),
    "--per-round": (1, 1000, True, False),
    "--holdout-every": (2, 1000, True, False),
}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


def bounded(flag: str):
    """argparse ``type=`` for ``flag``: a finite number in its ``BOUNDS`` range (a whole one where it counts);
    the one-line message names the option, the value and the range."""
    lo, hi, integer, lo_open = BOUNDS[flag]

    def parse(text: str) -> float | int:
        kind = "a whole number" if integer else "a number"
        span = f"{'(' if lo_open else '['}{_num(lo)}, {_num(hi)}]"
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{flag} must be {kind} in {span}, got {text!r}") from None
        if not math.isfinite(value) or (integer and not value.is_integer()):
            raise argparse.ArgumentTypeError(f"{flag} must be {kind} in {span}, got {text!r}")
        if value < lo or value > hi or (lo_open and value == lo):
            raise argparse.ArgumentTypeError(f"{flag} {text}: out of range, must be in {span}")
        return int(value) if integer else value

    parse.__name__ = flag
    return parse


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
    if not 1 <= n <= THREADS_MAX:
        raise argparse.ArgumentTypeError(f"--threads must be a whole number from 1 to {THREADS_MAX}, got {text!r}")
    return n


def add_threads_flag(p: argparse.ArgumentParser, default: int | None = None, help: str | None = None) -> None:
    """``--threads N``: torch CPU threads; left out, ``codesign.runtime.threads`` chooses from the cores this process
    may use, the workers sharing them and the workload's size (OMP_NUM_THREADS, when set, is honoured)."""
    p.add_argument("--threads", type=_threads, default=default, metavar="N",
                   help=help or "torch CPU threads (default: chosen from usable cores, workers and workload size)")


def _data_root(text: str) -> str:
    """argparse ``type=`` of ``--data-root``: an empty one is refused (it read as left out: $CODESIGN_DATA)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("--data-root is empty; give the folder that holds the datasets, or leave "
                                         "it out for $CODESIGN_DATA")
    return text


def add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root",
        type=_data_root,
        default=None,
        help="folder holding the datasets (default: $CODESIGN_DATA, else ../shared/data or ~/.cache)",
    )
