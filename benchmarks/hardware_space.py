"""Hardware as a design variable: the HyGCN check, grid-pricing speed, trace-model speed and traffic.

1. HyGCN check: area and power of ``profiles/hygcn.toml`` (HyGCN's Table 6 configuration) from
   the technology model, against the published 7.8 mm^2 / 6.7 W and the Table 7 breakdown.
2. HyGCN / V100 inference speed-up of a GCN with HyGCN's layer settings (aggregate first, 128
   hidden, 2 layers) on Cora, CiteSeer, PubMed, beside the published 6.5x average.
3. Hardware points priced per second for one ticket (a GEBT-like run on Cora: search + retrain +
   inference) over a numpy grid of gcn-accelerator knobs (``costmodels.hwgrid``).
4. Trace model speed: edges per second of the exact window schedule on a synthetic 4 M-edge graph.
5. DRAM bytes of the aggregation gathers against buffer size for Cora and CiteSeer, dense and
   gebt-pruned (per-layer edge lists of a real ticket), in each node order, window and LRU.

Run: ``python benchmarks/hardware_space.py [--skip-gebt] [--ticket-dir runs/benchmarks/hardware_space]``.
GEBT tickets are trained once (about a minute each on 2 quiet cores) and reused from the ticket dir.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from costmodels import GRAPHS, GNNSpec, PhaseSpec, load_profile
from costmodels.analytical import price_workload
from costmodels.hwgrid import grid, price_run_grid
from costmodels.runs import Phase, gnn_phase_workload
from costmodels.templates import configure
from costmodels.traffic import NODE_ORDERS, aggregation_traffic, node_order
from costmodels.workloads import gnn_workload

PUBLISHED = {"area_mm2": 7.8, "power_w": 6.7, "speedup_v100_avg": 6.5}
# HyGCN Table 7 (% of power / % of area), grouped as the template's components (hardware.md section 1)
PUBLISHED_BREAKDOWN = {
    "combination compute": (60.52, 42.96),
    "aggregation compute": (3.85, 1.43),
    "buffers (all, incl. 16 MB coordinator)": (14.4 + 17.66 + 2.37, 15.13 + 34.64 + 5.41),
    "control": (1.2, 0.45),
}
BUFFERS_KB = (8, 32, 128, 512)


def hygcn_check() -> dict[str, float]:
    point = configure(load_profile("hygcn"))[1]
    a, p = point.area_breakdown_mm2, point.power_breakdown_w
    mine = {
        "combination compute": (p["combination_compute"], a["combination_compute"]),
        "aggregation compute": (p["aggregation_compute"], a["aggregation_compute"]),
        "buffers (all, incl. 16 MB coordinator)": (p["combination_buffers"] + p["aggregation_buffers"], a["buffers"]),
        "control": (0.0, 0.0),
    }
    rows = [{"component": k, "model W": w, "model %W": 100 * w / point.power_w,
             "published %W": PUBLISHED_BREAKDOWN[k][0], "model mm2": mm, "model %area": 100 * mm / point.area_mm2,
             "published %area": PUBLISHED_BREAKDOWN[k][1]} for k, (w, mm) in mine.items()]
    rows.append({"component": "total", "model W": point.power_w, "model %W": 100.0, "published %W": 100.0,
                 "model mm2": point.area_mm2, "model %area": 100.0, "published %area": 100.0})
    print("== 1. HyGCN (Table 6 configuration) from the technology model ==")
    print(pd.DataFrame(rows).to_string(index=False, float_format="{:.2f}".format))
    print(f"area {point.area_mm2:.2f} mm^2 vs published {PUBLISHED['area_mm2']} "
          f"({100 * (point.area_mm2 / PUBLISHED['area_mm2'] - 1):+.0f}%); power {point.power_w:.2f} W vs "
          f"{PUBLISHED['power_w']} ({100 * (point.power_w / PUBLISHED['power_w'] - 1):+.0f}%)  [estimate]\n")
    return {"hygcn_area_mm2": point.area_mm2, "hygcn_power_w": point.power_w}


def speedups() -> dict[str, float]:
    """HyGCN / V100 inference time, the V100 priced as everywhere else: its launch term from the counted
    ATen ops of one inference of the project's GCN (codesign/dispatch/opcount.py, ``counts_apply``), HyGCN with
    the launch formula of an accelerator (no framework) and sparse feature storage (its profile flag)."""
    from dataclasses import replace

    from codesign.dispatch.opcount import counts_apply, inference_launches, target_for

    hygcn, v100 = load_profile("hygcn"), load_profile("v100")
    kernels, ops = inference_launches({"model": "gcn", "layers": 2, "heads": 8}, target_for(v100.kind))
    assert counts_apply(v100)
    rows, out = [], {}
    for ds in ("cora", "citeseer", "pubmed"):
        wl = gnn_workload(GNNSpec("gcn", 2, 128), GRAPHS[ds], aggregation_order="aggregate-first", training=False)
        th_cost = price_workload(wl, hygcn, training=False)
        tv_cost = price_workload(replace(wl, kernel_launches=float(kernels), host_ops=float(ops)), v100,
                                 training=False)
        th, tv = float(th_cost.latency_s), float(tv_cost.latency_s)
        out[ds] = tv / th
        rows.append({"dataset": ds, "hygcn latency us": th * 1e6, "v100 latency us": tv * 1e6,
                     "v100 launch us": float(tv_cost.launch_s) * 1e6,
                     "v100 roofline us": float(tv_cost.compute_s + tv_cost.bandwidth_s) * 1e6,
                     "speed-up": tv / th, "published (avg)": PUBLISHED["speedup_v100_avg"]})
    print("== 2. HyGCN / V100 inference speed-up, GCN 2 x 128 aggregate-first (analytical estimate) ==")
    print(pd.DataFrame(rows).to_string(index=False, float_format="{:.2f}".format))
    print(f"V100: counted launches of one inference ({kernels} kernels, {ops} framework ops; "
          f"codesign/dispatch/kernel_counts.json), as every other V100 price. What remains against the published 6.5x: "
          "(1) ops.Aggregate prices 5 dense N x F passes (PyTorch's out = base + A h) on HyGCN too, whose "
          "aggregation engine writes each output row once: on Cora's 1433-wide first layer that is almost all "
          "of HyGCN's time (bandwidth-bound aggregation); (2) 6.5x is an average over GCN, GraphSAGE (sampled, "
          "max) and GIN on 5+ datasets incl. Reddit, PyG measured on a real V100 against their simulator; here "
          "one model, an analytical V100 and no sampling; (3) PubMed's feature density is not measured here "
          "(priced dense)\n")
    return out


def points_per_second(repeats: int = 3) -> tuple[float, int]:
    spec, g = GNNSpec("gcn"), GRAPHS["cora"]
    phases = [Phase(p.name, p.epochs, gnn_phase_workload(spec, g, p))
              for p in (PhaseSpec("search", 20, 1, 1, True, True, graph_copies=2),
                        PhaseSpec("retrain", 100, 0.7, 0.5))]
    infer = gnn_workload(spec, g, graph_density=0.7, weight_density=0.5, training=False)
    space = {"pes": np.geomspace(256, 8192, 32).round(), "buffer_mb": np.geomspace(0.5, 32, 32),
             "dram_gbs": np.geomspace(64, 512, 16), "clock_ghz": np.linspace(0.5, 2.0, 8)}
    points = grid(space)
    n = len(points["pes"])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = price_run_grid(phases, infer, load_profile("gcn-accelerator"), points)
        best = min(best, time.perf_counter() - t0)
    ok = out["area_mm2"] <= 8.0
    i = int(np.argmin(np.where(ok, out["infer_energy_j"], np.inf)))
    print(f"== 3. grid pricing: {n} gcn-accelerator points (4 knobs) for one Cora ticket in {best:.3f} s "
          f"= {n / best:,.0f} points/s ==")
    print(f"cheapest inference energy under 8 mm^2: {out['infer_energy_j'][i] * 1e6:.1f} uJ at "
          + ", ".join(f"{k}={points[k][i]:.3g}" for k in space)
          + f" ({out['area_mm2'][i]:.2f} mm^2, {out['power_w'][i]:.2f} W)\n")
    return n / best, n


def trace_speed(repeats: int = 3) -> dict[str, float]:
    rng = np.random.default_rng(0)
    n, e = 200_000, 4_000_000
    dst = np.sort(rng.integers(0, n, e))
    local = rng.random(e) < 0.8  # 80% of edges within +-2000 ids, the rest uniform
    src = np.where(local, (dst + rng.integers(-2000, 2000, e)) % n, rng.integers(0, n, e))
    perm = node_order(src, dst, n, "natural")
    rates = {}
    for policy, reps in (("window", repeats), ("lru", 1)):
        m = e if policy == "window" else 500_000
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            aggregation_traffic(src[:m], dst[:m], n, 16, 4e6, policy=policy, perm=perm)
            best = min(best, time.perf_counter() - t0)
        rates[policy] = (m + n) / best  # messages incl. self-loops
    print(f"== 4. trace model: window schedule {rates['window']:,.0f} edges/s ({e + n:,} messages, 4 MB buffer, "
          f"F=16); LRU (reuse distances) {rates['lru']:,.0f} edges/s ==\n")
    return rates


def _ticket_edges(ds: str, ticket_dir: Path, graph_sparsity: float) -> tuple[list, object]:
    from codesign.graphs.config import GraphTrainConfig
    from codesign.graphs.data import load_dataset
    from codesign.graphs.pipeline import train
    from codesign.graphs.ticket import load_ticket

    data = load_dataset(ds)
    folder = ticket_dir / f"gebt-{ds}-pg{graph_sparsity}"
    if not (folder / "ticket.pt").is_file():
        print(f"training a gebt ticket on {ds} (p_g={graph_sparsity}) into {folder} ...", flush=True)
        train(GraphTrainConfig(model="gcn", dataset=ds, method="gebt", graph_sparsity=graph_sparsity,
                               weight_sparsity=0.5, out=str(folder)), progress=False)
    ticket = load_ticket(folder, data)
    layers = data.layer_edges(ticket.graph_mask)
    layers = layers if isinstance(layers, list) else [layers, layers]
    return [(ei[0].numpy(), ei[1].numpy()) for ei in layers], data


def traffic_table(ticket_dir: Path | None) -> pd.DataFrame:
    from codesign.graphs.data import load_dataset

    rows = []
    for ds in ("cora", "citeseer"):
        data = load_dataset(ds)
        widths = [16, data.num_classes]  # GCNConv transform-first: layer l aggregates its output width
        dense = [(data.edge_index[0].numpy(), data.edge_index[1].numpy())] * 2
        graphs = [("dense", dense)]
        if ticket_dir is not None:
            graphs.append(("gebt p_g=0.5 (per-layer)", _ticket_edges(ds, ticket_dir, 0.5)[0]))
        for label, layers in graphs:
            for order in NODE_ORDERS:
                s0, d0 = layers[0]
                perm = node_order(s0, d0, data.num_nodes, order)  # one order per graph (from layer 1's edges)
                row = {"dataset": ds, "graph": label, "edges/layer": "/".join(str(len(s)) for s, _ in layers),
                       "order": order}
                for kb in BUFFERS_KB:
                    for policy in ("window", "lru"):
                        total = sum(aggregation_traffic(s, d, data.num_nodes, f, kb * 1024, policy=policy,
                                                        perm=perm).gather_bytes
                                    for (s, d), f in zip(layers, widths))
                        row[f"{kb}KB {policy}"] = total / 1e3
                closed = sum(aggregation_traffic(s, d, data.num_nodes, f, BUFFERS_KB[0] * 1024).closed_form_gather_bytes
                             for (s, d), f in zip(layers, widths))
                row[f"closed form {BUFFERS_KB[0]}KB"] = closed / 1e3
                rows.append(row)
    table = pd.DataFrame(rows)
    print("== 5. aggregation gather traffic [kB] of a 2-layer GCN (16 hidden) vs on-chip buffer, exact traces ==")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False, float_format="{:.0f}".format))
    print("window = the template's window schedule; lru = LRU cache of source rows; closed form = "
          "ops.Aggregate (one row per message unless the whole table fits)\n")
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-gebt", action="store_true", help="dense graphs only in the traffic table")
    ap.add_argument("--ticket-dir", default="runs/benchmarks/hardware_space",
                    help="where gebt tickets are trained once and reused")
    args = ap.parse_args()
    headline: dict[str, object] = {}
    headline.update(hygcn_check())
    sp = speedups()
    pps, n = points_per_second()
    rates = trace_speed()
    table = traffic_table(None if args.skip_gebt else Path(args.ticket_dir))
    cora = table[(table["dataset"] == "cora") & (table["graph"] == "dense")].set_index("order")
    headline.update({
        "hardware_points_per_second": pps, "hardware_grid_points": n,
        "trace_edges_per_second": rates["window"], "trace_lru_edges_per_second": rates["lru"],
        "hygcn_v100_speedup": sp, "hygcn_v100_speedup_published_avg": PUBLISHED["speedup_v100_avg"],
        "cora_dense_32KB_window_kB": {o: float(cora.loc[o, "32KB window"]) for o in NODE_ORDERS},
        "source": "estimates (technology model, analytical roofline, exact traces); timings measured here",
    })
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
