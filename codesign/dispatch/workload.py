"""Turn one run of any torch model into a cost-model :class:`~costmodels.Workload` (torch dispatch).

:func:`trace_workload` runs ``fn()`` (a forward pass, plus the loss when training) once on real
tensors under the one dispatch recorder (``codesign.dispatch.record``: the op and launch counts of
built-ins and traced models alike) and maps every ATen operator it sees to a cost-model op:

* ``mm``/``addmm``/``bmm``/``baddbmm`` and the vector products (``mv``, ``dot``, ``addmv``, ``addr``, ``addbmm``)
  -> :class:`Gemm` (FLOPs as ``FlopCounterMode`` counts them; an
  ``addmm`` bias is a separate elementwise op), ``convolution`` -> :class:`Conv2d` (2-D) or the GEMM
  with the same multiply-adds (other ranks, transposed).
* Sparse aggregation -> :class:`Aggregate` with nnz-aware bytes: ``scatter_add``/``scatter_reduce``/
  ``index_add``/``segment_reduce`` of gathered per-edge rows ``[E, F]`` into ``[N, F]`` (PyG's message
  passing) and sparse-dense products (``torch.sparse.mm`` on COO/CSR: nnz = stored entries). FLOPs
  follow the SpMM ``A @ H`` the aggregation computes (2 per message element, weighted or not), so
  PyG's scatter path and a sparse product cost the same. The gather that built the rows
  (``index_select``/``index`` of ``[N, F]`` by an index of length ``E``), the zeros the scatter writes
  into, the elementwise ops on the rows (``alpha * x_j``) and on narrower per-edge values (GAT's
  attention scores) are fused into that kernel: their FLOPs are kept (the scaling multiply is the
  SpMM's own), their DRAM passes are not. A scatter of values that are not gathered rows (degrees:
  ones by target) reads one index and the values: an aggregation-class elementwise op.
* Pointwise ops (ATen's ``pointwise`` tag), copies, reductions and softmaxes -> :class:`Elementwise`
  (1 FLOP per element, copies 0; bytes = inputs read + outputs written). Folded as one kernel
  would run them: dropout as CPU torch decomposes it (``empty_like``, ``bernoulli_``, ``div_``, ``mul``:
  one op, 2 FLOPs, a 1-byte mask saved), ``sum / count`` after a sum aggregation (the aggregation's
  mean), ``(a * b).sum(dim)`` (a dot product: the product is not written), and a multiplication by a
  one-element tensor feeding a pointwise op (GIN's ``(1 + eps) * x``: that op's scalar argument).
  Views and metadata ops cost nothing.
* Edge-list manipulation (integer/bool results computed from ``edge_index`` and constants alone: self-loop
  insertion, edge masks) is graph preprocessing, priced once in ``Traced.preprocessing``, not per pass.
* Bilinear, distances, grid sampling, FFTs, attention's fast paths: :mod:`codesign.dispatch.compound_ops`.
* Any other operator is **unknown**: listed by name and count in ``Traced.unknown`` and priced as
  memory traffic only (inputs read, outputs written, 0 FLOPs); never dropped silently.

Only the forward is run; the cost model adds backward (for tensors that require grad: inputs of a
GEMM that need ``dX``, parameters that need ``dW``) and one optimizer step over the model's
parameters, exactly as for the built-in workloads. Parameters not already priced by a GEMM/conv
weight are carried by a zero-cost ``parameters`` op so the optimizer and memory terms see them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch.utils.weak import WeakTensorKeyDictionary

from costmodels import Aggregate, Conv2d, Elementwise, Gemm, Workload
from costmodels.ops import RNG_STEPS_PER_DRAW

from .aten_ops import (
    ADDMMS,
    ATTENTIONS,
    BATCH_NORMS,
    CREATES,
    DROPOUT_FLOPS,
    FREE,
    GATHERS,
    GEMMS,
    LOOKUPS,
    MOVES,
    REDUCTIONS,
    RNN_LAYERS,
    SCATTERS,
    SPARSE_REDUCES,
    VALUE_FLOPS,
    Fused,
    NoParamGemm,
    Parameters,
    density,
    lookup_op,
    rnn_layer_ops,
    value_count,
    weight_sparsity,
)
from .compound_ops import COMPOUNDS, attention_math, compound_ops
from .opcount import StepCounts
from .record import RANDOM_PREFIXES, DispatchRecorder, numeric

aten = torch.ops.aten

@dataclass(frozen=True)
class Traced:
    """A traced :class:`Workload` plus what the trace saw: ``op_counts`` (ATen name -> calls) and
    ``unknown`` (operators it could not classify -> calls; priced as memory traffic only)."""

    workload: Workload
    op_counts: dict[str, int]
    unknown: dict[str, int]
    parameters: int
    preprocessing: Workload | None = None
    counts: StepCounts | None = None  # the model's own dispatched ops per step (launch term), when counted
    preprocessing_counts: tuple[int, int] = (0, 0)  # (kernels, ops) of the preprocessing in one forward

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.workload.name, "ops": len(self.workload.ops), "parameters": self.parameters,
                "unknown_ops": dict(self.unknown), "aten_op_counts": dict(self.op_counts),
                "preprocessing_kernels_ops": list(self.preprocessing_counts)}


@dataclass
class _Info:
    grad: bool = False  # requires grad (a parameter, or computed from one / from a grad input)
    param: bool = False  # a trainable parameter or a view of one
    edges: int = 0  # > 0: per-edge rows [E, ...] (gathered messages), E = edges
    edge_dim: int = 0  # the dimension that runs over the edges ([K, E, F] in ARMAConv: 1)
    width: int = 0  # values per edge row
    chain: list[int] = field(default_factory=list)  # op slots to absorb into the aggregation
    coef: list[int] = field(default_factory=list)  # op slots of the narrower per-edge values (computed on the fly)
    fresh: int = -1  # op slot of the creation op that made this tensor (zeros to scatter into)
    static: bool = False  # computed from the graph structure and constants alone (same every pass)
    product: int = -1  # op slot of the multiplication that produced this tensor (a dot product with a sum)
    mask: list[int] = field(default_factory=list)  # op slots that drew a dropout mask (bernoulli, scale)
    agg: int = -1  # op slot of the aggregation that produced this tensor
    scale: int = -1  # op slot of a multiplication by a one-element tensor (folded into its consumer)
    features: float = 0.0  # > 0: the resident input features (or rows gathered from them): their density


class _Recorder(DispatchRecorder):
    """The one dispatch recorder (``record.DispatchRecorder``: op and launch counts, graph ops), classifying
    every operation it sees into cost-model ops (:meth:`on_op`)."""

    def __init__(self, params: list[torch.Tensor], grad_inputs: list[torch.Tensor],
                 features: torch.Tensor | None = None) -> None:
        super().__init__()
        self.info: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        for p in params:
            self.info[p] = _Info(grad=True, param=True)
        for t in grad_inputs:
            self.info[t] = _Info(grad=True)
        if features is not None:  # read as stored: sparse on a device with sparse feature storage
            self.info[features] = _Info(features=density(features))
        self.slots: list[Any] = []  # cost-model ops (None once absorbed)
        self.pre: set[int] = set()  # slots computed from the graph structure alone
        self.weighting: set[int] = set()  # slots that scale messages by an edge value (the SpMM multiply)
        self.unknown: Counter[str] = Counter()
        self.static_op = False  # the operation being classified is a graph op (priced once per graph)

    def _get(self, t: Any) -> _Info:
        if not isinstance(t, torch.Tensor):
            return _Info(static=True)
        return self.info.get(t, _Info(static=not numeric(t)))

    def _add(self, op: Any) -> int:
        self.slots.append(op)
        if self.static_op:
            self.pre.add(len(self.slots) - 1)
        return len(self.slots) - 1

    def on_op(self, func: Any, name: str, args: tuple, kwargs: dict, out: Any, flat_in: list[torch.Tensor],
              flat_out: list[torch.Tensor], static: bool, graph_op: bool) -> None:
        """Classify one operation (already run and counted by the recorder) into cost-model ops."""
        floats_in = [a for a in flat_in if a.is_floating_point()]
        grad = any(self._get(a).grad for a in floats_in)
        result = _Info(grad=grad and any(o.is_floating_point() for o in flat_out))
        random = name.startswith(RANDOM_PREFIXES)
        # edge-list manipulation (integer/bool results computed from the graph alone: self-loop insertion,
        # masks): graph preprocessing, done once per graph; numeric per-edge values stay per pass
        # (record.graph_only, decided by the recorder for the counts of built-ins and traced models alike)
        result.static, self.static_op = static, graph_op
        for a in flat_in:  # a folded scalar multiplication is absorbed by the pointwise op consuming it
            scale = self._get(a).scale
            if scale >= 0 and torch.Tag.pointwise in getattr(func, "tags", ()) and not self.static_op:
                self.slots[scale] = None
        if name in FREE or getattr(func, "is_view", False):
            src = self._get(args[0]) if args else _Info()
            result = replace(src, chain=list(src.chain), coef=list(src.coef))
            if src.edges and flat_out and flat_out[0].dim() and (
                    src.edge_dim >= flat_out[0].dim() or flat_out[0].size(src.edge_dim) != src.edges):
                result.edges = 0
        elif name in GEMMS or name == "convolution":
            self._matmul(name, args, flat_out, result)
        elif name in SPARSE_REDUCES:
            self._sparse_product(name, args[0], args[1], str(args[2]) if len(args) > 2 else "sum")
        elif name in ATTENTIONS:
            self._attention(name, args[0], args[1], args[2], result.grad)
        elif name in RNN_LAYERS:  # nn.LSTM's fused CPU kernel: its two products, gates and cell update
            for op in rnn_layer_ops(args, self._get(args[0]).grad, self._get(args[1]).param, self._get(args[2]).param,
                                    result.grad):
                self._add(op)
        elif name in COMPOUNDS:  # bilinear, distances, grid sampling, FFTs, fused attention fast paths
            for op in compound_ops(name, args, flat_out, self._get, result.grad):
                self._add(op)
        elif name in LOOKUPS:  # an embedding table: the looked-up rows are read, not the whole table
            self._add(lookup_op(name, args[0], args[1], flat_out[0], result.grad))
        elif name in VALUE_FLOPS:
            self._add(self._elementwise(name, flat_in[:1], flat_out[:1], VALUE_FLOPS[name], result.grad))
        elif name in SCATTERS:
            result.agg = self._scatter(name, args, kwargs, flat_out)
        elif name in GATHERS and self._gather(name, args, flat_out, result):
            pass
        elif name in CREATES:
            result.fresh = self._add(self._elementwise(name, [], flat_out, 0.0, False))
            result.static, result.grad = not random, False
        elif name in BATCH_NORMS:
            training = name != "_native_batch_norm_legit_no_training" and len(args) > 5 and bool(args[5])
            x = args[0]
            self._add(Elementwise(f"aten.{name}", float(x.numel()), 7.0 if training else 2.0, 9.0,
                                  reads=2.0 if training else 1.0, writes=1.0,
                                  saved_values=1.0 if result.grad else 0.0, needs_backward=result.grad))
        elif name == "div" and self._mean(args):
            pass
        elif name.startswith("bernoulli") or (name in ("div_", "div", "mul", "mul_") and self._dropout(
                name, flat_in, flat_out, result)):
            if name.startswith("bernoulli"):
                fresh = self._get(args[0]).fresh
                result.mask = [fresh] if fresh >= 0 else []
                draw = replace(self._elementwise(name, [], flat_out, 1.0, False), serial_per_elem=RNG_STEPS_PER_DRAW)
                result.mask.append(self._add(draw))  # a random draw per value: serial work, as ops.py prices it
        elif name in MOVES or name in REDUCTIONS or torch.Tag.pointwise in getattr(func, "tags", ()):
            flops = 0.0 if name in MOVES and name not in DROPOUT_FLOPS else DROPOUT_FLOPS.get(name, 1.0)
            if name in REDUCTIONS:
                flops = 1.0
            slot = self._add(self._elementwise(name, flat_in, flat_out, flops, result.grad))
            self._message(name, args, flat_out, result, slot)
            if name == "mul":
                result.product = slot
            if name == "sum" and args and self._get(args[0]).product >= 0:
                self._dot(self._get(args[0]).product, slot)
            if name in ("mul", "div") and len(flat_in) == 2 and min(a.numel() for a in flat_in) == 1:
                result.scale = slot
        else:
            self.unknown[name] += 1
            self._add(self._elementwise(f"unknown.{name}", flat_in, flat_out, 0.0, result.grad))
        if name == "mul" and len(flat_in) == 2 and flat_out and sum(self._get(a).param for a in flat_in) == 1 and all(
                self._get(a).param or not self._get(a).grad for a in flat_in) and all(
                a.shape == flat_out[0].shape for a in flat_in):
            result.param = True  # a masked weight (torch.nn.utils.prune: weight_orig * weight_mask) is the weight
        for o in flat_out:
            self.info[o] = result

    # --- classification helpers -------------------------------------------------------------------
    def _elementwise(self, name: str, ins: list[torch.Tensor], outs: list[torch.Tensor], flops: float,
                     grad: bool) -> Elementwise:
        sizes = [float(t.numel()) for t in (ins if name in REDUCTIONS else outs) if t.layout == torch.strided]
        numel = max(sizes or [1.0])
        per = max(numel, 1.0)  # zero-element tensors (BatchNorm's empty reserve buffers): no traffic, no FLOPs
        reads = sum(value_count(a) for a in ins) / per
        writes = sum(value_count(o) for o in outs) / per
        saved = 1.0 if grad and flops else 0.0
        return Elementwise(f"aten.{name}", numel, flops, flops, reads=reads, writes=writes,
                           saved_values=saved, needs_backward=grad)

    def _dropout(self, name: str, ins: list[torch.Tensor], outs: list[torch.Tensor], result: _Info) -> bool:
        """Dropout as CPU torch runs it (``empty_like``, ``bernoulli_``, ``div_`` by 1-p, ``mul``): the
        built-in models' one dropout op (2 FLOPs, read + write, a mask kept for backward, one random
        draw per value: ``ops.RNG_STEPS_PER_DRAW`` serial steps)."""
        masks = [a for a in ins if self._get(a).mask]
        if not masks:
            return False
        chain = self._get(masks[0]).mask
        if name.startswith("div") or len(ins) == 1 or min(a.numel() for a in ins) == 1:  # scaling the mask
            result.mask = chain + [self._add(self._elementwise(name, ins, outs, 1.0, False))]
            return True
        for slot in chain:
            self.slots[slot] = None
        numel = float(outs[0].numel())
        slot = self._add(Elementwise("aten.dropout", numel, 2.0, 1.0, saved_masks=1.0,
                                     needs_backward=result.grad, serial_per_elem=RNG_STEPS_PER_DRAW))
        self._message("dropout", tuple(a for a in ins if not self._get(a).mask), outs, result, slot)
        return True

    def _dot(self, mul_slot: int, sum_slot: int) -> None:
        """``(a * b).sum(dim)``: one dot-product kernel, the product is never written out."""
        mul, total = self.slots[mul_slot], self.slots[sum_slot]
        if isinstance(mul, Elementwise) and isinstance(total, Elementwise):
            self.slots[mul_slot] = replace(mul, writes=0.0)
            self.slots[sum_slot] = replace(total, reads=0.0)

    def _mean(self, args: tuple) -> bool:
        """``sum / count`` right after a sum aggregation (PyG's scatter mean): the aggregation's mean."""
        if len(args) != 2 or not isinstance(args[1], torch.Tensor):
            return False
        slot = self._get(args[0]).agg
        op = self.slots[slot] if slot >= 0 else None
        if not isinstance(op, Aggregate) or op.reduce != "sum" or not self._get(args[1]).static:
            return False
        self.slots[slot] = replace(op, reduce="mean")
        return True

    def _message(self, name: str, args: tuple, outs: list[torch.Tensor], result: _Info, slot: int) -> None:
        """Elementwise op on per-edge rows: its output is per-edge rows too (absorbed by a scatter)."""
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if not outs or outs[0].dim() == 0:
            return
        out = outs[0]
        dims = []  # where each input's edge dimension lands in the (broadcast) output
        for a in tensors:
            info = self._get(a)
            if info.edges:
                d = info.edge_dim + max(out.dim() - a.dim(), 0)
                if d < out.dim() and out.size(d) == info.edges:
                    dims.append((info.edges, d))
        if not dims:
            return
        e, edge_dim = dims[0]
        width = int(out.numel() // max(e, 1))
        result.edges, result.width, result.edge_dim = e, width, edge_dim
        result.chain = [slot]
        for a in tensors:
            info = self._get(a)
            if info.edges == e and info.width == width:
                result.chain += info.chain
            elif a.is_floating_point() and a.numel() > 1 and name in ("mul", "div"):
                self.weighting.add(slot)  # rows scaled by a narrower per-edge value: the SpMM's multiply
                if info.edges == e:
                    result.coef += info.chain + info.coef
            result.coef += info.coef if info.edges == e and info.width == width else []

    def _gather(self, name: str, args: tuple, outs: list[torch.Tensor], result: _Info) -> bool:
        src = args[0]
        if not isinstance(src, torch.Tensor) or not src.is_floating_point() or not outs:
            return False
        if name == "index":
            idx = args[1]
            if len(idx) != 1 or idx[0] is None or idx[0].dtype == torch.bool or idx[0].dim() != 1:
                return False
            index, dim = idx[0], 0
        elif name == "index_select":
            dim, index = int(args[1]) % src.dim(), args[2]
        else:
            dim, index = int(args[1]) % src.dim(), args[2]
            if index.dim() > 1 and any(s != 0 for s in index.stride()[1:]):
                return False
            index = index.select(1, 0) if index.dim() > 1 else index
        e = int(index.numel())  # rows gathered along any dimension (ARMAConv: dim -2 of [K, N, F])
        out = outs[0]
        width = int(out.numel() // max(e, 1))
        op = Elementwise(f"aten.{name}", float(out.numel()), 0.0, 1.0, reads=1.0 + 2.0 / max(width, 1),
                         writes=1.0, needs_backward=result.grad)
        result.edges, result.width, result.chain, result.edge_dim = e, width, [self._add(op)], dim
        result.features = self._get(src).features
        return True

    def _scatter(self, name: str, args: tuple, kwargs: dict, outs: list[torch.Tensor]) -> int:
        if "segment" in name:  # segment_reduce(data [E, F], reduce, lengths=..., offsets=...)
            data = args[0]
            lengths = kwargs.get("lengths", kwargs.get("offsets"))
            n = outs[0].size(0) if outs else (lengths.numel() if lengths is not None else 1)
            reduce = args[1] if len(args) > 1 else kwargs.get("reduce", "sum")
            return self._aggregate(name, data, int(n), int(data.size(0)), reduce, -1)
        target, dim = args[0], int(args[1]) % max(args[0].dim(), 1)
        index, src = args[2], args[3]
        info = self._get(src)
        along_edges = info.edges and info.edge_dim == dim and src.size(dim) == info.edges
        if dim != 0 and not along_edges:  # message passing runs along the edge dimension, whichever it is
            self._add(self._elementwise(name, [target, index, src], outs, 1.0, self._get(src).grad))
            return -1
        reduce = "sum"
        if len(args) > 4 and isinstance(args[4], str):
            reduce = args[4]
        reduce = str(kwargs.get("reduce", reduce))
        return self._aggregate(name, src, int(target.size(dim)), int(src.size(dim)), reduce, self._get(target).fresh)

    def _aggregate(self, name: str, src: torch.Tensor, n: int, e: int, reduce: str, fresh: int) -> int:
        info = self._get(src)
        width = int(src.numel() // max(e, 1))
        if info.edges != e:  # not gathered rows (e.g. degrees: ones scattered by target): one index, no gather
            if fresh >= 0:
                self.slots[fresh] = None
            reads = 2.0 / max(width, 1)  # the int64 index (2 values per edge)
            if info.fresh >= 0 and src.is_floating_point():  # a constant (ones): folded into the kernel
                self.slots[info.fresh] = None
            else:
                reads += 1.0
            return self._add(Elementwise(f"aten.{name}", float(e * width), 1.0, 1.0, reads=reads,
                                         writes=n / max(e, 1), needs_backward=info.grad, op_class="aggregation"))
        for slot in (info.chain if info.edges == e else []) + ([fresh] if fresh >= 0 else []) + [
                c for c in info.coef if c not in self.pre]:
            op = self.slots[slot]  # the gather, the message ops, the zeros: fused into the aggregation where
            if not isinstance(op, Elementwise):  # the device fuses (aten_ops.Fused), their own kernels in eager
                self.slots[slot] = None
                continue
            fused = replace(Fused(**{f: getattr(op, f) for f in op.__dataclass_fields__}), saved_values=0.0,
                            saved_masks=0.0)
            if slot in self.weighting or op.flops_per_elem == 0:  # the scaling multiply (its FLOPs are the
                fused = replace(fused, flops_per_elem=0.0, backward_flops_per_elem=0.0)  # SpMM's), gathers, zeros
            self.slots[slot] = fused
        extreme = reduce in ("amax", "amin", "max", "min")  # keeps one gathered value: no product, no edge value
        op_reduce = "max" if extreme else "mean" if reduce in ("mean", "mean_") else "sum"
        return self._add(Aggregate(f"aten.{name}", float(n), float(e), 0.0, float(width), not extreme, op_reduce,
                                   False, info.grad, input_density=info.features or 1.0))

    def _matmul(self, name: str, args: tuple, outs: list[torch.Tensor], result: _Info) -> None:
        if name == "convolution":
            self._conv(args, outs, result)
            return
        a, b = (args[1], args[2]) if name in ADDMMS else (args[0], args[1])
        if a.layout != torch.strided or b.layout != torch.strided:  # sparse A @ dense H: aggregation
            if name in ADDMMS and self._get(args[0]).fresh >= 0:  # accumulating into fresh zeros: one kernel
                self.slots[self._get(args[0]).fresh] = None
            self._sparse_product(name, *((a, b) if a.layout != torch.strided else (b, a)))
            return
        ia, ib = self._get(a), self._get(b)
        if a.dim() == 1 or b.dim() == 1:  # vectors as a row [1, K] and a column [K, 1] (addr's outer: [M, 1], [1, N])
            outer = name == "addr"
            a = a.unsqueeze(1 if outer else 0) if a.dim() == 1 else a
            b = b.unsqueeze(0 if outer else 1) if b.dim() == 1 else b
        batch = a.size(0) if a.dim() == 3 else 1
        m, k, n = batch * a.size(-2), a.size(-1), b.size(-1)
        rows = b.transpose(-2, -1) if b.dim() >= 2 else b  # the weight as [out, in]: in = the reduction dim
        if ia.param and not ib.param:  # W @ X: price as (X^T W^T)
            m, n, ia, ib = batch * b.size(-1), a.size(-2), ib, ia
            rows = a
        cls = Gemm if ib.param and batch == 1 else NoParamGemm
        d, pattern = weight_sparsity(rows) if cls is Gemm else (1.0, "unstructured")
        self._add(cls(f"aten.{name}", float(m), float(k), float(n), d, ia.grad, ib.grad, weight_pattern=pattern,
                      input_resident=ia.features > 0, input_density=ia.features or 1.0,
                      sparse_compute=False))  # a strided product: dense, whatever the device could do
        if name in ADDMMS:
            bias = args[0]
            self._add(Elementwise("aten.addmm.bias", float(outs[0].numel()), 1.0, 1.0, reads=1.0, writes=0.0,
                                  needs_backward=self._get(bias).grad or result.grad))

    def _sparse_product(self, name: str, sparse: torch.Tensor, dense: torch.Tensor, reduce: str = "sum") -> None:
        """``sparse @ dense`` (COO/CSR ``[N, N]`` with nnz stored entries, ``dense [N, F]``): an aggregation
        over nnz edges; a mean reduce (``torch.sparse.mm(A, H, reduce="mean")``) is the mean aggregation,
        any other reduce (sum, amax, amin, prod) reads and combines the same rows."""
        nnz = value_count(sparse) if sparse.layout == torch.sparse_coo else float(sparse.values().numel())
        self._add(Aggregate(f"aten.{name}.sparse", float(sparse.size(0)), nnz, 0.0, float(dense.size(-1)), True,
                            "mean" if reduce == "mean" else "sum", False,
                            self._get(dense).grad or self._get(sparse).grad))

    def _attention(self, name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad: bool) -> None:
        """Fused attention (``q [..., Tq, d]``, ``k [..., Tk, d]``, ``v [..., Tk, dv]``) priced as its math path
        (:func:`codesign.dispatch.compound_ops.attention_math`)."""
        tq, d, tk, dv = q.size(-2), q.size(-1), k.size(-2), v.size(-1)
        iq, ik, iv = self._get(q), self._get(k), self._get(v)
        for op in attention_math(f"aten.{name}", float(q.numel() // max(tq * d, 1) * tq), float(d), float(tk),
                                 float(dv), iq.grad, ik.grad, iv.grad, grad):
            self._add(op)

    def _conv(self, args: tuple, outs: list[torch.Tensor], result: _Info) -> None:
        x, w, bias = args[0], args[1], args[2]
        transposed, groups = bool(args[6]), int(args[8])
        ix, iw = self._get(x), self._get(w)
        y = outs[0]
        d, pattern = weight_sparsity(w.reshape(w.size(0), -1)) if iw.param else (1.0, "unstructured")
        if x.dim() == 4 and not transposed:
            self._add(Conv2d("aten.convolution", float(x.size(0)), float(x.size(1)), float(y.size(1)),
                             float(x.size(2)), float(x.size(3)), float(y.size(2)), float(y.size(3)),
                             (int(w.size(2)), int(w.size(3))), groups, d, ix.grad, iw.grad, weight_pattern=pattern))
        else:  # other ranks / transposed: the GEMM with the same multiply-adds
            spatial = y[0, 0].numel() if not transposed else x[0, 0].numel()
            k = w[0].numel() if not transposed else w[0].numel() * w.size(0) // max(x.size(1), 1)
            n_out = y.size(1) if not transposed else x.size(1)
            cls = Gemm if iw.param and groups == 1 else NoParamGemm
            if cls is not Gemm:
                d, pattern = 1.0, "unstructured"
            self._add(cls("aten.convolution", float(x.size(0) * spatial), float(k), float(n_out), d,
                          ix.grad, iw.grad, weight_pattern=pattern))
        if bias is not None:
            self._add(Elementwise("aten.convolution.bias", float(y.numel()), 1.0, 1.0, reads=1.0, writes=0.0,
                                  needs_backward=result.grad))


def trace_workload(fn: Callable[[], Any], params: list[torch.Tensor], name: str, *,
                   grad_inputs: list[torch.Tensor] | None = None, input_values: float = 0.0,
                   features: torch.Tensor | None = None,
                   graph_edges: float = 0.0) -> Traced:
    """Run ``fn()`` once under the recorder and return its :class:`Traced` workload.

    ``params``: the trainable parameters (they get ``dW`` and optimizer state); ``grad_inputs``:
    other inputs that require grad; ``input_values``/``graph_edges``: resident data sizes for the
    memory model (values; stored messages); ``features``: the resident input features (GEMMs and
    aggregations that read them carry their measured density, for sparse feature storage).
    """
    recorder = _Recorder(params, grad_inputs or [], features)
    with recorder:
        fn()
    ops = [op for i, op in enumerate(recorder.slots) if op is not None and i not in recorder.pre]
    pre = [op for i, op in enumerate(recorder.slots) if op is not None and i in recorder.pre]
    total = sum(int(p.numel()) for p in params)
    carried = sum(float(op.param_count()) for op in ops)
    if total > carried:
        ops.append(Parameters("parameters", 0.0, 0.0, 0.0, params=float(total - carried)))
    wl = Workload(name=name, ops=tuple(ops), input_values=input_values, graph_edges=graph_edges,
                  input_density=1.0 if features is None else density(features),
                  info={"source": "traced with torch dispatch", "unknown_ops": dict(recorder.unknown)})
    preprocessing = Workload(name=f"{name}/graph_preprocessing", ops=tuple(pre), graph_edges=graph_edges)
    return Traced(wl, dict(recorder.counts + recorder.graph_counts), dict(recorder.unknown), total, preprocessing,
                  preprocessing_counts=(recorder.graph_kernels, sum(recorder.graph_counts.values())))
