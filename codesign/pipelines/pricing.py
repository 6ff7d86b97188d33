"""Device choice and cost flattening for the search.

The run itself is re-priced by ``codesign.graphs.costing.price(cost_inputs, device)``
(``costmodels.price_gnn_run`` on the run's recorded, device-independent inputs: train cost =
Σ_phases epochs × per-epoch cost, infer cost = one forward on the ticket). Estimated by the
analytical model, never measured. Here: which profile ``--device`` means (exactly the one named;
``calibrated/<name>`` for a calibrated copy) and the flat, scalar view of a ``RunCost`` dict that a
trial stores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from costmodels import RunCost
from costmodels.errors import CodesignError
from costmodels.profiles import ResolvedProfile, resolve_profile
from search.budget import Metric


def resolve_device(name: str) -> ResolvedProfile:
    """The profile ``--device name`` means, exactly (``costmodels.profiles.resolve_profile``): ``h100`` is
    the datasheet, ``calibrated/h100`` the calibrated copy; its kind and file go into the search's record."""
    return resolve_profile(name)


def flat_costs(run: RunCost | Mapping[str, Any]) -> dict[str, Any]:
    """The scalar entries of ``RunCost.to_dict()`` (phases flattened as ``phase.<name>.<key>``)."""
    out: dict[str, Any] = {}
    for k, v in (run.to_dict() if isinstance(run, RunCost) else run).items():
        if k == "phases":
            for p in v:
                for pk, pv in p.items():
                    if pk != "name" and (isinstance(pv, (int, float)) or pv is None):
                        out[f"phase.{p['name']}.{pk}"] = _num(pv)
        elif isinstance(v, (int, float, str)) or v is None:
            out[k] = _num(v)
    return out


def _num(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


MEASURED = {
    # metric -> how this machine measures it for one training run
    "train-latency": "sum of the measured wall time of every training phase (time.perf_counter)",
}


def check_measurable(metric: Metric) -> None:
    """``--measured`` is only possible where this machine measures the metric; say so up front."""
    if metric.name not in MEASURED:
        raise CodesignError(
            f"--measured: {metric.name} is not measured on this machine (measured: {', '.join(MEASURED)}; "
            "no RAPL/NVML energy here); drop --measured to price runs on --device with the cost model"
        )


def measured_cost(result: Mapping[str, Any], metric: Metric) -> float:
    check_measurable(metric)
    return float(sum(p["wall_s"] for p in result["phases"]))


def trial_cost(result: Mapping[str, Any], metric: Metric, device: str | None, measured: bool,
               price: Callable[[Mapping[str, Any], str], Any]) -> tuple[float, dict[str, Any]]:
    """The search objective's cost of one finished run, and every cost a trial stores.

    ``measured``: this machine's measurement (see ``MEASURED``); otherwise ``price(cost_inputs,
    device)`` re-prices the run on the device profile with the analytical model.
    """
    if measured:
        cost = measured_cost(result, metric)
        return cost, {metric.cost_key: cost, "source": MEASURED[metric.name],
                      "peak_rss_bytes": result.get("peak_rss_bytes")}
    if device is None:
        raise CodesignError("no device profile to price the run on; pass --device NAME (see `codesign devices`) "
                            "or --measured")
    costs = _priced(result["cost_inputs"], device, price)
    value = costs.get(metric.cost_key)
    if value is None:
        raise CodesignError(f"the cost model gave no {metric.cost_key} on {device}")
    return float(value), costs


def _priced(inputs: Mapping[str, Any], device: str | None,
            price: Callable[[Mapping[str, Any], str], Any]) -> dict[str, Any]:
    if device is None:
        raise CodesignError("no --device to price runs on; give --device NAME (see `codesign devices`) or --measured")
    return flat_costs(price(inputs, device))


def priced_value(inputs: Mapping[str, Any], metric: Metric, device: str | None,
                 price: Callable[[Mapping[str, Any], str], Any] | None = None) -> float:
    """The metric's cost of a planned run's ``cost_inputs`` on ``device`` (estimated, as for a finished run);
    ``price`` defaults to the graph runs' ``codesign.graphs.costing.price``."""
    if price is None:
        from codesign.graphs.costing import price as graph_price

        price = graph_price
    value = _priced(inputs, device, price).get(metric.cost_key)
    if value is None:
        raise CodesignError(f"the cost model gave no {metric.cost_key} on {device}")
    return float(value)
