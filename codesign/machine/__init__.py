"""Measuring this machine with the training code's own epochs.

* :mod:`.profiling` — run training/search epochs and inference under a meter (``codesign profile``);
* :mod:`.calibration` — sweep those epochs and fit a device profile to them, or refit a recorded sweep
  (``codesign calibrate``);
* :mod:`.host_runtime` — the allocator, resident memory, the host cost of one modelled op, and the
  measured-host profile ``codesign calibrate`` fits from them;
* :mod:`.opmeasure` — measured counterparts of the op counts: host cost per op here, kernels on a GPU.

May import ``codesign.graphs``, ``codesign.dispatch``, ``codesign.runtime``, ``costmodels``
(meters live in ``costmodels.measure``); never ``codesign.cli`` or ``codesign.pipelines``.
"""
