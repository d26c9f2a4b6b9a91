"""The flat BERT-family forward pass gives the transformers model's numbers, and steps aside elsewhere."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers

import omniembed as oe
from omniembed.modules import Transformer
from omniembed.runtime import fused_encoder
from omniembed.runtime.fused_encoder import FusedClassifier, FusedEncoder, padded_rows, use_fused_encoder
from omniembed.runtime.onednn import onednn_available, use_onednn_linear

from helpers import models as mf
from helpers.numbers import cosines

TINY = {
    "vocab_size": 120,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}
ARCHITECTURES = {
    "bert": (transformers.BertConfig, transformers.BertModel),
    "roberta": (transformers.RobertaConfig, transformers.RobertaModel),
    "xlm-roberta": (transformers.XLMRobertaConfig, transformers.XLMRobertaModel),
    "distilbert": (transformers.DistilBertConfig, transformers.DistilBertModel),
}


def tiny_network(kind: str, onednn: bool = True, **overrides: Any) -> Any:
    config_class, model_class = ARCHITECTURES[kind]
    torch.manual_seed(0)
    config = config_class(**{**TINY, "hidden_dim": 64, "pad_token_id": 1, **overrides})
    pooler = {} if kind == "distilbert" else {"add_pooling_layer": False}
    model = model_class(config, **pooler).eval()
    if onednn:
        use_onednn_linear(model)
    return model


def padded_batch(lengths: list[int], types: bool = True, pad: int = 1) -> dict[str, torch.Tensor]:
    """Right-padded random token ids (never the pad id) with their attention mask."""
    generator = torch.Generator().manual_seed(1)
    longest = max(lengths)
    ids = torch.randint(2, TINY["vocab_size"], (len(lengths), longest), generator=generator)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        ids[row, length:] = pad
    batch = {"input_ids": ids, "attention_mask": mask}
    return {**batch, "token_type_ids": torch.zeros_like(ids)} if types else batch


def reference_and_fused(model: Any, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    fused = FusedEncoder(model)
    with torch.inference_mode():
        expected = model(**inputs).last_hidden_state
        result = fused(dict(inputs))
    assert result is not None
    return expected, result


@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.parametrize("lengths", [[9], [12, 7, 3, 12], [40, 25, 20]])
def test_matches_the_transformers_forward_pass(kind: str, onednn: bool, lengths: list[int]) -> None:
    if onednn and not onednn_available():
        pytest.skip("this torch build has no oneDNN")
    model = tiny_network(kind, onednn=onednn)
    assert FusedEncoder.supports(model)
    inputs = padded_batch(lengths, types=kind != "distilbert")
    expected, result = reference_and_fused(model, inputs)
    mask = inputs["attention_mask"].bool()
    # Padding positions are never pooled; every real token must match.
    torch.testing.assert_close(result[mask], expected[mask], rtol=1e-5, atol=1e-5)


def test_row_counts_are_rounded_past_short_inputs() -> None:
    assert [padded_rows(tokens) for tokens in (1, 8, 64)] == [1, 8, 64]
    assert [padded_rows(tokens) for tokens in (65, 120, 256, 257, 2000, 2048)] == [
        80,
        128,
        256,
        320,
        2048,
        2048,
    ]
    assert all(tokens <= padded_rows(tokens) <= tokens * 1.25 for tokens in range(1, 5000))
    assert len({padded_rows(tokens) for tokens in range(65, 2049)}) == 12 + 28


def test_bfloat16_matches_the_transformers_forward_pass() -> None:
    model = tiny_network("bert").to(torch.bfloat16)
    inputs = padded_batch([10, 4])
    expected, result = reference_and_fused(model, inputs)
    assert result.dtype == torch.bfloat16
    mask = inputs["attention_mask"].bool()
    torch.testing.assert_close(result[mask].float(), expected[mask].float(), rtol=0.02, atol=0.02)


def test_changed_weights_are_used_on_the_next_call() -> None:
    model = tiny_network("bert")
    inputs = padded_batch([8, 5])
    fused = FusedEncoder(model)
    with torch.inference_mode():
        before = fused(dict(inputs))
        model.encoder.layer[0].attention.self.key.weight.mul_(2)
        expected = model(**inputs).last_hidden_state
        after = fused(dict(inputs))
    assert before is not None
    assert after is not None
    assert not torch.allclose(before, after)
    mask = inputs["attention_mask"].bool()
    torch.testing.assert_close(after[mask], expected[mask], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kind", "overrides"),
    [
        ("bert", {"is_decoder": True}),
        ("bert", {"position_embedding_type": "relative_key"}),
        ("bert", {"chunk_size_feed_forward": 4}),
        ("bert", {"attn_implementation": "eager"}),
    ],
)
def test_other_layouts_keep_the_transformers_forward_pass(kind: str, overrides: dict[str, Any]) -> None:
    assert not FusedEncoder.supports(tiny_network(kind, **overrides))


def test_gradients_and_training_keep_the_transformers_forward_pass() -> None:
    model = tiny_network("bert")
    fused = FusedEncoder(model)
    inputs = padded_batch([6])
    with torch.enable_grad():
        assert fused(dict(inputs)) is None
    model.train()
    with torch.inference_mode():
        assert fused(dict(inputs)) is None
        assert fused({"attention_mask": inputs["attention_mask"]}) is None


def fused_or_foreach_adamw(parameters: Any) -> torch.optim.Optimizer:
    """AdamW that updates the weights in place without bumping their version where torch can."""
    try:
        return torch.optim.AdamW(parameters, lr=0.05, fused=True)
    except RuntimeError:
        return torch.optim.AdamW(parameters, lr=0.05, foreach=True)


def test_encode_sees_a_fused_optimizer_step_taken_by_hand(tiny_model: Any, sts_sentences: list[str]) -> None:
    model = oe.SentenceTransformer(tiny_model("bert"), device="cpu")
    texts = sts_sentences[:6]
    before = model.encode(texts)  # packs the weights
    optimizer = fused_or_foreach_adamw(model.parameters())
    model.train()
    features, _ = model.transformer.tokenize(texts)
    model(dict(features))["sentence_embedding"].pow(2).sum().backward()
    optimizer.step()
    model.eval()
    after = model.encode(texts)
    fresh = oe.SentenceTransformer(tiny_model("bert"), device="cpu")  # packs the stepped weights anew
    fresh.load_state_dict(model.state_dict())
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, fresh.encode(texts), rtol=0, atol=1e-5)


def test_only_bert_family_transformers_get_it(tiny_model: Any, tiny_clip: Any) -> None:
    for folder in (tiny_model("bert"), tiny_model("bert", arch="distilbert")):
        model = oe.SentenceTransformer(folder, device="cpu")
        assert isinstance(model.transformer.fast_forward, FusedEncoder)
    for folder in (tiny_model("qwen3"), tiny_clip()):
        model = oe.SentenceTransformer(folder, device="cpu")
        assert use_fused_encoder(model) == 0
        assert all(
            module.fast_forward is None for module in model.modules() if isinstance(module, Transformer)
        )


def test_pickled_model_encodes_the_same(minilm_dir: Path, sts_sentences: list[str]) -> None:
    model = oe.SentenceTransformer(minilm_dir, device="cpu")
    texts = sts_sentences[:40]
    expected = model.encode(texts)
    copy = pickle.loads(pickle.dumps(model))
    assert isinstance(copy.transformer.fast_forward, FusedEncoder)
    np.testing.assert_allclose(copy.encode(texts), expected, rtol=0, atol=1e-6)


def test_minilm_matches_its_transformers_forward_pass(minilm_dir: Path, sts_sentences: list[str]) -> None:
    model = oe.SentenceTransformer(minilm_dir, device="cpu")
    texts = sts_sentences[:200]
    fused = model.encode(texts)
    model.transformer.fast_forward = None
    plain = model.encode(texts)
    assert cosines(fused, plain).min() >= 0.999999


def test_int8_layers_run_inside_it(minilm_dir: Path, sts_sentences: list[str]) -> None:
    from omniembed.runtime.int8 import int8_available

    if not int8_available():
        pytest.skip("this torch build has no oneDNN int8 linear layer")
    model = oe.SentenceTransformer(minilm_dir, device="cpu", dtype="int8")
    texts = sts_sentences[:60]
    fused = model.encode(texts)
    model.transformer.fast_forward = None
    plain = model.encode(texts)
    assert cosines(fused, plain).min() >= 0.99999


def test_only_short_inputs_of_small_models_stack_their_projections(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_network("bert")
    fused = FusedEncoder(model)
    with torch.inference_mode():
        fused(padded_batch([40, 30]))  # 80 token rows: three products
        assert not fused._packed
        fused(padded_batch([9, 4]))
        assert len(fused._packed) == len(model.encoder.layer)
        monkeypatch.setattr(fused_encoder, "STACK_MAX_BYTES", 1024)
        larger = FusedEncoder(model)
        larger(padded_batch([9, 4]))
        assert not larger._packed


def test_int8_projections_of_short_inputs_are_one_product_with_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from omniembed.runtime.int8 import int8_available, quantize_linear_layers

    if not int8_available():
        pytest.skip("this torch build has no oneDNN int8 linear layer")
    model = tiny_network("bert")
    quantize_linear_layers(model)
    fused = FusedEncoder(model)
    short = padded_batch([9, 4])
    with torch.inference_mode():
        fused(padded_batch([40, 30]))  # 80 token rows: three products
        assert not fused._int8_stacks
        stacked = fused(short)
        assert len(fused._int8_stacks) == len(model.encoder.layer)
        monkeypatch.setattr(fused_encoder, "STACK_MAX_BYTES", 1024)
        separate = FusedEncoder(model)(short)
    torch.testing.assert_close(stacked, separate, rtol=0, atol=1e-6)


def test_it_keeps_no_copy_of_plain_linear_weights() -> None:
    model = tiny_network("bert", onednn=False)
    fused = FusedEncoder(model)
    with torch.inference_mode():
        fused(padded_batch([5]))
    assert not fused._packed


CLASSIFIERS = {
    "bert": (transformers.BertConfig, transformers.BertForSequenceClassification),
    "roberta": (transformers.RobertaConfig, transformers.RobertaForSequenceClassification),
    "xlm-roberta": (transformers.XLMRobertaConfig, transformers.XLMRobertaForSequenceClassification),
}


@pytest.mark.parametrize("kind", sorted(CLASSIFIERS))
def test_classifier_logits_match_the_transformers_forward_pass(kind: str) -> None:
    config_class, model_class = CLASSIFIERS[kind]
    torch.manual_seed(0)
    model = model_class(config_class(**{**TINY, "pad_token_id": 1, "num_labels": 3})).eval()
    use_onednn_linear(model)
    assert FusedClassifier.supports(model)
    inputs = padded_batch([11, 6, 2])
    with torch.inference_mode():
        expected = model(**inputs).logits
        result = FusedClassifier(model)(dict(inputs))
    assert result is not None
    torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-5)


def test_cross_encoder_scores_are_unchanged(tmp_path: Path) -> None:
    reranker = oe.CrossEncoder(mf.build_cross_encoder(tmp_path / "ce", num_labels=3), device="cpu")
    assert isinstance(reranker.scorer.fast_forward, FusedClassifier)
    pairs = [("how thick is the boundary layer", text) for text in mf.sts_dev_sentences(30)]
    fused = reranker.predict(pairs)
    reranker.scorer.fast_forward = None
    np.testing.assert_allclose(fused, reranker.predict(pairs), rtol=1e-5, atol=1e-5)
