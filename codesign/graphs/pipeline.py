"""`codesign train --task graph`: load data, run a method, price it, save the ticket, report.

``train(config) -> dict`` is the whole run (callable many times in one process; the search calls it
per trial); ``train_record(config)`` returns the same as a typed :class:`GraphRunResult` (its
``to_dict()`` is the dict; the keys are described in ``codesign.graphs.result``). A method that misses
a requested sparsity by more than 0.01 fails (``CodesignError``); a test accuracy no better than
chance is flagged (``at_chance``, ``warnings``).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from codesign.runtime.memory import RELEASE_ABOVE, release_free_memory
from codesign.runtime.outputs import clear_earlier_run
from codesign.runtime.result_checks import chance_warning, check_sparsity
from codesign.runtime.torch_device import resolve_run_on
from codesign.runtime.versions import versions

from .config import GraphTrainConfig
from .costing import cost_inputs, price
from .data import GraphData, load_dataset
from .masks import mask_pattern, sparsity
from .methods import get_method
from .methods.common import MethodResult, RunContext, fit, record_phase
from .reorder import NodeOrder, reorder
from .result import GraphRunResult
from .ticket import Ticket, load_ticket, save_ticket

__all__ = ["GraphTrainConfig", "GraphRunResult", "train", "train_record", "format_result"]

# what a ticket's retraining takes from the run that drew it: the architecture, the optimiser, the seed (the
# dropout draws) and the node order (the dropout draws fall on nodes by position, and summation order)
_TICKET_KEYS = ("model", "layers", "hidden", "heads", "output_heads", "dropout", "lr", "weight_decay", "seed",
                "node_order")


def _to(data: GraphData, device: torch.device) -> GraphData:
    if device.type == "cpu":
        return data
    fields = {k: getattr(data, k) for k in data.__dataclass_fields__}
    return GraphData(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in fields.items()})


def _retrain_ticket(ctx: RunContext, ticket: Ticket) -> MethodResult:
    """Retrain from a saved ticket exactly as the run that drew it did (same masks, same start)."""
    model = ctx.new_model()
    model.load_state_dict(ticket.start_state)
    epochs = ctx.config.phase_epochs(int(ticket.provenance.get("retrain_epochs", 100)))
    gm = None if ticket.graph_mask is None else ticket.graph_mask.to(ctx.device)
    wm = None if ticket.weight_masks is None else {k: v.to(ctx.device) for k, v in ticket.weight_masks.items()}
    result = fit(ctx, model, epochs, "retrain", gm, wm)
    return MethodResult(result.val_accuracy, result.test_accuracy, ticket.graph_mask, ticket.weight_masks,
                        ticket.start_state, ticket.init_state, result.best_state,
                        [record_phase("retrain", epochs, result.wall_s, 1 - sparsity(gm), 1 - sparsity(wm))],
                        eb_epoch=ticket.provenance.get("eb_epoch"))  # type: ignore[arg-type]


def _ticket_config(config: GraphTrainConfig, ticket: Ticket) -> GraphTrainConfig:
    """``config`` with the ticket's ``_TICKET_KEYS`` (the architecture and the retraining's randomness come
    from the ticket, so it retrains identically)."""
    saved = ticket.provenance.get("config")
    saved = saved if isinstance(saved, dict) else {}
    return replace(config, **{k: saved[k] for k in _TICKET_KEYS if k in saved})


def _run_method(config: GraphTrainConfig, ticket: Ticket | None, run_data: GraphData, order: NodeOrder | None,
                device: torch.device, progress: bool, search_limit: int | None) -> MethodResult:
    """The method's run on ``run_data`` (or the retraining of ``ticket``), in the run's node order."""
    if ticket is None:
        return get_method(config.method)(RunContext(config, run_data, device, progress, search_limit))
    if order is not None:  # saved in the dataset's ids: into the run's order
        ticket = replace(ticket, graph_mask=order.mask_from_original(ticket.graph_mask))
    return _retrain_ticket(RunContext(config, run_data, device, progress), ticket)


def train(config: GraphTrainConfig, progress: bool = True, search_limit: int | None = None,
          thread_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``config`` end to end and return the result dict (``GraphRunResult.to_dict()``; written to
    ``<out>/result.json`` when ``config.out`` is set). ``search_limit``: stop the run with
    ``SearchStopped`` when its ticket search has run that many epochs without firing.
    ``thread_policy``: how the caller chose the torch threads (``ThreadPolicy.to_dict()``), recorded."""
    result = train_record(config, progress, search_limit).to_dict()
    if thread_policy is not None:
        result["thread_policy"] = thread_policy
    from codesign.runtime.memory import allocator_record

    result.update(allocator_record())  # how this process allocated, in result.json as in what the CLI prints
    if config.out:
        from costmodels.atomic import write_text

        write_text(Path(config.out) / "result.json", json.dumps(_plain(result), indent=2) + "\n")
    return result


def train_record(config: GraphTrainConfig, progress: bool = True, search_limit: int | None = None) -> GraphRunResult:
    """Run ``config`` end to end; the typed record of the run (see ``codesign.graphs.result``)."""
    start = time.perf_counter()
    device = resolve_run_on(config.run_on)
    data = load_dataset(config.dataset, config.data_root)
    ticket = load_ticket(config.ticket, data) if config.ticket else None
    if ticket is not None:
        config = _ticket_config(config, ticket)
    run_data, order = reorder(data, config.node_order)  # the run's node order; results in data's ids
    run_data = _to(run_data, device)
    data_wall_s = time.perf_counter() - start  # all before the method's first epoch: the data, a ticket, node order
    try:  # the epochs reuse freed blocks from the second on (RunContext.epoch_done)
        res = _run_method(config, ticket, run_data, order, device, progress, search_limit)
    finally:
        # the heap's free blocks back to the OS before the pricing and saving, when there are many (at 10^6
        # nodes ~1 GB: the end of the run would otherwise grow the heap further); a Cora-sized run keeps its
        # few for the next run in the process (a search's trials: trimming them cost ~5% of a short search)
        release_free_memory(above=RELEASE_ABOVE)
    if order is not None:  # tickets and results in the dataset's node ids
        res = replace(res, graph_mask=order.mask_to_original(res.graph_mask),
                      extra={**res.extra, "node_order": order.name})
    data = _to(data, device)

    gs, ws = sparsity(res.graph_mask), sparsity(res.weight_masks)
    if not config.ticket:
        n_weights = 0 if res.weight_masks is None else sum(m.numel() for m in res.weight_masks.values())
        check_sparsity(config.method, "graph", config.graph_sparsity, gs, data.num_undirected)
        check_sparsity(config.method, "weight", config.weight_sparsity, ws, n_weights)
    warning = chance_warning(res.test_accuracy, torch.bincount(data.y[data.test_mask].cpu()).tolist())
    # the pattern the weight masks conform to, measured (2:4 earns sparse-tensor-core credit, context.ExecContext)
    pattern = mask_pattern(res.weight_masks)
    specs = [replace(p.spec, weight_pattern=pattern) if p.spec.weight_density < 1.0 else p.spec for p in res.phases]
    inputs = cost_inputs(config, data, specs, 1 - gs, 1 - ws, pattern)
    paper = price(inputs, aggregation_order="aggregate-first")
    if config.out:  # the earlier run's result.json and files go before this run's ticket is written
        clear_earlier_run(config.out, keep=("ticket.pt", "ticket.json"))
    ticket_path = str(_save(config, data, res, gs, ws)) if config.out else None
    record = GraphRunResult(
        model=config.model,
        dataset=data.name,
        method=config.method if not config.ticket else f"ticket:{config.ticket}",
        seed=config.seed,
        test_accuracy=res.test_accuracy,
        val_accuracy=res.val_accuracy,
        eb_epoch=res.eb_epoch,
        graph_sparsity=gs,
        weight_sparsity=ws,
        requested_graph_sparsity=None if config.ticket else config.graph_sparsity,
        requested_weight_sparsity=None if config.ticket else config.weight_sparsity,
        warnings=(warning,) if warning else (),
        phases=tuple(res.phases),
        cost=price(inputs),
        cost_paper_order={"train_macs": paper["train_macs"], "infer_macs": paper["infer_macs"],
                          "order": "aggregate-first (GEBT Table 2)"},
        cost_inputs=inputs,
        detector=res.detector or {},
        dataset_checksum=data.checksum,
        config=config,
        wall_s=time.perf_counter() - start,
        data_wall_s=data_wall_s,
        torch_threads=torch.get_num_threads(),  # measured wall time depends on it
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024),
        ticket_path=ticket_path,
        extra=dict(res.extra),
    )
    return record


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj.item() if hasattr(obj, "item") else obj


def _save(config: GraphTrainConfig, data: GraphData, res: MethodResult, gs: float, ws: float) -> Path:
    provenance = {
        "config": config.to_dict(),
        "seed": config.seed,
        "versions": versions(),
        "dataset": data.name,
        "dataset_checksum": data.checksum,
        "eb_epoch": res.eb_epoch,
        "retrain_epochs": res.phases[-1].epochs,
        "graph_sparsity": gs,
        "weight_sparsity": ws,
        "test_accuracy": res.test_accuracy,
        "detector": res.detector,
    }
    ticket = Ticket(res.graph_mask, res.weight_masks, res.ticket_state or res.init_state, res.init_state,
                    res.final_state, provenance)
    return save_ticket(config.out, ticket)  # type: ignore[arg-type]


def format_result(result: dict[str, Any]) -> str:
    """A readable summary (measured vs analytical numbers labelled)."""
    cost = result["cost"]
    lines = [
        f"{result['method']} / {result['model']} on {result['dataset']} (seed {result['seed']})",
        f"  test accuracy {result['test_accuracy']:.4f}   val accuracy {result['val_accuracy']:.4f}",
        f"  early-bird epoch {result['eb_epoch']}   graph sparsity {result['graph_sparsity']:.4f}   "
        f"weight sparsity {result['weight_sparsity']:.4f}",
        "  phases (measured wall time):",
    ]
    for p in result["phases"]:
        lines.append(f"    {p['name']:<18} {p['epochs']:>5} epochs  {p['wall_s']:8.2f} s")
    lines += [
        f"  training  {cost['train_flops'] / 1e9:10.3f} GFLOP  {cost['train_macs'] / 1e9:10.3f} GMAC  (analytical)",
        f"  inference {cost['infer_flops'] / 1e6:10.3f} MFLOP  {cost['infer_macs'] / 1e6:10.3f} MMAC  (analytical; "
        f"paper order {result['cost_paper_order']['infer_macs'] / 1e6:.3f} MMAC)",
        f"  wall {result['wall_s']:.2f} s (data {result.get('data_wall_s', 0.0):.2f} s)   "
        f"peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB  (measured)",
    ]
    lines += [f"  warning: {w}" for w in result.get("warnings", [])]
    if result.get("ticket_path"):
        lines.append(f"  ticket saved to {result['ticket_path']}")
    return "\n".join(lines)
