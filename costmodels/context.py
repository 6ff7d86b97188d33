"""How a device executes a workload: :class:`ExecContext` (derived from a profile's dtype, on-chip buffer and
``[sparsity]`` rules) and the vocabulary its rules use. The operators (``costmodels.ops``) price
themselves in a context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = Any  # float | np.ndarray: every formula broadcasts

SPARSE_FEATURES_MAX_DENSITY = 0.1
"""Input features with at most this fraction of non-zeros are multiplied as CSR where a device computes
with sparse features (``sparse_feature_compute``: codesign's own CPU training path,
``codesign.graphs.models.sparse_features``)."""

EAGER_KINDS = ("gpu", "cpu", "edge")
"""Profile kinds that run PyTorch eager: each dispatched kernel reads its inputs from and writes its output
to memory (an accelerator template runs the model's arithmetic in its own engines instead)."""

WEIGHT_PATTERNS = ("unstructured", "2:4")  # what a weight mask conforms to (measured: codesign.graphs.masks)


def _scalar(value: Array) -> Array:
    """A 0-d array as a float (``np.where`` of scalars); arrays unchanged."""
    return float(value) if np.ndim(value) == 0 else value


@dataclass(frozen=True)
class ExecContext:
    """How a device executes a workload (derived from a profile; defaults = ideal, device-free).

    ``weight_sparsity``: what the hardware exploits for the run's dtype - ``none`` (dense compute; also
    a 2:4 device in a dtype its sparse units do not take, e.g. fp32), ``2:4`` or ``unstructured``.
    Density of weight MACs executed, ``d_e`` (:meth:`exploited`), per GEMM role:

    * ``2:4`` (NVIDIA sparse tensor cores, Ampere and later): the sparse operand must be 2:4 along
      the reduction dimension. ``forward`` (``Y = X Wᵀ``, W the sparse operand): d_e = 1/2 when the
      mask is 2:4 (at most 2 of every 4 consecutive input weights kept: ``weight_pattern == "2:4"``),
      else 1. ``input_grad`` (``dX = dY W``: W is reduced along its other dimension, where the mask
      is not 2:4) and ``weight_grad`` (``dW = dYᵀ X``: both operands dense): 1.
    * ``unstructured`` (an accelerator that skips zero weights): d_e = d in every role (``dW``:
      only the kept weights' gradients are computed, the mask being known - the accelerator
      profile's assumption).

    ``sparse_weight_storage``: weights stored compressed, ``d_e * count * (b + index_bytes)`` bytes
    (forward d_e), never more than dense.
    """

    dtype_bytes: float = 4.0
    index_bytes: float = 8.0
    onchip_bytes: float = 0.0
    weight_sparsity: str = "unstructured"
    sparse_weight_storage: bool = False
    sparse_index_bytes: float = 4.0
    training: bool = True
    sparse_feature_storage: bool = False  # input features stored and read sparse (values + 32-bit indices)
    sparse_feature_compute: bool = False  # products with sparse input features run as sparse-dense products
    eager_messages: bool = False  # a traced model's per-edge message tensors go through memory (EAGER_KINDS)
    mask_bytes: float = 1.0  # a dropout mask kept for backward, per value: CUDA's fused dropout keeps bools; CPU
    # torch keeps its noise in the input's dtype (DeviceProfile.exec_context)

    def feature_compute(self, density: Array) -> Array:
        """True where the input features' product runs sparse: ``sparse_feature_compute`` and at most
        ``SPARSE_FEATURES_MAX_DENSITY`` of them non-zero (elementwise for an array of densities)."""
        return np.logical_and(self.sparse_feature_compute, np.asarray(density) <= SPARSE_FEATURES_MAX_DENSITY)

    def _sparse_bytes(self, density: Array) -> Array:
        return np.minimum(1.0, density * (self.dtype_bytes + 4.0) / self.dtype_bytes)

    def feature_scale(self, density: Array) -> Array:
        """Stored bytes of the input features relative to dense: ``min(1, d_x (b + 4) / b)`` with
        sparse feature storage (each non-zero value with a 32-bit column index; ``d_x`` = the
        measured density of the dataset's features), else 1."""
        if not self.sparse_feature_storage:
            return 1.0 + 0.0 * density
        return self._sparse_bytes(density)

    def feature_read_scale(self, density: Array) -> Array:
        """Bytes a product reads of the input features relative to dense: as :meth:`feature_scale`,
        and the CSR operand's bytes where the product runs sparse (:meth:`feature_compute`; the
        dense copy is still kept, so stored bytes do not drop)."""
        return _scalar(np.where(self.feature_compute(density), self._sparse_bytes(density),
                                self.feature_scale(density)))

    def feature_mac_scale(self, density: Array) -> Array:
        """MACs of a product with the input features relative to dense: ``d_x`` where it runs sparse
        (:meth:`feature_compute`), else 1."""
        return _scalar(np.where(self.feature_compute(density), density, 1.0 + 0.0 * density))

    def exploited(self, d: Array, pattern: str = "unstructured", role: str = "forward") -> Array:
        """Density of weight MACs the hardware actually executes (see the class docstring)."""
        one = np.ones_like(np.asarray(d, dtype=float)) if isinstance(d, np.ndarray) else 1.0
        if self.weight_sparsity == "none":
            return one
        if self.weight_sparsity == "2:4":
            if role != "forward" or pattern != "2:4":
                return one
            return np.maximum(d, 0.5)  # a 2:4 mask keeps at most half: the sparse units run half the MACs
        return d

    def weight_bytes(self, count: Array, d: Array, pattern: str = "unstructured") -> Array:
        """Stored bytes of ``count`` weights at density ``d`` (mask pattern ``pattern``)."""
        dense = count * self.dtype_bytes
        if not self.sparse_weight_storage:
            return dense + 0.0 * d
        return np.minimum(dense, count * self.exploited(d, pattern) * (self.dtype_bytes + self.sparse_index_bytes))
