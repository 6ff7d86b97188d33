"""Torch-free `codesign train --task graph` options (owned by the graph-ticket code).

Defaults follow the GEBT paper (Kipf & Welling settings; detector FIFO 3, eta 0.1); they are set once,
in ``GraphTrainConfig``: every option here defaults to None (= the config's default). Values are
validated by ``GraphTrainConfig`` (one-line ``CodesignError``) and, for sparsities, by argparse.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from costmodels.errors import CodesignError

from .common import Renamed, bounded, fraction

if TYPE_CHECKING:
    from codesign.graphs.config import GraphTrainConfig


def _add(group, *flags: str, **kwargs) -> None:
    """Add an option unless another task already defined the same flag (then it is shared)."""
    if any(f in group._option_string_actions for f in flags):  # shared with the parser
        return
    group.add_argument(*flags, **kwargs)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add the graph-task options to the `train` parser."""
    g = p.add_argument_group("graph task (--task graph; models gcn, gat, gin, sage; "
                             "methods dense, geb, gebt, sgcn, random, ugs)")
    _add(g, "--graph-sparsity", type=fraction("--graph-sparsity"), default=None,
         help="p_g: fraction of edges pruned (geb, gebt, sgcn, random, ugs; default 0.2)")
    _add(g, "--weight-sparsity", type=fraction("--weight-sparsity"), default=None,
         help="p_w: fraction of weights pruned, global magnitude (gebt, random, ugs; default 0.5)")
    _add(g, "--weight-pattern", default=None,
         help="weight mask pattern: unstructured (default) or N:M, e.g. 2:4 (at most N kept in every M "
         "consecutive inputs: what sparse tensor cores take; gebt, random; sparsity >= 1 - N/M)")
    _add(g, "--criterion", default=None, help="early-bird criterion: mean (default; (d_g+d_w)/2 < eta, "
         "reproduces the paper's ticket epochs), sum (d_g+d_w < eta), graph, weight")
    _add(g, "--eta", type=bounded("--eta"), default=None, help="early-bird threshold (default 0.1)")
    _add(g, "--fifo-length", type=bounded("--fifo-length"), default=None,
         help="masks kept for the distance (default 3)")
    _add(g, "--eb-warmup", dest="warmup", type=bounded("--eb-warmup"), default=None,
         help="early-bird detector: no ticket before this search epoch (default 5)")
    _add(g, "--warmup", action=Renamed, new="--eb-warmup", nargs="?", help=argparse.SUPPRESS)
    _add(g, "--distance-norm", default=None,
         help="mask distance normalisation: relative (default; to the first value) or fraction")
    _add(g, "--retrain-init", default=None, help="retraining starts from: ticket (default), rewind, reinit")
    _add(g, "--sparsifier", default=None, help="graph sparsifier: admm (default, SGCN) or l1 (UGS)")
    _add(g, "--tie-break", default=None, help="order of edges whose values tie when masking: "
         "min-degree (default; keep larger 1/min(d_u, d_v)), resistance (keep larger 1/d_u + 1/d_v), "
         "norm (keep larger 1/sqrt(d_u d_v)), random, index")
    _add(g, "--graph-sharing", default=None, help="searches (geb, gebt, sgcn): per-layer (default; one "
         "trainable graph and mask per layer, as the public GEBT code) or shared (one for all layers)")
    _add(g, "--node-order", default=None, help="train on the graph relabelled for locality: natural "
         "(default), degree or rcm; tickets and results stay in the dataset's node ids")
    _add(g, "--rounds", type=bounded("--rounds"), default=None,
         help="ugs rounds (default: fewest with weight sparsity 1-0.8^r >= --weight-sparsity)")
    _add(g, "--layers", type=bounded("--layers"), default=None, help="GNN layers (default 2)")
    _add(g, "--hidden", type=bounded("--hidden"), default=None,
         help="hidden width (per head for gat); default 16, gat 8")
    _add(g, "--heads", type=bounded("--heads"), default=None, help="GAT heads in hidden layers (default 8)")
    _add(g, "--dropout", type=bounded("--dropout"), default=None, help="dropout (default 0.5)")
    _add(g, "--lr", type=bounded("--lr"), default=None, help="weight learning rate, Adam (default 0.01)")
    _add(g, "--graph-lr", type=bounded("--graph-lr"), default=None, help="edge-value learning rate (default 1e-3)")
    _add(g, "--admm-rho", type=bounded("--admm-rho"), default=None, help="ADMM penalty rho (default 1e-3)")
    _add(g, "--ticket", default=None, help="retrain from a saved ticket (the --out folder of an earlier run)")


def _default(name: str) -> Any:
    """The :class:`GraphTrainConfig` default of field ``name`` (the one place it is set)."""
    from codesign.graphs.config import GraphTrainConfig

    return GraphTrainConfig.__dataclass_fields__[name].default


def check_method_sparsities(method: str, graph: float | None, weight: float | None) -> None:
    """A sparsity given (not None) for a method that does not prune that kind is refused, one line."""
    from codesign.graphs.config import METHOD_SPARSITIES

    for kind, value in (("graph", graph), ("weight", weight)):
        if value is not None and kind not in METHOD_SPARSITIES.get(method, (kind,)):
            raise CodesignError(f"--{kind}-sparsity {value} does not apply to --method {method} (it prunes "
                                f"{' and '.join(METHOD_SPARSITIES[method]) or 'nothing'}); drop the option")


def graph_config(args: argparse.Namespace) -> GraphTrainConfig:
    """The :class:`GraphTrainConfig` of a ``codesign train --task graph`` command line."""
    from codesign.graphs.config import GraphTrainConfig

    method = (_default("method") if args.method is None else args.method).lower()  # '' is refused, not the default
    if not args.ticket:
        check_method_sparsities(method, args.graph_sparsity, args.weight_sparsity)
    model = (_default("model") if args.model is None else args.model).lower()
    given = dict(
        model=model, dataset=args.dataset, method=method, seed=args.seed, epochs=args.epochs,
        graph_sparsity=args.graph_sparsity, weight_sparsity=args.weight_sparsity, layers=args.layers,
        weight_pattern=getattr(args, "weight_pattern", None),
        hidden=args.hidden, heads=args.heads, dropout=args.dropout, lr=args.lr,
        graph_lr=args.graph_lr, admm_rho=args.admm_rho, sparsifier=args.sparsifier, tie_break=args.tie_break,
        graph_sharing=args.graph_sharing, node_order=args.node_order, criterion=args.criterion, eta=args.eta,
        fifo=args.fifo_length,
        warmup=args.warmup, distance_norm=args.distance_norm, retrain_init=args.retrain_init, rounds=args.rounds,
        data_root=args.data_root, run_on=args.run_on, out=args.out, ticket=args.ticket,
    )
    # an option left out (None) takes the config's default: one place per default; a sparsity the
    # method does not use is recorded as None by the config
    config = GraphTrainConfig(**{k: v for k, v in given.items() if v is not None})
    return config
