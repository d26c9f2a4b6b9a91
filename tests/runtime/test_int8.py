"""int8 linear layers in torch: close to float32, each row quantized on its own, picklable."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from omniembed import SentenceTransformer
from omniembed.runtime.int8 import Int8Linear, int8_available, quantize_input, quantize_linear_layers
from omniembed.runtime.onednn import use_onednn_linear

from helpers.numbers import cosines

pytestmark = pytest.mark.skipif(not int8_available(), reason="this torch build has no oneDNN int8 linear")


def test_rows_are_quantized_each_with_its_own_range() -> None:
    torch.manual_seed(0)
    rows = torch.randn(4, 64) * torch.tensor([[0.01], [1.0], [100.0], [1.0]])
    rows[3] = rows[3].abs()  # no negative values: the zero point sits at 0
    quantized, scale, offsets = quantize_input(rows)
    assert quantized.dtype == torch.uint8
    zero_point = -offsets[:, :1] / scale
    assert (offsets[:, 1] == 1).all()
    torch.testing.assert_close(zero_point, zero_point.round())
    restored = scale * (quantized.float() - zero_point)
    steps = (rows.amax(dim=1) - rows.amin(dim=1).clamp(max=0)) / 254
    assert ((restored - rows).abs().amax(dim=1) <= steps / 2 + 1e-6).all()
    assert zero_point[3].item() == 0


def test_quantizing_reuses_no_memory_a_result_holds() -> None:
    torch.manual_seed(0)
    large, small = torch.randn(300, 96), torch.randn(7, 40) * 5
    first = [part.clone() for part in quantize_input(large)]
    kept = quantize_input(small)
    again = quantize_input(large)  # same shape: the thread's scratch memory is used again
    quantize_input(torch.randn(300, 96) * 9)
    for before, after in zip(first, again, strict=True):
        assert torch.equal(before, after)
    assert torch.equal(kept[0], quantize_input(small)[0])


def test_quantizing_works_in_and_out_of_inference_mode() -> None:
    rows = torch.randn(16, 32)

    def quantize_in_a_new_thread() -> tuple[Tensor, Tensor]:
        with torch.inference_mode():
            quantize_input(torch.randn(64, 32))  # the thread's scratch memory is made in this mode
        return quantize_input(rows)[0], quantize_input(rows.clone().requires_grad_())[0]

    with ThreadPoolExecutor(max_workers=1) as pool:
        plain, from_a_leaf = pool.submit(quantize_in_a_new_thread).result()
    assert torch.equal(plain, from_a_leaf)
    assert torch.equal(plain, quantize_input(rows)[0])


def test_threads_quantize_side_by_side() -> None:
    torch.manual_seed(0)
    inputs = [torch.randn(64 + 16 * index, 128) * (index + 1) for index in range(8)]
    expected = [quantize_input(rows)[0] for rows in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            results = list(pool.map(lambda rows: quantize_input(rows)[0], inputs))
            assert all(torch.equal(a, b) for a, b in zip(results, expected, strict=True))


@pytest.mark.parametrize("shape", [(5, 32), (2, 7, 32)])
@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_stays_close_to_float32(shape: tuple[int, ...], bias: bool) -> None:
    torch.manual_seed(0)
    plain = nn.Linear(32, 48, bias=bias)
    inputs = torch.randn(*shape) + 0.3
    with torch.inference_mode():
        expected = plain(inputs)
        result = Int8Linear(plain)(inputs)
    assert result.shape == expected.shape
    error = (result - expected).norm() / expected.norm()
    assert 0 < error < 0.02


def test_gelu_fused_into_the_float_layer_is_kept() -> None:
    torch.manual_seed(0)
    block = nn.Module()
    block.dense = nn.Linear(16, 64)
    block.intermediate_act_fn = nn.GELU()
    inputs = torch.randn(3, 16)
    expected = nn.functional.gelu(block.dense(inputs))
    use_onednn_linear(block)
    quantize_linear_layers(block)
    assert isinstance(block.dense, Int8Linear)
    assert block.dense.gelu
    with torch.inference_mode():
        result = block.intermediate_act_fn(block.dense(inputs))
    assert (result - expected).norm() / expected.norm() < 0.02


def test_query_key_value_share_one_quantized_input() -> None:
    attention = nn.Module()
    for name in ("query", "key", "value", "dense"):
        setattr(attention, name, nn.Linear(8, 8))
    assert quantize_linear_layers(attention) == 4
    shared = attention.query.shared_input
    assert shared is not None
    assert attention.key.shared_input is shared
    assert attention.value.shared_input is shared
    assert attention.dense.shared_input is None


def test_stacked_layers_give_each_layer_s_output_side_by_side() -> None:
    torch.manual_seed(0)
    layers = [Int8Linear(nn.Linear(24, width)) for width in (16, 16, 8)]
    inputs = torch.randn(7, 24)
    stacked = Int8Linear.stacked(layers)
    assert (stacked.in_features, stacked.out_features) == (24, 40)
    expected = torch.cat([layer(inputs) for layer in layers], dim=1)
    torch.testing.assert_close(stacked(inputs), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="same input width"):
        Int8Linear.stacked([layers[0], Int8Linear(nn.Linear(12, 16))])


def test_a_quantized_model_pickles_and_runs_again() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    quantize_linear_layers(model)
    inputs = torch.randn(6, 16)
    with torch.inference_mode():
        expected = model(inputs)
        copy = pickle.loads(pickle.dumps(model))
        torch.testing.assert_close(copy(inputs), expected)


def test_int8_encoder_is_close_and_independent_of_the_batch(
    tiny_model: Callable[..., Path], sts_sentences: list[str]
) -> None:
    folder = tiny_model("bert")
    texts = sts_sentences[:120]
    exact = SentenceTransformer(folder, device="cpu").encode(texts)
    fast = SentenceTransformer(folder, device="cpu", dtype="int8")
    assert fast.runtime.resolved_backend() == "torch"
    assert not any(type(module) is nn.Linear for module in fast.transformer.auto_model.modules())
    quantized = fast.encode(texts)
    assert cosines(quantized, exact).min() >= 0.99
    assert np.abs(quantized - exact).max() > 1e-6  # it did run quantized
    # Each token is quantized with its own range, so an input's embedding does not depend on the
    # other inputs of its batch (only float32 rounding in attention over other paddings does).
    alone = np.stack([fast.encode(text) for text in texts[:10]])
    np.testing.assert_allclose(alone, quantized[:10], atol=1e-5)


def test_saving_an_int8_model_is_refused(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    fast = SentenceTransformer(tiny_model("bert"), device="cpu", dtype="int8")
    with pytest.raises(ValueError, match="load it again with dtype='float32'"):
        fast.save(tmp_path / "int8")
    assert not (tmp_path / "int8").exists()


@pytest.mark.slow
def test_an_int8_model_runs_in_a_pool(tiny_model: Callable[..., Path], sts_sentences: list[str]) -> None:
    fast = SentenceTransformer(tiny_model("bert"), device="cpu", dtype="int8")
    texts = sts_sentences[:100]
    got = fast.encode(texts, device=["cpu", "cpu"], chunk_size=30)
    np.testing.assert_allclose(got, fast.encode(texts), atol=1e-5)


@pytest.mark.parametrize("kind", ["distilbert", "qwen3", "multilingual"])
def test_int8_text_models_of_other_architectures(
    kind: str,
    tiny_model: Callable[..., Path],
    multilingual_text_dir: Path,
    sts_sentences: list[str],
) -> None:
    folder = {
        "distilbert": lambda: tiny_model("bert", arch="distilbert"),
        "qwen3": lambda: tiny_model("qwen3"),
        "multilingual": lambda: multilingual_text_dir,
    }[kind]()
    texts = sts_sentences[:60]
    exact = SentenceTransformer(folder, device="cpu").encode(texts)
    quantized = SentenceTransformer(folder, device="cpu", dtype="int8").encode(texts)
    assert cosines(quantized, exact).min() >= 0.98


def test_int8_clip_embeds_texts_and_images(
    tiny_clip: Callable[..., Path], cifar: list[tuple[Path, str]]
) -> None:
    folder = tiny_clip()
    inputs = ["a photo of a cat", "a red truck", *[Image.open(path) for path, _ in cifar[:8]]]
    exact = SentenceTransformer(folder, device="cpu").encode(inputs)
    quantized = SentenceTransformer(folder, device="cpu", dtype="int8").encode(inputs)
    assert cosines(quantized, exact).min() >= 0.98
