"""What every run leans on, whatever it trains: plumbing with no model in it.

* :mod:`.data_root` — where datasets are read from and processed files written;
* :mod:`.fetch` — the loaders' one way to the network, and file digests;
* :mod:`.threads` — how many torch threads a run takes;
* :mod:`.torch_device` — which torch device a run uses (``--run-on``);
* :mod:`.optim` — the one Adam of every training loop;
* :mod:`.outputs` — what a run leaves in its ``--out`` folder, and clearing an earlier run's;
* :mod:`.result_checks` — checks on a finished run (reached sparsity, chance-level accuracy);
* :mod:`.versions` — the library versions a result records;
* :mod:`.startup` — how a `codesign` process imports torch (collector paused, then frozen).

May import ``costmodels.errors`` / ``costmodels.atomic`` and torch only: nothing else of the project.
"""
