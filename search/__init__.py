"""search: cost-aware search (parameter spaces, Optuna studies and storages, budgets, Pareto fronts,
exports and plots). Knows nothing about GCNs: it calls an evaluator that ``codesign`` hands it.
May import ``costmodels`` only. Optuna, pandas and matplotlib are imported lazily where possible.
"""

from costmodels.errors import CodesignError

from .budget import METRICS, Budget, Metric, format_si, parse_budget, parse_metric
from .config import Evaluation, EvaluationError, Evaluator, SearchConfig
from .pareto import best_feasible, dominates, pareto_indices, pareto_indices_brute
from .screening import CostInterval, OverBudget, Predictor
from .space import Param, SearchSpace
from .study import SearchProgress, open_study, run_search

__all__ = [
    "METRICS", "Budget", "CodesignError", "CostInterval", "Evaluation", "EvaluationError", "Evaluator", "Metric",
    "OverBudget", "Param", "Predictor",
    "SearchConfig", "SearchProgress", "SearchSpace", "best_feasible", "dominates", "format_si", "open_study",
    "parse_budget", "parse_metric", "pareto_indices", "pareto_indices_brute", "run_search",
]
