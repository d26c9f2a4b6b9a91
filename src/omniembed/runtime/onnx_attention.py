"""Lighten the attention of an exported bidirectional encoder before any runtime compiles it.

The exporter writes each attention block with what a general mask needs: a full
``(batch, 1, queries, keys)`` additive mask, and after the softmax a ``Where(IsNaN(p), 0, p)`` that
zeroes rows whose keys are all masked. For a BERT-family encoder with right padding, the mask only
says which keys are padding, and no row is ever fully masked (every input holds its special
tokens), so ``rewrite_attention``:

- builds the mask as ``(batch, 1, 1, keys)`` from ``attention_mask`` (broadcast over queries and
  heads, 1/256 of the memory at 256 tokens);
- drops the NaN guard after each softmax.

The outputs for real tokens are unchanged. ``onnx.cached_model`` keeps the rewritten graph beside
the export for ONNX Runtime and OpenVINO in float32 and bfloat16; static int8 calibrates the export
as it is, since without the guard NNCF leaves the products of attention weights and values in
float32, which measured slower on short inputs and 0.85% lower on Cranfield nDCG@10 (BENCHMARKS.md,
"Attention in the ONNX export"), and drops the guard after calibrating (``openvino_attention``). A
graph whose attention does not have the expected shape is written unchanged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from omniembed.modules import Transformer

logger = logging.getLogger(__name__)

BIDIRECTIONAL_ENCODERS = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "distilbert"})
"""transformers model types whose attention mask says only which keys are padding."""

KEY_MASK = "attention_key_mask"
"""The name of the ``(batch, 1, 1, keys)`` mask the rewritten graph adds to attention scores."""


def rewrite_applies(transformer: Transformer) -> bool:
    """Whether ``transformer``'s network qualifies: a bidirectional encoder its tokenizer pads right."""
    config = transformer.auto_model.config
    return (
        getattr(config, "model_type", None) in BIDIRECTIONAL_ENCODERS
        and not getattr(config, "is_decoder", False)
        and getattr(transformer.tokenizer, "padding_side", "right") == "right"
    )


def rewrite_attention(model: Any) -> bool:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place as the module docstring says; return
    whether it changed. Nothing changes unless every softmax has the exported shape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    if "attention_mask" not in {tensor.name for tensor in graph.input}:
        return False
    softmaxes = [node for node in graph.node if node.op_type == "Softmax"]
    adds = [producer.get(node.input[0]) for node in softmaxes]
    masks = {add.input[1] for add in adds if add is not None and add.op_type == "Add"}
    if not softmaxes or len(masks) != 1 or any(add is None or add.op_type != "Add" for add in adds):
        return False
    mask = producer.get(next(iter(masks)))
    if mask is None or mask.op_type != "Where" or not _is_keep_and_drop(constants, mask.input[1:]):
        return False
    guards = []
    for softmax in softmaxes:
        users = consumers.get(softmax.output[0], [])
        isnan = next((user for user in users if user.op_type == "IsNaN"), None)
        where = next((user for user in consumers.get(isnan.output[0], [])), None) if isnan else None
        if (
            isnan is None
            or where is None
            or list(where.input)
            != [
                isnan.output[0],
                where.input[1],
                softmax.output[0],
            ]
        ):
            return False
        guards.append((isnan, where))

    renamed = {where.output[0]: where.input[2] for _, where in guards}
    renamed[mask.output[0]] = KEY_MASK
    dropped = {id(node) for pair in guards for node in pair}
    axes = helper.make_tensor(f"{KEY_MASK}_axes", TensorProto.INT64, [2], [1, 2])
    key_mask = [
        helper.make_node("Cast", ["attention_mask"], [f"{KEY_MASK}_kept"], to=TensorProto.BOOL),
        helper.make_node("Constant", [], [axes.name], value=axes),
        helper.make_node("Unsqueeze", [f"{KEY_MASK}_kept", axes.name], [f"{KEY_MASK}_4d"]),
        helper.make_node("Where", [f"{KEY_MASK}_4d", mask.input[1], mask.input[2]], [KEY_MASK]),
    ]
    nodes = []
    for node in graph.node:
        if id(node) in dropped:
            continue
        if node is mask:
            nodes.extend(key_mask)
            continue
        for index, name in enumerate(node.input):
            node.input[index] = renamed.get(name, name)
        nodes.append(node)
    for output in graph.output:
        output.name = renamed.get(output.name, output.name)
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph)
    onnx.checker.check_model(model)
    logger.debug("rewrote %d attention blocks: key-padding mask, no NaN guard", len(softmaxes))
    return True


def _is_keep_and_drop(constants: dict[str, np.ndarray], branches: Any) -> bool:
    """Whether a mask's ``Where`` gives 0 where kept and a large negative number elsewhere."""
    keep, drop = (constants.get(name) for name in branches)
    return keep is not None and drop is not None and keeps_and_drops(keep, drop)


def keeps_and_drops(keep: np.ndarray, drop: np.ndarray) -> bool:
    """Whether the two values a key-padding mask chooses between are 0 (kept) and a large negative
    number (dropped), each a single value."""
    return keep.size == drop.size == 1 and bool(keep.item() == 0 and drop.item() < -1e30)


def _drop_unused(graph: Any) -> None:
    """Remove the nodes (the old mask's construction) whose outputs nothing reads any more."""
    while True:
        read = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
        unused = [node for node in graph.node if not any(name in read for name in node.output)]
        if not unused:
            return
        for node in unused:
            graph.node.remove(node)
