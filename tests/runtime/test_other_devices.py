"""Off the CPU (a GPU), the CPU-only fast paths step aside and torch's own operators run.

No GPU is needed: tensors on the ``meta`` device stand for any device that is not the CPU, and
running an operator there only computes its output's shape, so a oneDNN call would fail loudly.
"""

from __future__ import annotations

import logging

import pytest
import torch
import transformers
from torch import nn

from omniembed.runtime.backends import RuntimeOptions, check_runtime
from omniembed.runtime.fused_encoder import FusedEncoder, use_fused_encoder
from omniembed.runtime.onednn import OneDnnLinear, OneDnnLinearGelu, use_onednn_linear

CONFIG = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


def tiny_bert() -> transformers.BertModel:
    torch.manual_seed(0)
    return transformers.BertModel(transformers.BertConfig(**CONFIG), add_pooling_layer=False).eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_linear_layers_run_in_torch_off_the_cpu(dtype: torch.dtype) -> None:
    model = tiny_bert()
    if use_onednn_linear(model) == 0:
        pytest.skip("this torch build has no oneDNN")
    block = model.encoder.layer[0].intermediate
    assert type(block.dense) is OneDnnLinearGelu
    model.to("meta", dtype)
    with torch.inference_mode():
        output = block(torch.empty(3, 5, CONFIG["hidden_size"], device="meta", dtype=dtype))
        query = model.encoder.layer[0].attention.self.query
        projected = query(torch.empty(7, CONFIG["hidden_size"], device="meta", dtype=dtype))
    assert type(query) is OneDnnLinear
    assert (output.shape, output.device.type, output.dtype) == ((3, 5, 64), "meta", dtype)
    assert (projected.shape, projected.device.type) == ((7, 32), "meta")
    assert block.dense._packed is None
    assert query._packed is None


def test_the_flat_encoder_steps_aside_off_the_cpu() -> None:
    model = tiny_bert()
    use_onednn_linear(model)
    assert FusedEncoder.supports(model)
    model.to("meta")
    inputs = {
        "input_ids": torch.zeros(2, 6, dtype=torch.long, device="meta"),
        "attention_mask": torch.ones(2, 6, dtype=torch.long, device="meta"),
    }
    with torch.inference_mode():
        assert FusedEncoder(model)(inputs) is None


def test_a_model_moved_off_the_cpu_and_back_packs_its_weights_again() -> None:
    model = tiny_bert()
    if use_onednn_linear(model) == 0:
        pytest.skip("this torch build has no oneDNN")
    use_fused_encoder(nn.ModuleList([model]))
    inputs = torch.randn(4, CONFIG["hidden_size"])
    query = model.encoder.layer[0].attention.self.query
    with torch.inference_mode():
        before = query(inputs)
    packed = query._packed
    model.to("meta")
    with torch.inference_mode():
        query(inputs.to("meta"))
    assert query._packed is packed  # kept, unused, while the weights are elsewhere
    model.to_empty(device="cpu")  # fresh storage: the old packed copy no longer matches it
    model.load_state_dict(tiny_bert().state_dict())
    with torch.inference_mode():
        after = query(inputs)
    assert query._packed is not packed
    torch.testing.assert_close(after, before)


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_bfloat16_and_float32_in_torch_are_accepted_on_a_gpu(
    device: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        for dtype in ("float32", "bfloat16"):
            check_runtime(RuntimeOptions(backend="auto", dtype=dtype), torch.device(device))  # type: ignore[arg-type]
    assert caplog.records == []  # the CPU's missing bfloat16 instructions are no matter there
    with pytest.raises(ValueError, match="use dtype='bfloat16'"):
        check_runtime(RuntimeOptions(dtype="int8"), torch.device(device))
    with pytest.raises(ValueError, match="use backend='torch'"):
        check_runtime(RuntimeOptions(backend="onnx"), torch.device(device))
