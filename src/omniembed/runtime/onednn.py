"""Run float32 linear layers on the CPU through oneDNN instead of torch's default BLAS.

torch multiplies float32 matrices on x86 CPUs with MKL, which on some processors (AMD EPYC with
AVX-512, for one) takes a narrower vector path; oneDNN, which torch also ships, uses the full
width. It still accumulates in float32, so outputs differ from MKL's by rounding only. bfloat16
layers take the same path; other dtypes, devices and anything that needs gradients keep torch's own.

Weights up to 16 MB are reordered once into oneDNN's blocked layout and kept beside the
parameters, so the reorder does not run on every call. The measurements behind both choices are
in BENCHMARKS.md, "Figures behind the runtime choices".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def onednn_available() -> bool:
    """Whether this torch build has oneDNN and its fused linear operator."""
    available = torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
    ops = torch.ops.mkldnn
    return bool(available) and hasattr(ops, "_linear_pointwise") and hasattr(ops, "_reorder_linear_weight")


ONEDNN_DTYPES = (torch.float32, torch.bfloat16)
"""bfloat16 already runs in oneDNN through torch, but reorders its weights on every call."""

PACK_ROWS = 16
"""The row count oneDNN tunes the reordered weights for; any row count may use them."""

PACK_MAX_BYTES = 16 * 2**20
"""Larger weights are not kept reordered: the copy would double a big model's memory, and their
products are long enough that reordering on each call costs little."""


_optimizer_steps = 0
"""How many ``torch.optim`` steps ran in this process since the first weights were packed."""
_step_hook: object | None = None


def _count_step(optimizer: object, args: object, kwargs: object) -> None:
    global _optimizer_steps
    _optimizer_steps += 1


def tensor_versions(*tensors: Tensor) -> tuple[int, ...]:
    """Where each tensor's data lives, its in-place version and the optimizer step count: a copy
    made from them (such as reordered weights) is stale once this changes.

    Fused optimizers (``torch.optim.AdamW(fused=True)``, transformers' default) write weights in
    place without bumping their version, so every optimizer step also counts as a change: a hook
    on all ``torch.optim`` optimizers, set the first time this runs, counts the steps. Inference
    then compares one more integer per packed weight.
    """
    global _step_hook
    if _step_hook is None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        _step_hook = register_optimizer_step_post_hook(_count_step)
    numbers = [number for tensor in tensors for number in (tensor.data_ptr(), tensor._version)]
    numbers.append(_optimizer_steps)
    return tuple(numbers)


class OneDnnLinear(nn.Linear):
    """``nn.Linear`` whose float32/bfloat16 CPU inference runs in oneDNN; same parameters and state."""

    _packed: Tensor | None = None
    _packed_from: tuple[int, ...] | None = None
    _post_op = "none"
    """The activation oneDNN applies to the product in the same pass (``"none"``: none)."""

    def forward(self, input: Tensor) -> Tensor:
        """``input @ weight.T + bias``, in oneDNN when it applies."""
        if not self._in_onednn(input):
            return super().forward(input)
        weight = self.weight
        if weight.numel() * weight.element_size() <= PACK_MAX_BYTES:
            weight = self._packed_weight()
        output: Tensor = torch.ops.mkldnn._linear_pointwise(
            input, weight, self.bias, self._post_op, [], "none"
        )
        return output

    def _in_onednn(self, input: Tensor) -> bool:
        return (
            input.dtype in ONEDNN_DTYPES
            and input.dtype == self.weight.dtype
            and input.device.type == "cpu"
            and self.weight.device.type == "cpu"
            and input.dim() >= 2
            and not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
        )

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the reordered weights: oneDNN's opaque tensors cannot be, and are remade."""
        state = dict(self.__dict__)
        state.pop("_packed", None)
        state.pop("_packed_from", None)
        return state

    def _packed_weight(self) -> Tensor:
        """The weights in oneDNN's layout, made again whenever the weight tensor changed."""
        source = tensor_versions(self.weight)
        if self._packed is None or self._packed_from != source:
            self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), PACK_ROWS)
            self._packed_from = source
        return self._packed


class OneDnnLinearGelu(OneDnnLinear):
    """A linear layer and the exact (erf) GELU after it: one oneDNN pass where oneDNN runs it.

    Saves a read and a write of the widest activation in the network (the feed-forward layer's
    4× hidden size); the time it saves is in BENCHMARKS.md, "Figures behind the runtime choices".
    """

    _post_op = "gelu"

    def forward(self, input: Tensor) -> Tensor:
        """``gelu(input @ weight.T + bias)``."""
        if self._in_onednn(input):
            return super().forward(input)
        return nn.functional.gelu(nn.functional.linear(input, self.weight, self.bias))


def use_onednn_linear(model: nn.Module) -> int:
    """Make every plain ``nn.Linear`` in ``model`` a ``OneDnnLinear``; return how many changed.

    Only the class changes: parameters, hooks and the state dict stay as they are, so saving,
    moving to another device and loading weights behave as before. A feed-forward block in the
    BERT family's layout (``dense`` then an exact-GELU ``intermediate_act_fn``) gets the GELU
    fused into its linear layer, and an identity in the activation's place.
    """
    if not onednn_available():
        return 0
    changed = 0
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDnnLinear
            changed += 1
    for module in model.modules():
        dense = getattr(module, "dense", None)
        if type(dense) is OneDnnLinear and _is_exact_gelu(getattr(module, "intermediate_act_fn", None)):
            dense.__class__ = OneDnnLinearGelu
            module.intermediate_act_fn = nn.Identity()
    return changed


def _is_exact_gelu(activation: object) -> bool:
    """Whether ``activation`` is the erf GELU: torch's ``nn.GELU()`` or transformers' ``"gelu"``."""
    if isinstance(activation, nn.GELU):
        return activation.approximate == "none"
    return type(activation).__name__ == "GELUActivation" and getattr(activation, "act", None) is (
        nn.functional.gelu
    )
