"""Lighten the attention of a statically quantized encoder, for its long inputs.

Static int8 calibrates the ONNX export as it is, NaN guard after each softmax included: without the
guard, NNCF leaves the attention weights in float32, which costs quality (``onnx_attention``). Once
NNCF has placed its quantizers, the guard can go without changing them. ``lighten_attention``
rewrites a quantized BERT-family model (right padding, so no attention row is ever fully masked):

- each softmax feeds its quantizer directly, without ``Select(IsNaN(p), 0, p)`` in between, which
  lets OpenVINO's CPU plugin run the whole int8 attention block as one fused operation;
- the additive mask is built as ``(batch, 1, 1, keys)`` from ``attention_mask`` instead of the full
  ``(batch, 1, queries, keys)``.

The fused attention wins on long inputs and loses on many short ones (2-core Xeon, batches of
2,048 tokens: 0.64× the time at 256 tokens, 0.91× at 32, 1.36× at 8; BENCHMARKS.md), so
``OpenVinoNetwork`` runs each input of ``LONG_INPUT_TOKENS`` or more through the rewritten model
and each shorter one through the model as calibrated: an input takes one path by its own length,
whatever batch it is in.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from omniembed.runtime.onnx_attention import keeps_and_drops

logger = logging.getLogger(__name__)

LONG_INPUT_TOKENS = 32
"""Inputs of this many tokens or more run through the rewritten model (the measured crossover)."""


def lighten_attention(model: Any, openvino: Any) -> bool:
    """Rewrite ``model`` (an ``openvino.Model`` of an exported encoder) in place as the module
    docstring says; return whether it changed. Nothing changes unless every softmax has the
    exported guard after it and one key-padding mask before it."""
    softmaxes = [op for op in model.get_ordered_ops() if op.get_type_name() == "Softmax"]
    if not softmaxes or "attention_mask" not in {name for port in model.inputs for name in port.names}:
        return False
    adds = [softmax.input_value(0).get_node() for softmax in softmaxes]
    if any(add.get_type_name() != "Add" for add in adds):
        return False
    masks = {add.input_value(1).get_node().get_name(): add.input_value(1).get_node() for add in adds}
    mask = next(iter(masks.values()))
    if len(masks) != 1 or mask.get_type_name() != "Select" or not _keeps_and_drops(mask):
        return False
    guards = [_guard(softmax) for softmax in softmaxes]
    if any(guard is None for guard in guards):
        return False

    opset = openvino.opset13
    kept = opset.convert(model.input("attention_mask"), "boolean")
    kept = opset.unsqueeze(kept, opset.constant(np.array([1, 2], dtype=np.int64)))
    key_mask = opset.select(kept, mask.input_value(1), mask.input_value(2))
    mask.output(0).replace(key_mask.output(0))
    for softmax, guard in zip(softmaxes, guards, strict=True):
        guard.output(0).replace(softmax.output(0))
    model.validate_nodes_and_infer_types()
    logger.debug("lightened %d quantized attention blocks", len(softmaxes))
    return True


def _guard(softmax: Any) -> Any:
    """The ``Select(IsNaN(p), 0, p)`` after ``softmax``, or ``None`` when it is not there as exported."""
    users = sorted(
        (target.get_node() for target in softmax.output(0).get_target_inputs()),
        key=lambda user: user.get_type_name(),
    )
    if [user.get_type_name() for user in users] != ["IsNaN", "Select"]:
        return None
    isnan, select = users
    sources = [select.input_value(index).get_node().get_name() for index in range(3)]
    if sources[0] != isnan.get_name() or sources[2] != softmax.get_name():
        return None
    return select


def _keeps_and_drops(mask: Any) -> bool:
    """Whether a mask's ``Select`` gives 0 where kept and a large negative number elsewhere."""
    keep, drop = (mask.input_value(index).get_node() for index in (1, 2))
    if keep.get_type_name() != "Constant" or drop.get_type_name() != "Constant":
        return False
    return keeps_and_drops(np.asarray(keep.get_data()), np.asarray(drop.get_data()))
