"""Run a network's linear layers in int8 on the CPU, through oneDNN's quantized matrix product.

Weights are quantized once, per output channel and symmetrically. Each layer's input is quantized
when it arrives, one token (row) at a time with its own scale and zero point: a batch-wide range,
as ONNX Runtime's dynamic quantization takes it, lets one outlier token coarsen every other input
of the batch, and made an input's embedding depend on its batch. oneDNN multiplies in int8 (VNNI
where the CPU has it) with the weight scales applied; the row scales, zero points and bias are
applied to its float32 result, and everything between the linear layers (attention, layer norms)
stays in float32.

The query, key and value projections of an attention block read the same input: it is quantized
once for the three of them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from omniembed.runtime.onednn import OneDnnLinearGelu

QuantizedRows = tuple[Tensor, Tensor, Tensor]
"""A uint8 matrix ``q``, the ``(rows, 1)`` scales and the ``(rows, 2)`` offsets
``[-scale * zero_point, 1]``, so that ``row ≈ scale * q + offsets[:, 0]``."""

LEVELS = 254
"""Activation steps used of uint8's 255: with the zero point rounded up, ``x / scale + zero_point``
stays below 255.5 (float rounding included), so the rounded value never wraps."""


SCRATCH_MAX_BYTES = 64 * 2**20
"""The largest float32 scratch matrix a thread keeps for quantizing inputs (``_scratch_rows``)."""

_scratch = threading.local()


def int8_available() -> bool:
    """Whether this torch build has oneDNN's quantized linear operator."""
    ops = torch.ops.onednn
    return hasattr(ops, "qlinear_pointwise") and hasattr(ops, "qlinear_prepack")


def quantize_input(input: Tensor) -> QuantizedRows:
    """Quantize each row of ``input`` (one token's features) to uint8 with its own scale and zero
    point, so that ``row ≈ scale * (q - zero_point)``; see ``QuantizedRows``."""
    rows = input.detach().reshape(-1, input.shape[-1]).float()
    # Two reductions run much faster than torch.aminmax along a dimension.
    low = rows.amin(dim=1, keepdim=True).clamp_(max=0)
    high = rows.amax(dim=1, keepdim=True).clamp_(min=0)
    scale = high.sub_(low).clamp_(min=1e-8).div_(LEVELS)
    zero_point = low.div_(scale).neg_().ceil_()
    # Shifted into int8's range and back: torch casts float to int8 in vector instructions, and
    # to uint8 one element at a time (BENCHMARKS.md, "Figures behind the runtime choices").
    shifted = torch.mul(rows, scale.reciprocal(), out=_scratch_rows(rows.shape))
    shifted.add_(zero_point - 128).round_()
    quantized = shifted.to(torch.int8).view(torch.uint8).bitwise_xor_(128)
    offsets = torch.cat((zero_point.mul_(scale).neg_(), torch.ones_like(scale)), dim=1)
    return quantized, scale, offsets


def _scratch_rows(shape: torch.Size) -> Tensor:
    """An uninitialized float32 matrix of ``shape`` in memory this thread reuses from call to call.

    A fresh temporary as large as a feed-forward activation (12 MB for 2,048 tokens of
    all-MiniLM-L6-v2) is memory the allocator maps and the kernel faults in again on every call;
    reused, it is also still in cache (the gain: BENCHMARKS.md, "Figures behind the runtime choices").
    """
    numel = shape.numel()
    if numel * 4 > SCRATCH_MAX_BYTES:
        return torch.empty(shape, dtype=torch.float32)
    buffer: Tensor | None = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor is writable in and out of that mode
            buffer = torch.empty(numel, dtype=torch.float32)
        _scratch.buffer = buffer
    return buffer[:numel].view(shape)


class SharedInput:
    """Quantizes the input that an attention block's query, key and value projections share, once."""

    def __init__(self) -> None:
        self._last: tuple[Tensor, QuantizedRows] | None = None

    def __call__(self, input: Tensor) -> QuantizedRows:
        """``quantize_input(input)``, reused while the same tensor object comes back."""
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] is input:
            return last[1]
        result = quantize_input(input)
        # Holding the input keeps its identity from being reused by another tensor.
        self._last = (input, result)
        return result

    def __getstate__(self) -> dict[str, object]:
        """Pickle empty: the kept input belongs to one forward pass."""
        return {}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__()  # type: ignore[misc]


PROJECTION_GROUPS = (
    {"query", "key", "value"},  # BERT, RoBERTa, XLM-R
    {"q_proj", "k_proj", "v_proj"},  # CLIP, Qwen3, most decoders
    {"q_lin", "k_lin", "v_lin"},  # DistilBERT
    {"q", "k", "v"},  # MPNet, T5
)
"""Names of sibling linear layers that attention blocks call on the same input, in a row."""


class Int8Linear(nn.Module):
    """A linear layer with int8 weights (per output channel) and inputs quantized per token."""

    weight_int8: Tensor
    weight_scale: Tensor
    correction: Tensor

    def __init__(self, linear: nn.Linear, shared_input: SharedInput | None = None) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        weight_int8 = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
        bias = torch.zeros_like(scale) if linear.bias is None else linear.bias.detach().float()
        # Undoes the rows' zero points and adds the bias: [-scale * zero_point, 1] @ correction.
        correction = torch.stack((weight_int8.float().sum(dim=1) * scale, bias))
        self._keep(weight_int8, scale, correction, isinstance(linear, OneDnnLinearGelu), shared_input)

    def _keep(
        self,
        weight_int8: Tensor,
        weight_scale: Tensor,
        correction: Tensor,
        gelu: bool,
        shared_input: SharedInput | None,
    ) -> None:
        self.out_features, self.in_features = weight_int8.shape
        self.register_buffer("weight_int8", weight_int8)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("correction", correction)
        self.gelu = gelu
        self.shared_input = shared_input
        self._zero_points = torch.zeros(self.out_features, dtype=torch.int64)
        self._packed: Tensor | None = None

    @classmethod
    def stacked(cls, layers: Sequence[Int8Linear]) -> Int8Linear:
        """One layer whose output is ``layers``' outputs side by side, for an input they all read
        (an attention block's query, key and value): one product instead of one each, with the
        same numbers, since every output column keeps its own weights and scale."""
        if len({layer.in_features for layer in layers}) != 1 or any(layer.gelu for layer in layers):
            raise ValueError("only layers with the same input width and no GELU can be stacked")
        stacked: Int8Linear = cls.__new__(cls)
        nn.Module.__init__(stacked)
        stacked._keep(
            torch.cat([layer.weight_int8 for layer in layers]),
            torch.cat([layer.weight_scale for layer in layers]),
            torch.cat([layer.correction for layer in layers], dim=1),
            False,
            None,
        )
        return stacked

    def forward(self, input: Tensor) -> Tensor:
        """``input @ weight.T + bias`` (then GELU where the float layer fused one), in float32."""
        quantized, scale, offsets = (self.shared_input or quantize_input)(input)
        products: Tensor = torch.ops.onednn.qlinear_pointwise(
            quantized,
            1.0,
            0,
            self._packed_weight(),
            self.weight_scale,
            self._zero_points,
            None,
            1.0,
            0,
            torch.float32,
            "none",
            [],
            "none",
        )
        output = products.mul_(scale).addmm_(offsets, self.correction)
        if self.gelu:
            torch.ops.aten.gelu_(output)  # in place: no second copy of the widest activation
        return output.reshape(*input.shape[:-1], self.out_features)

    def _packed_weight(self) -> Tensor:
        if self._packed is None:
            self._packed = torch.ops.onednn.qlinear_prepack(self.weight_int8, None)
        return self._packed

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the packed weights (an opaque oneDNN tensor); they are packed again."""
        state = dict(self.__dict__)
        state["_packed"] = None
        return state

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, gelu={self.gelu}"


def quantize_linear_layers(model: nn.Module) -> int:
    """Replace every ``nn.Linear`` in ``model`` by an ``Int8Linear``; return how many changed.

    The float weights are released: the layers keep a quarter of their bytes, in int8.
    """
    changed = 0
    for module in list(model.modules()):
        linears = {name: child for name, child in module.named_children() if isinstance(child, nn.Linear)}
        shared: dict[str, SharedInput] = {}
        for group in PROJECTION_GROUPS:
            if group <= linears.keys():
                shared_input = SharedInput()
                shared.update(dict.fromkeys(group, shared_input))
        for name, linear in linears.items():
            setattr(module, name, Int8Linear(linear, shared.get(name)))
            changed += 1
    return changed
