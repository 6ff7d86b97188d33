"""Graph early-bird tickets: datasets, GNN models, ticket methods, the one training loop, and a run.

``data`` / ``download`` / ``planetoid_io`` / ``user_graph`` / ``synthetic`` (Planetoid, Actor, PubMed,
your own file, stochastic block graphs), ``models`` (GCN, GAT, GIN, GraphSAGE with edge and weight
masks), ``masks`` / ``detector`` / ``sparsify`` / ``reorder`` (ticket mechanics), ``methods`` (one
module per method over ``methods.common``'s loop), ``config`` (``GraphTrainConfig``: every default),
``pipeline`` (``train(config) -> result``), ``costing`` (the analytical price of a finished run),
``ticket`` / ``export`` (saving a ticket; handing it back to PyG), ``epoch_flops`` (work size for the
thread policy).

May import ``codesign.runtime``, ``codesign.dispatch`` (the counted launches ``costing`` prices with)
and ``costmodels``; never ``codesign.cli`` or ``codesign.pipelines``.
"""
