"""Torch-free `codesign train --task cnn` options (owned by the CNN pruning code).

Every option defaults to None here: an option left out takes ``CNNTrainConfig``'s default (the one
place it is set; the help texts quote it).

Options the graph task also needs are not added here (an option can exist once): the retrain
initialisation is ``--cnn-retrain-init finetune|reinit``; when it is absent, the graph task's
``--retrain-init`` is read (ticket -> finetune, reinit -> reinit).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from costmodels.errors import CodesignError

from .common import bounded

if TYPE_CHECKING:
    from codesign.cnn.pipeline import CNNTrainConfig


def _fraction(text: str) -> float:
    from costmodels.errors import CodesignError, check_fraction

    try:
        return check_fraction("--channel-sparsity", float(text))
    except (ValueError, CodesignError) as exc:
        raise argparse.ArgumentTypeError(f"--channel-sparsity must be a number in [0, 1), got {text!r}") from exc


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add the CNN-task options to the `train` parser."""
    from costmodels.cnn_resnets import CNN_MODELS

    g = p.add_argument_group(f"cnn task (--task cnn; models {', '.join(CNN_MODELS)}; "
                             "methods dense, eb, spline-eb, spline, slimming, random)")
    g.add_argument("--channel-sparsity", type=_fraction, default=None,
                   help="fraction p of prunable channels to remove, in [0, 1) (default 0.5)")
    g.add_argument("--width", type=bounded("--width"), default=None,
                   help="channel width multiplier (e.g. 0.25 for CPU runs) (default: 1.0)")
    g.add_argument("--train-subset", type=bounded("--train-subset"), default=None,
                   help="train on a seeded random subset of N images")
    g.add_argument("--val-size", type=bounded("--val-size"), default=None,
                   help="validation images held out of the (subset) training set: a fraction < 1 or a count "
                        "(default 0.1; 0 = none)")
    g.add_argument("--batch-size", type=bounded("--batch-size"), default=None,
                   help="SGD batch size (default 256, as the papers)")
    g.add_argument("--cnn-retrain-init", choices=["finetune", "reinit"], default=None,
                   help="retrain the pruned net from the ticket's weights (finetune, default) or re-initialised")
    g.add_argument("--spline-mode", choices=["layerwise", "global"], default=None,
                   help="spline pruning: same ratio per layer, or one global ranking (default layerwise)")
    g.add_argument("--detector", choices=["eb", "spline"], default=None,
                   help="ticket detector for --method spline: channel masks (eb) or partition codes (spline) "
                        "(default: spline)")
    g.add_argument("--bn-l1", type=bounded("--bn-l1"), default=None,
                   help="network-slimming L1 strength s on BN gammas (default: 1e-4)")
    g.add_argument("--eb-eps", type=bounded("--eb-eps"), default=None,
                   help="EB mask detector: max mask distance (default 0.1)")
    g.add_argument("--spline-threshold", type=bounded("--spline-threshold"), default=None,
                   help="spline-EB detector: max partition-code distance over the last 3 epochs (default 0.16)")
    g.add_argument("--probe-grid", type=bounded("--probe-grid"), default=None,
                   help="spline probe set: grid x grid images on the plane of two validation images (two training "
                        "images with --val-size 0; the paper: 100, two test images) "
                        "(default: 32)")
    g.add_argument("--finetune-epochs", type=bounded("--finetune-epochs"), default=None,
                   help="slimming fine-tune epochs, and the shortest retrain after a ticket (default ceil(epochs / 2))")
    g.add_argument("--no-download", action="store_true", help="never download datasets (CIFAR)")


def cnn_config(args: argparse.Namespace) -> CNNTrainConfig:
    """The :class:`CNNTrainConfig` of a ``codesign train --task cnn`` command line."""
    from codesign.cnn.pipeline import CNNTrainConfig

    retrain = getattr(args, "cnn_retrain_init", None)
    if retrain is None:
        shared = getattr(args, "retrain_init", None)  # the graph task's option, if present
        mapping = {None: None, "ticket": "finetune", "finetune": "finetune", "reinit": "reinit"}
        if shared not in mapping:
            raise CodesignError(f"--retrain-init {shared!r} is not available for --task cnn; "
                                "use --cnn-retrain-init finetune|reinit")
        retrain = mapping[shared]
    given = dict(
        model=args.model, dataset=args.dataset, method=args.method, seed=args.seed, epochs=args.epochs,
        channel_sparsity=args.channel_sparsity, width=args.width, batch_size=args.batch_size,
        train_subset=args.train_subset, val_size=args.val_size, retrain_init=retrain, spline_mode=args.spline_mode,
        detector=args.detector, bn_l1=args.bn_l1, eb_eps=args.eb_eps, spline_threshold=args.spline_threshold,
        probe_grid=args.probe_grid, finetune_epochs=args.finetune_epochs, data_root=args.data_root,
        download=not args.no_download, run_on=args.run_on, out=args.out,
    )
    # an option left out (None) takes the config's default: one place per default
    cfg = CNNTrainConfig(**{k: v for k, v in given.items() if v is not None})
    return cfg
