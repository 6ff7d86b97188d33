"""Pruned CNNs: early-bird tickets by network slimming, spline early-bird detection, spline pruning.

Modules (torch is imported only by the ones that train):
``data`` (CIFAR pickles, IDX, synthetic), ``models`` (VGG, pre-activation ResNet, ResNet-18 with
explicit channel counts), ``prune`` (masks, physical channel removal), ``detectors`` (EB mask and
spline partition-code detectors), ``spline`` (spline redundancy scores), ``training`` (SGD loop,
BN-L1), ``methods`` (one loop per method), ``cost`` (analytical pricing), ``pipeline``
(``train(CNNTrainConfig) -> dict``, ``format_result``).

May import ``codesign.runtime``, ``codesign.graphs`` (the search-stopped signal) and ``costmodels``;
never ``codesign.cli`` or ``codesign.pipelines``.
"""
