"""`codesign train --task cnn`: configuration, one run end to end, and the result record.

``train(config) -> dict`` loads the data (holding out ``val_size`` of the training images as a
seeded validation set), builds the network (input channels / size and classes follow the
dataset), runs the method's loop (``codesign.cnn.methods``), evaluates on validation
(``val_accuracy``, what a search optimises) and test (``test_accuracy``, reported), and prices the
run (``codesign.cnn.cost``; ``cost_inputs`` re-prices it on any device with
``codesign.cnn.cost.price``). Everything is deterministic on CPU for a given seed.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from codesign.runtime.result_checks import chance_warning, check_sparsity
from codesign.runtime.torch_device import check_run_on
from costmodels.errors import CodesignError, check_fraction, unknown
from costmodels.stats import image_key

from .data import DATASETS
from .models import MODELS

METHODS = ("dense", "eb", "spline-eb", "spline", "slimming", "random")
RETRAIN_INITS = ("finetune", "reinit")
DETECTORS = ("eb", "spline")
SPLINE_MODES = ("layerwise", "global")
PAPER_EPOCHS = 160  # CIFAR schedule of network slimming / EB (lr drops at 80 and 120)


@dataclass(frozen=True)
class CNNTrainConfig:
    """A CNN pruning run. ``epochs`` None = the papers' 160 (the search, or the dense/slimming training,
    runs at most this many); ``finetune_epochs`` None = ceil(epochs/2): slimming's fine-tune, the
    retrain of a search whose detector never fired, and the shortest retrain after a ticket (a ticket
    at epoch t retrains max(epochs - t, finetune_epochs) epochs)."""

    model: str = "vgg11"
    dataset: str = "fashion-mnist"
    method: str = "eb"
    seed: int = 0
    epochs: int | None = None
    channel_sparsity: float | None = 0.5  # None (not applicable) for dense
    width: float = 1.0
    batch_size: int = 256
    train_subset: int | None = None
    val_size: float = 0.1
    retrain_init: str = "finetune"
    spline_mode: str = "layerwise"
    detector: str = "spline"
    bn_l1: float = 1e-4
    eb_eps: float = 0.1
    eb_fifo: int = 5
    spline_threshold: float = 0.16
    spline_lookback: int = 3
    probe_grid: int = 32
    finetune_epochs: int | None = None
    data_root: str | None = None
    download: bool = True
    run_on: str = "cpu"
    out: str | None = None
    progress: bool | None = None
    search_limit: int | None = None  # a budgeted search: stop (SearchStopped) after this many epochs without a ticket

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise unknown("model", self.model, list(MODELS))
        if image_key(self.dataset) not in DATASETS:
            raise unknown("dataset", self.dataset, list(DATASETS))
        object.__setattr__(self, "dataset", image_key(self.dataset))  # results name it as DATASETS does
        if self.method not in METHODS:
            raise unknown("method", self.method, list(METHODS))
        if self.retrain_init not in RETRAIN_INITS:
            raise unknown("retrain init", self.retrain_init, list(RETRAIN_INITS))
        if self.detector not in DETECTORS:
            raise unknown("detector", self.detector, list(DETECTORS))
        if self.spline_mode not in SPLINE_MODES:
            raise unknown("spline mode", self.spline_mode, list(SPLINE_MODES))
        if self.method == "dense":
            object.__setattr__(self, "channel_sparsity", None)  # dense prunes nothing: recorded as n/a
        else:
            check_fraction("--channel-sparsity", self.channel_sparsity)
        for name in ("epochs", "batch_size", "eb_fifo", "spline_lookback", "probe_grid", "train_subset"):
            v = getattr(self, name)
            if v is not None and int(v) < (2 if name in ("eb_fifo", "probe_grid") else 1):
                raise CodesignError(f"--{name.replace('_', '-')} must be a positive integer (>= 2 for fifo/grid), "
                                    f"got {v}")
        if self.batch_size < 2:
            raise CodesignError(f"--batch-size must be at least 2 (BatchNorm normalises over the images of a batch), "
                                f"got {self.batch_size}; e.g. --batch-size 64")
        if self.finetune_epochs is not None and self.finetune_epochs < 0:
            raise CodesignError(f"--finetune-epochs must be >= 0, got {self.finetune_epochs}")
        if not 0.0 < self.width <= 4.0:
            raise CodesignError(f"--width must be in (0, 4], got {self.width}; e.g. --width 0.25 for CPU runs")
        if not (self.val_size >= 0 and math.isfinite(self.val_size)):
            raise CodesignError(f"--val-size must be >= 0 (a fraction < 1 or an image count), got {self.val_size}")
        for name in ("bn_l1", "eb_eps", "spline_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise CodesignError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value!r}")
        check_run_on(self.run_on)

    def resolved(self) -> CNNTrainConfig:
        """Defaults filled in: epochs (160) and finetune_epochs (ceil(epochs / 2))."""
        epochs = self.epochs or PAPER_EPOCHS
        ft = self.finetune_epochs if self.finetune_epochs is not None else math.ceil(epochs / 2)
        return replace(self, epochs=epochs, finetune_epochs=ft)


def train(config: CNNTrainConfig, thread_policy: dict | None = None) -> dict:
    """Run ``config`` end to end and return the result record (the ``codesign train --json`` dict);
    ``thread_policy``: how the caller chose the torch threads (``ThreadPolicy.to_dict()``), recorded."""
    import torch

    from codesign.runtime.data_root import resolve_data_root
    from codesign.runtime.torch_device import resolve_run_on
    from codesign.runtime.versions import versions

    from .cost import NetShape, forward_flops, price_cnn_run
    from .data import load_dataset
    from .methods import METHOD_LOOPS, widths
    from .models import build_model
    from .prune import channel_sparsity, kept_channels, param_count, removal_count
    from .training import evaluate

    cfg = config.resolved()
    t0 = time.perf_counter()
    data = load_dataset(cfg.dataset, resolve_data_root(cfg.data_root), train_subset=cfg.train_subset,
                        seed=cfg.seed, download=cfg.download, val_size=cfg.val_size)
    if len(data.train_y) < 2:  # BatchNorm cannot train on one image
        raise CodesignError(f"--val-size {cfg.val_size:g} leaves {len(data.train_y)} training image(s); "
                            "training needs at least 2: use a smaller --val-size or a larger --train-subset")
    c, h, _ = data.input_shape
    torch.manual_seed(cfg.seed)
    device = resolve_run_on(cfg.run_on)
    model = build_model(cfg.model, width=cfg.width, in_channels=c, num_classes=data.num_classes).to(device)
    dense_widths, dense_params = widths(model), param_count(model)
    dense_units = kept_channels(model)
    if cfg.channel_sparsity is not None:  # fail before training when the request cannot be met
        n, units = sum(dense_units), len(dense_units)
        reachable = min(removal_count(cfg.channel_sparsity, n), n - units) / n
        check_sparsity(cfg.method, "channel", cfg.channel_sparsity, reachable, n, verb="can reach at most",
                       why=f"{n} channels in {units} layers, each keeping at least one")
    g = torch.Generator().manual_seed(cfg.seed)
    out = METHOD_LOOPS[cfg.method](model, data, cfg, g)
    acc, val_acc = evaluate(out.model, data), evaluate(out.model, data, split="val")
    shape = NetShape(cfg.model, data.num_classes, c, h, cfg.width)
    priced = price_cnn_run(shape, out.phases, list(widths(out.model)), n_train=len(data.train_y),
                           batch_size=cfg.batch_size, probe_images=out.probe_images, probe_epochs=out.probe_epochs,
                           dense_channels=dense_widths)
    f_before, f_after = forward_flops(shape, dense_widths), forward_flops(shape, widths(out.model))
    achieved = channel_sparsity(out.masks) if out.masks is not None else 0.0
    requested = cfg.channel_sparsity
    check_sparsity(cfg.method, "channel", requested, achieved, sum(dense_units))
    warning = chance_warning(acc, torch.bincount(data.test_y, minlength=data.num_classes).tolist())
    result = {
        "task": "cnn", "model": cfg.model, "dataset": cfg.dataset, "method": cfg.method, "seed": cfg.seed,
        "epochs": cfg.epochs, "val_accuracy": val_acc, "test_accuracy": acc, "dense_accuracy_at_ticket": out.ticket_acc,
        "eb_epoch": out.eb_epoch, "eb_found": out.eb_found,
        "search_epochs": next((p.epochs for p in out.phases if p.name == "search"), None),
        "channel_sparsity_target": requested or 0.0,
        "channel_sparsity": achieved,
        "requested_channel_sparsity": requested, "achieved_channel_sparsity": achieved,
        "at_chance": warning is not None, "warnings": [warning] if warning else [],
        "kept_channels": kept_channels(out.model), "dense_channels": dense_units,
        "params": {"before": dense_params, "after": param_count(out.model)},
        "forward_flops": {"before": f_before, "after": f_after, "reduction": 1.0 - f_after / f_before,
                          "convention": "per image, 2 x conv/linear multiply-adds (= torch FlopCounterMode)"},
        "phases": [asdict(p) for p in out.phases],
        **priced,
        "history": out.history,
        "data": {"n_train": len(data.train_y), "n_val": len(data.val_y), "n_test": len(data.test_y),
                 "source": data.source,
                 "input_shape": list(data.input_shape)},
        "dataset_checksum": data.checksum(),
        "wall_s": time.perf_counter() - t0,
        "torch_threads": torch.get_num_threads(),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "config": asdict(cfg),
        "versions": versions(),
    }
    if thread_policy is not None:
        result["thread_policy"] = thread_policy
    from codesign.runtime.memory import allocator_record

    result.update(allocator_record())  # how this process allocated, in result.json as in what the CLI prints
    if cfg.out:
        _save(cfg, out.model, result)
    return result


def _save(cfg: CNNTrainConfig, model, result: dict) -> None:
    """``<out>/model.pt`` (weights + cfg + provenance) and ``<out>/result.json``."""
    import torch

    folder = Path(cfg.out)
    folder.mkdir(parents=True, exist_ok=True)
    from codesign.runtime.outputs import clear_earlier_run

    clear_earlier_run(folder, keep=("model.pt",))  # the earlier run's result.json first, then its other files
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    from costmodels.atomic import atomic_path, write_text

    with atomic_path(folder / "model.pt") as tmp:
        torch.save({"state_dict": state, "cfg": list(model.cfg), "config": asdict(cfg), "eb_epoch": result["eb_epoch"],
                    "versions": result["versions"], "data": result["data"]}, tmp)
    write_text(folder / "result.json", json.dumps(result, indent=2, default=str))


def format_result(r: dict) -> str:
    """A short human-readable summary of a result record."""
    cost = r["cost"]
    lines = [
        f"{r['model']} on {r['dataset']} ({r['data']['n_train']} train / {r['data'].get('n_val', 0)} val images), "
        f"method {r['method']}, seed {r['seed']}, {r['epochs']} epochs",
        "  val / test accuracy  "
        + ("-" if r.get("val_accuracy") is None else f"{100 * r['val_accuracy']:.2f} %")
        + f" / {100 * r['test_accuracy']:.2f} %"
        + ("" if r["dense_accuracy_at_ticket"] is None
           else f"   (dense network at the ticket epoch, before pruning: {100 * r['dense_accuracy_at_ticket']:.2f} %)"),
        f"  ticket epoch         {r['eb_epoch']}" + ("" if r["eb_found"] is None else f"  (found: {r['eb_found']})"),
        f"  channel sparsity     {r['channel_sparsity']:.3f} achieved / {r['channel_sparsity_target']:.3f} target",
        f"  params               {r['params']['before']:,} -> {r['params']['after']:,}",
        f"  forward FLOPs/image  {r['forward_flops']['before']:.4g} -> {r['forward_flops']['after']:.4g} "
        f"({100 * r['forward_flops']['reduction']:.1f} % fewer)",
        f"  train FLOPs          {cost['train_flops']:.4g} (analytical, all ops)   "
        f"{r['eb_convention']['train_flops']:.4g} (EB convention)",
        "  phases               " + ", ".join(f"{p['name']} x{p['epochs']}" for p in r["phases"]),
        f"  wall time            {r['wall_s']:.1f} s (measured), peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB",
    ]
    lines += [f"  warning: {w}" for w in r.get("warnings", [])]
    return "\n".join(lines)
