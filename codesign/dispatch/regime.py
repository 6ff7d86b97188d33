"""Whether a GNN run on a device is launch-, bandwidth- or compute-bound (``costmodels/launch.py``).

``graph_regimes(model, dataset, device)`` prices one dense training epoch, one GEBT search epoch and
one inference pass of the default architecture with counted kernel launches (``codesign/dispatch/opcount.py``)
and names the largest part of each one's time. On a launch-bound device sparsity saves no time.
"""

from __future__ import annotations


def graph_regimes(model: str, dataset: str, device: str, layers: int = 2, hidden: int = 16,
                  heads: int = 8) -> dict[str, str] | None:
    """``{"train_epoch", "search_epoch", "inference"} -> regime`` on ``device``; None when the
    dataset's size is not known without loading it (only the built-in table and ``sbm:`` specs are)."""
    from costmodels import GRAPHS, GNNSpec, PhaseSpec, load_profile, price_gnn_run
    from costmodels.launch import regime_of

    from .opcount import launches_for_estimate

    stats = GRAPHS.get(dataset.lower())
    if stats is None:
        return None
    profile = load_profile(device)
    train, search, infer = launches_for_estimate(model, layers, heads, False, profile)
    phases = [PhaseSpec("train_epoch", 1, kernel_launches=train and train[0], host_ops=train and train[1]),
              PhaseSpec("search_epoch", 1, trainable_graph=True, mask_update=True,
                        kernel_launches=search and search[0], host_ops=search and search[1])]
    run = price_gnn_run(GNNSpec(model, layers, hidden, heads), stats, phases, device=profile, infer_launches=infer)
    out = {p.name: str(regime_of(p.per_epoch)) for p in run.phases}
    out["inference"] = str(regime_of(run.infer))
    return out
