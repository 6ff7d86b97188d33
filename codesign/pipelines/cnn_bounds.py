"""The cost interval of a pruned-CNN run, known before training, for screening (``--task cnn``).

A run's phases train the dense network ``D`` (widths of every prunable layer) or a pruned one; its
cost grows with the epochs of each phase and with every width (conv work ``~ c_in c_out H W``), so
pricing the cheapest and the dearest run a configuration can make bounds the priced cost of the
run it does make. Per method (E = ``epochs``, ft = ``finetune_epochs``, p = channel sparsity):

* ``dense``: E epochs of ``D``. Exact.
* ``random``: E epochs of the layerwise-pruned widths (``floor(p C)`` channels per layer and the
  remainder spread by a fixed rule, :func:`codesign.cnn.prune.layerwise_masks`: the widths do not
  depend on the random draw). Exact.
* ``slimming``: E epochs of ``D``, then ft of the pruned network; pruned globally (by BN scale),
  so its widths are known only after training: between the floor ``max(1, C_i - floor(p N))`` per
  layer (no layer can lose more than the ``p N`` channels removed in all) and ``D``.
* ``eb``, ``spline-eb``, ``spline``: a search of ``t`` dense epochs, ``1 <= t <= E`` (the detector
  decides), then ``max(E - t, ft)`` retraining epochs (ft when it never fired) of the ticket: global
  widths as above (``spline`` with ``spline_mode`` layerwise: exact widths); the spline detector's
  probe passes from none to ``E + 1`` checks. The low end is the cheapest ``t``, the high end the
  dearest, each priced.

With ``search_from = k`` (a search known to run at least ``k`` epochs) ``t >= k``: a budgeted run
is stopped once that low end is over the budget (:meth:`CNNEvaluator.search_limit
<codesign.pipelines.cnn_search.CNNEvaluator.search_limit>`). Every network of ``CNN_MODELS`` is
bounded: its cfg widths (what the workloads price) are its prunable units' widths one to one, the
ResNets' included (pre-activation: per block the selected inputs, then the inner widths; ResNet-18:
the 8 inner widths). A network where they were not would get None (trained, not screened).
"""

from __future__ import annotations

import functools
from typing import Any

DETECTED = frozenset({"eb", "spline-eb", "spline"})


@functools.lru_cache(maxsize=8)
def _shape(model: str, dataset: str, width: float, data_root: str | None, train_subset: int | None,
           val_size: float) -> tuple[Any, tuple[int, ...], int] | None:
    """(NetShape, dense widths, training images) of the runs of one search; None: not bounded."""
    from codesign.cnn.cost import NetShape
    from codesign.cnn.data import load_dataset
    from codesign.cnn.methods import widths
    from codesign.cnn.models import build_model
    from codesign.cnn.prune import kept_channels
    from codesign.runtime.data_root import resolve_data_root

    data = load_dataset(dataset, resolve_data_root(data_root), train_subset=train_subset, seed=0, download=True,
                        val_size=val_size)  # the subset's size does not depend on the seed
    c, h, _ = data.input_shape
    net = build_model(model, width=width, in_channels=c, num_classes=data.num_classes)
    dense = widths(net)
    if list(dense) != kept_channels(net):
        return None
    return NetShape(model, data.num_classes, c, h, width), dense, len(data.train_y)


def layerwise_widths(dense: tuple[int, ...], p: float) -> tuple[int, ...]:
    """The widths :func:`codesign.cnn.prune.layerwise_masks` keeps at sparsity ``p``."""
    import torch

    from codesign.cnn.prune import layerwise_masks

    return tuple(int(m.sum()) for m in layerwise_masks([torch.zeros(n) for n in dense], p))


def floor_widths(dense: tuple[int, ...], p: float) -> tuple[int, ...]:
    """No layer keeps fewer than ``max(1, C_i - k)`` channels when ``k = floor(p N)`` are removed in all."""
    from codesign.cnn.prune import removal_count

    k = removal_count(p, sum(dense))
    return tuple(max(1, c - k) for c in dense)


Bounds = tuple[list[dict[str, Any]], list[dict[str, Any]], tuple[int, int], bool]


def run_bounds(cfg: Any, search_from: int | None = None) -> Bounds | None:
    """``(low runs, high runs, (low epochs, high epochs), exact)`` of a ``CNNTrainConfig``: the cheapest run
    is the cheapest of ``low runs`` once priced, the dearest the dearest of ``high runs`` (one run each but
    for the detector methods, one per search length ``t``), as ``codesign.cnn.cost.cost_inputs`` dicts;
    None when the network is not bounded."""
    from codesign.cnn.cost import PhaseRecord, cost_inputs

    got = _shape(cfg.model, cfg.dataset, cfg.width, cfg.data_root, cfg.train_subset, cfg.val_size)
    if got is None:
        return None
    shape, dense, n_train = got
    cfg = cfg.resolved()
    E, ft, p = int(cfg.epochs), int(cfg.finetune_epochs), float(cfg.channel_sparsity or 0.0)
    probe = cfg.probe_grid ** 2 if cfg.method in ("spline-eb", "spline") else 0  # the spline methods' probe plane
    exact_widths = cfg.method == "random" or (cfg.method == "spline" and cfg.spline_mode == "layerwise")
    low_w = layerwise_widths(dense, p) if exact_widths else floor_widths(dense, p)
    high_w = low_w if exact_widths else dense

    def inputs(phases: list[tuple[str, int, tuple[int, ...]]], final: tuple[int, ...], checks: int) -> dict[str, Any]:
        records = [PhaseRecord(name, e, w) for name, e, w in phases if e > 0]
        return cost_inputs(shape, records, final, dense_channels=dense, n_train=n_train, batch_size=cfg.batch_size,
                           probe_images=probe if checks else 0, probe_epochs=checks if probe else 0)

    if cfg.method == "dense":
        one = inputs([("dense", E, dense)], dense, 0)
        return [one], [one], (E, E), True
    if cfg.method == "random":
        one = inputs([("pruned", E, low_w)], low_w, 0)
        return [one], [one], (E, E), True
    if cfg.method == "slimming":
        lo = inputs([("dense-l1", E, dense), ("retrain", ft, low_w)], low_w, 0)
        hi = inputs([("dense-l1", E, dense), ("retrain", ft, high_w)], high_w, 0)
        return [lo], [hi], (E + ft, E + ft), False
    if cfg.method not in DETECTED:
        return None
    t_lo = min(max(1, search_from or 1), E)
    runs = []
    for t in range(t_lo, E + 1):  # the detector fires after t epochs (t = E: never; retrain ft)
        retrain = max(E - t, ft) if t < E else ft
        runs.append((t, retrain))
    lows = [inputs([("search", t, dense), ("retrain", r, low_w)], low_w, 0) for t, r in runs]
    highs = [inputs([("search", t, dense), ("retrain", r, high_w)], high_w, E + 1) for t, r in runs]
    epochs = [t + r for t, r in runs]
    return lows, highs, (min(epochs), max(epochs)), False
