"""search: cost-aware search (parameter spaces, Optuna studies and storages, budgets, Pareto fronts,
exports and plots). Knows nothing about GCNs: it calls an evaluator that ``codesign`` hands it.
May import ``costmodels`` only.
"""
