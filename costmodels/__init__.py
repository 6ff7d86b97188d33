"""costmodels: what things cost.

Workload descriptions, analytical FLOP / byte / memory / latency / energy models, device profiles
(and, with the measurement work, meters and calibration). The analytical core is plain Python +
numpy - no torch - and imports nothing else of ours.
"""

from .analytical import FLOP_CONVENTION, MAC_CONVENTION, Cost, breakdown, price_workload
from .context import ExecContext
from .errors import CodesignError, ProfileError, UnknownNameError, check_fraction
from .ops import Aggregate, Conv2d, EdgeAttention, Elementwise, Gemm, OpCost
from .profiles import DeviceProfile, list_profiles, load_profile
from .runs import Phase, PhaseCost, PhaseSpec, RunCost, gnn_phase_workload, price_gnn_run, price_run
from .stats import GRAPHS, IMAGES, GraphStats, ImageStats, graph_stats, image_stats
from .workloads import GNN_MODELS, GNNSpec, Workload, gnn_workload, mask_update_ops, weight_count

__all__ = [
    "FLOP_CONVENTION", "MAC_CONVENTION", "Cost", "breakdown", "price_workload",
    "CodesignError", "ProfileError", "UnknownNameError", "check_fraction",
    "Aggregate", "Conv2d", "EdgeAttention", "Elementwise", "ExecContext", "Gemm", "OpCost",
    "DeviceProfile", "list_profiles", "load_profile",
    "Phase", "PhaseCost", "PhaseSpec", "RunCost", "gnn_phase_workload", "price_gnn_run", "price_run",
    "GRAPHS", "IMAGES", "GraphStats", "ImageStats", "graph_stats", "image_stats",
    "GNN_MODELS", "GNNSpec", "Workload", "gnn_workload", "mask_update_ops", "weight_count",
]
