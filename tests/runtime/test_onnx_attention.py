"""The ONNX export of a bidirectional encoder: a key-padding mask and no NaN guard in attention."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from omniembed import SentenceTransformer
from omniembed.runtime.onnx_attention import KEY_MASK, rewrite_attention

from helpers.numbers import assert_same

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def exported_graph(model: SentenceTransformer) -> onnx.GraphProto:
    return onnx.load(str(model._network.path)).graph  # type: ignore[attr-defined]


def softmax_inputs(graph: onnx.GraphProto) -> list[list[str]]:
    """The inputs of the ``Add`` before each softmax (scores and mask)."""
    producer = {output: node for node in graph.node for output in node.output}
    adds = [producer[node.input[0]] for node in graph.node if node.op_type == "Softmax"]
    return [list(add.input) for add in adds if add.op_type == "Add"]


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_encoders_get_the_lighter_attention_with_the_same_numbers(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path, arch: str
) -> None:
    folder = tiny_model("bert", arch=arch)
    ours = SentenceTransformer(folder, device="cpu", backend="onnx", runtime_cache_folder=tmp_path)
    graph = exported_graph(ours)
    assert "IsNaN" not in [node.op_type for node in graph.node]
    adds = softmax_inputs(graph)
    assert len(adds) == 2  # one per layer of the tiny model
    assert all(inputs[1] == KEY_MASK for inputs in adds)
    # Lengths from 3 tokens to past max_seq_length: padding in every batch.
    texts = [*sts_sentences[:150], "word " * 400, "a"]
    exact = SentenceTransformer(folder, device="cpu")
    assert_same(ours.encode(texts), exact.encode(texts))


def test_a_left_padded_decoder_keeps_its_exported_attention(
    tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    folder = tiny_model("qwen3", plain=False)
    ours = SentenceTransformer(folder, device="cpu", backend="onnx", runtime_cache_folder=tmp_path)
    graph = exported_graph(ours)
    assert KEY_MASK not in {output for node in graph.node for output in node.output}


def test_a_graph_of_another_shape_is_left_as_it_is() -> None:
    helper, types = onnx.helper, onnx.TensorProto
    scores = helper.make_tensor_value_info("scores", types.FLOAT, [1, 2, 4, 4])
    mask = helper.make_tensor_value_info("attention_mask", types.INT64, [1, 4])
    output = helper.make_tensor_value_info("probabilities", types.FLOAT, [1, 2, 4, 4])
    nodes = [
        helper.make_node("Softmax", ["scores"], ["softmax"], axis=-1),  # no mask added before it
        helper.make_node("IsNaN", ["softmax"], ["nan"]),
        helper.make_node("Where", ["nan", "zero", "softmax"], ["probabilities"]),
    ]
    zero = helper.make_tensor("zero", types.FLOAT, [], [0.0])
    model = helper.make_model(helper.make_graph(nodes, "g", [scores, mask], [output], [zero]))
    before = model.SerializeToString()
    assert not rewrite_attention(model)
    assert model.SerializeToString() == before
