"""CrossEncoder: parity with the reference library, the Qwen3-Reranker prompt, and bad input."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder as Reference

from omniembed import CrossEncoder
from omniembed.errors import InvalidInputError, ModelFormatError
from omniembed.modules.scorers import QWEN3_CONTENT, QWEN3_INSTRUCTION, QWEN3_PREFIX, QWEN3_SUFFIX

from helpers import models as mf


@pytest.fixture(scope="module")
def pairs(sts_sentences: list[str]) -> list[tuple[str, str]]:
    texts = sts_sentences[:120]
    return list(zip(texts[0::2], texts[1::2], strict=True))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rerankers")
    return {
        "one": mf.build_cross_encoder(root / "one"),
        "three": mf.build_cross_encoder(root / "three", num_labels=3, layout="v6", seed=1),
        "tanh": mf.build_cross_encoder(root / "tanh", activation="torch.nn.modules.activation.Tanh", seed=2),
        "qwen": mf.build_qwen3_reranker(root / "qwen"),
        "qwen_chat": mf.build_qwen3_reranker(root / "qwen_chat", chat_template=True),
    }


@pytest.mark.parametrize("name", ["one", "three", "tanh", "qwen"])
def test_predict_matches_reference(folders: dict[str, Path], pairs: list[tuple[str, str]], name: str) -> None:
    ours = CrossEncoder(folders[name], device="cpu")
    theirs = Reference(str(folders[name]), device="cpu")
    assert ours.num_labels == theirs.num_labels
    assert ours.max_length == theirs.max_seq_length
    np.testing.assert_allclose(
        ours.predict(pairs, batch_size=7), theirs.predict(pairs, batch_size=7), atol=1e-5
    )
    if ours.num_labels > 1:
        np.testing.assert_allclose(
            ours.predict(pairs, apply_softmax=True), theirs.predict(pairs, apply_softmax=True), atol=1e-5
        )
        ours_id = ours.predict(pairs, activation_fn=torch.nn.Identity())
        np.testing.assert_allclose(
            ours_id, theirs.predict(pairs, activation_fn=torch.nn.Identity()), atol=1e-5
        )


def test_rank_matches_reference(folders: dict[str, Path], pairs: list[tuple[str, str]]) -> None:
    ours = CrossEncoder(folders["one"], device="cpu")
    theirs = Reference(str(folders["one"]), device="cpu")
    documents = [document for _, document in pairs]
    mine = ours.rank(pairs[0][0], documents, top_k=10, return_documents=True)
    reference = theirs.rank(pairs[0][0], documents, top_k=10, return_documents=True)
    assert [row["corpus_id"] for row in mine] == [row["corpus_id"] for row in reference]
    np.testing.assert_allclose([row["score"] for row in mine], [row["score"] for row in reference], atol=1e-5)
    assert [row["text"] for row in mine] == [documents[row["corpus_id"]] for row in mine]
    assert [row["score"] for row in mine] == sorted((row["score"] for row in mine), reverse=True)


def test_batching_restores_input_order(folders: dict[str, Path], pairs: list[tuple[str, str]]) -> None:
    model = CrossEncoder(folders["three"], device="cpu")
    one_by_one = np.stack([model.predict(pair) for pair in pairs[:12]])
    np.testing.assert_allclose(model.predict(pairs[:12], batch_size=5), one_by_one, atol=1e-5)
    assert model.predict([]).shape == (0, 3)
    assert model.predict(pairs[:3], convert_to_tensor=True).shape == (3, 3)


def _qwen3_direct(model: CrossEncoder, query: str, document: str, instruction: str) -> float:
    """The Qwen3-Reranker score computed by hand: softmax over the no/yes logits at the last position."""
    tokenizer = model.tokenizer
    text = QWEN3_PREFIX + QWEN3_CONTENT.format(instruction=instruction, query=query, document=document)
    ids = tokenizer.encode(text + QWEN3_SUFFIX, add_special_tokens=False)
    with torch.inference_mode():
        logits = model.scorer.model(torch.tensor([ids])).logits[0, -1]
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    return float(torch.log_softmax(logits[[no, yes]], dim=0)[1].exp())


def test_qwen3_template_equals_direct_computation(
    folders: dict[str, Path], pairs: list[tuple[str, str]]
) -> None:
    model = CrossEncoder(folders["qwen_chat"], device="cpu", max_length=256)
    assert model.scorer.template is not None  # chosen because the tokenizer has a ChatML template
    scores = model.predict(pairs[:9], batch_size=4)
    expected = [_qwen3_direct(model, q, d, QWEN3_INSTRUCTION) for q, d in pairs[:9]]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    custom = model.predict(pairs[:2], prompt="Find paraphrases")
    np.testing.assert_allclose(
        custom, [_qwen3_direct(model, q, d, "Find paraphrases") for q, d in pairs[:2]], atol=1e-5
    )
    assert not np.allclose(custom, scores[:2])
    forced = CrossEncoder(folders["qwen"], device="cpu", max_length=256, prompt_template="qwen3")
    np.testing.assert_allclose(forced.predict(pairs[:3]), scores[:3], atol=1e-5)


def test_long_query_is_truncated_and_logged(
    folders: dict[str, Path], caplog: pytest.LogCaptureFixture, sts_sentences: list[str]
) -> None:
    model = CrossEncoder(folders["one"], device="cpu", max_length=32)
    long_query = " ".join(sts_sentences[:40])
    with caplog.at_level(logging.WARNING, logger="omniembed.rerank.cross_encoder"):
        scores = model.predict([(long_query, "short"), ("a", "b")])
    assert "1 of 2 pairs were longer than max_length=32" in caplog.text
    assert np.isfinite(scores).all()
    # Truncation keeps the first tokens: the score is that of the query cut to fit.
    cut = model.tokenizer.decode(
        model.tokenizer(long_query, "short", truncation=True, max_length=32)["input_ids"]
    )
    assert cut.count("[SEP]") == 2
    qwen = CrossEncoder(folders["qwen_chat"], device="cpu", max_length=256)
    with caplog.at_level(logging.WARNING, logger="omniembed.rerank.cross_encoder"):
        assert np.isfinite(qwen.predict((long_query * 3, "doc")))
    assert "max_length=256" in caplog.text


def test_empty_documents(folders: dict[str, Path]) -> None:
    model = CrossEncoder(folders["one"], device="cpu")
    assert model.rank("query", []) == []
    ranked = model.rank("query", ["", "a document"], return_documents=True)
    assert sorted(row["corpus_id"] for row in ranked) == [0, 1]
    assert all(np.isfinite(row["score"]) for row in ranked)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([("q", "d"), ("only one",)], "pair at index 1 is ('only one',)"),
        ([("q", "d"), "q d"], "pair at index 1 is 'q d'"),
        ([("q", None)], "pair at index 0 is ('q', None); both elements must be strings"),
        ("q", "predict takes a list of (query, document) pairs, got str"),
    ],
)
def test_bad_pairs(folders: dict[str, Path], bad: object, message: str) -> None:
    model = CrossEncoder(folders["one"], device="cpu")
    with pytest.raises(InvalidInputError) as error:
        model.predict(bad)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_rank_refuses_multi_label_models(folders: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="one label, this one has 3"):
        CrossEncoder(folders["three"], device="cpu").rank("q", ["d"])


def test_folder_without_classification_head(tiny_model, minilm_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelFormatError, match="no classification head"):
        CrossEncoder(tiny_model("bert"), device="cpu")
    with pytest.raises(ModelFormatError, match=r"no classification head.*Pooling"):
        CrossEncoder(minilm_dir, device="cpu")
    plain = shutil.copytree(tiny_model("bert"), tmp_path / "plain")
    (plain / "modules.json").unlink()
    with pytest.raises(ModelFormatError, match=r"no classification head \(architecture 'BertModel'"):
        CrossEncoder(plain, device="cpu")
    with pytest.raises(ModelFormatError, match="no 'yes' and 'no' tokens"):
        CrossEncoder(tiny_model("qwen3"), device="cpu")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"config.json": {"sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"}},
            "Identity",
        ),
        ({"config.json": {"sentence_transformers": {"activation_fn": "torch.nn.Tanh"}}}, "Tanh"),
        (
            {
                "config.json": {"sentence_transformers": {"activation_fn": "torch.nn.Tanh"}},
                "config_sentence_transformers.json": {"activation_fn": "torch.nn.modules.linear.Identity"},
            },
            "Identity",
        ),
        ({"config.json": {"sbert_ce_default_activation_function": "my_package.Evil"}}, "Sigmoid"),
        ({"config.json": {}}, "Sigmoid"),
    ],
)
def test_activation_from_any_release(tmp_path: Path, files: dict[str, object], expected: str) -> None:
    import json

    from omniembed.rerank.cross_encoder import folder_activation

    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    assert type(folder_activation(tmp_path, num_labels=1)).__name__ == expected
    assert type(folder_activation(tmp_path / "missing", num_labels=3)).__name__ == "Identity"
