"""The ``codesign`` command line.

Each subcommand lives in its own module with ``register(subparsers)``; heavy imports (torch, PyG,
optuna) happen inside the handlers, so ``codesign --help`` stays fast and torch-free.
User errors (:class:`CodesignError`) print one line and exit 2; ``--debug`` shows the traceback.

The door: the only package that sees an ``argparse.Namespace``. Each handler turns its arguments
into typed options (``GraphTrainConfig``, ``CNNTrainConfig``, ``HardwareOptions``, ``TrafficQuery``,
``SearchConfig`` ...) and hands those on. May import everything; nothing imports it.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from codesign.runtime import startup
from codesign.runtime.data_root import TRUST_ENV
from costmodels.errors import CodesignError

from . import calibrate, devices, estimate, export, pareto, profile, search, train
from .common import Parser, show_defaults

SUBCOMMANDS = (devices, estimate, train, search, pareto, profile, calibrate, export)


def build_parser() -> Parser:
    parser = Parser(
        prog="codesign",
        description="Cost-model simulator and co-design toolkit for sparse GNNs and pruned CNNs.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in SUBCOMMANDS:
        module.register(sub)
    show_defaults(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from codesign.runtime.memory import prepare_huge_pages
    from codesign.runtime.threads import prepare_environment, user_omp_threads

    prepare_environment()  # OMP_WAIT_POLICY=PASSIVE before torch starts OpenMP (unless the user set it)
    prepare_huge_pages()  # THP_MEM_ALLOC_ENABLE=1 before torch's first allocation (unless the user set it)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:  # no command: the help, then one line on stderr saying so
        parser.print_help()
        print("codesign: error: give a command, e.g. codesign estimate --model gcn --dataset cora", file=sys.stderr)
        return 2
    trust = getattr(args, "trust_pickle", False)
    previous = os.environ.get(TRUST_ENV)
    if trust:  # the environment carries it into search worker processes too
        os.environ[TRUST_ENV] = "1"
    try:
        if getattr(args, "threads", 0) is None:  # the thread policy will read OMP_NUM_THREADS: checked before torch
            user_omp_threads()
        with warnings.catch_warnings(record=True) as caught:  # a refusal is one line: its warnings are dropped
            code = int(args.handler(args) or 0)
        for w in caught:  # the command went through: show what it warned about
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return code
    except CodesignError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"codesign: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"codesign: interrupted{getattr(args, 'interrupt_note', '')}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0
    finally:
        if trust:
            if previous is None:
                os.environ.pop(TRUST_ENV, None)
            else:
                os.environ[TRUST_ENV] = previous


def console_main() -> int:
    """``codesign`` as a process (the console script, ``python -m codesign``): :func:`main`, with torch
    imported (where the command first needs it) with the collector paused and frozen after
    (:mod:`codesign.runtime.startup`), then ``gc.freeze()`` so that the interpreter's shutdown collections
    skip what the run created (measured: exiting after ``import torch`` 0.70 s -> 0.15 s). Atexit handlers
    still run."""
    startup.install()
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console_main())
