"""What one step dispatches, counted and traced (``TorchDispatchMode``), and the prices built on it.

* :mod:`.record` — the one dispatch recorder: runs and counts every ATen op (kernel launches, graph ops);
  both counting and tracing below run it;
* :mod:`.opcount` — the ATen ops (and kernel launches) one real training step, search epoch or
  inference of the project's own methods dispatches, tabulated in ``kernel_counts.json``;
* :mod:`.workload` — any torch model's step traced into a cost-model ``Workload`` (a user's model);
  :mod:`.aten_ops` says which ATen operator is which cost-model op;
* :mod:`.byo` — bring your own model: price a ``torch.nn.Module`` on a dataset's shapes;
* :mod:`.regime` — whether a run is launch-, bandwidth- or compute-bound on a device.

May import ``codesign.graphs``, ``codesign.cnn``, ``codesign.runtime`` and ``costmodels``; never
``codesign.cli`` or ``codesign.pipelines``.
"""
