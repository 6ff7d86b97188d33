"""Pipelines that wire training + cost + search, for the CLI handlers (never imported at ``--help`` time).

``graph_search`` / ``cnn_search`` (the evaluators ``codesign search`` hands to ``search``, with
``graph_bounds`` / ``cnn_bounds``: a configuration's cost interval before training),
``hardware_pricing`` (devices and hardware knobs searched jointly), ``pricing`` (device lookup and
flat costs), ``traffic_report`` (``estimate --node-order``: aggregation traffic from the edge list).

Take typed options (dataclasses), never the parsed command line itself. May import ``codesign.graphs``,
``codesign.cnn``, ``codesign.dispatch``, ``codesign.runtime``, ``search`` and ``costmodels``; never
``codesign.cli``.
"""
