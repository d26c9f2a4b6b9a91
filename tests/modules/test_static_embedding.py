"""StaticEmbedding: the reference's static folders and model2vec's load and encode with its numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers.sentence_transformer.modules import Normalize as ReferenceNormalize
from sentence_transformers.sentence_transformer.modules import StaticEmbedding as ReferenceStatic
from tokenizers import Tokenizer, models

from omniembed import ModelFormatError, SentenceTransformer, StaticEmbedding
from omniembed.modules import LoadOptions, Normalize
from omniembed.modules.static_tokens import WordCache

from helpers.cranfield import cranfield
from helpers.models import MINILM_DIR
from helpers.numbers import PARITY, cosines
from helpers.static import ODD_TEXTS, VOCABULARY, build_model2vec, build_reference_static


def assert_same(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Parity where texts with no tokens give zero vectors (which have no cosine)."""
    assert ours.shape == theirs.shape
    nonzero = np.linalg.norm(theirs, axis=1) > 0
    assert cosines(ours[nonzero], theirs[nonzero]).min() >= PARITY
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=1e-5)


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_reference_static(tmp_path_factory.mktemp("static-ref"))


@pytest.fixture(scope="module")
def texts(sts_sentences: list[str]) -> list[str]:
    return sts_sentences[:500] + ODD_TEXTS


def test_reference_folder_matches_reference(reference_folder: Path, texts: list[str]) -> None:
    ours = SentenceTransformer(reference_folder, device="cpu")
    theirs = Reference(str(reference_folder), device="cpu")
    assert isinstance(ours[0], StaticEmbedding)
    assert isinstance(ours[1], Normalize)
    assert ours.get_sentence_embedding_dimension() == 32
    assert ours.max_seq_length == 128  # the MiniLM tokenizer.json truncates, as the reference keeps it
    assert_same(ours.encode(texts), theirs.encode(texts))
    assert_same(ours.encode(texts, prompt="query: "), theirs.encode(texts, prompt="query: "))


def test_no_normalize_and_empty_text_gives_zeros(tmp_path: Path, texts: list[str]) -> None:
    folder = build_reference_static(tmp_path / "plain", dim=8, normalize=False, seed=3)
    ours = SentenceTransformer(folder, device="cpu")
    embeddings = ours.encode(texts)
    assert_same(embeddings, Reference(str(folder), device="cpu").encode(texts))
    assert not embeddings[texts.index("")].any()
    assert embeddings[0].any()


def test_save_is_the_reference_layout(reference_folder: Path, tmp_path: Path, texts: list[str]) -> None:
    ours = SentenceTransformer(reference_folder, device="cpu")
    ours.save(tmp_path / "saved")
    entries = json.loads((tmp_path / "saved" / "modules.json").read_text())
    assert entries[0]["path"] == ""
    assert entries[0]["type"].endswith("static_embedding.StaticEmbedding")
    assert {"model.safetensors", "tokenizer.json"} <= {p.name for p in (tmp_path / "saved").iterdir()}
    expected = ours.encode(texts)
    assert_same(Reference(str(tmp_path / "saved"), device="cpu").encode(texts), expected)
    assert_same(SentenceTransformer(tmp_path / "saved", device="cpu").encode(texts), expected)


def test_older_layout_in_a_numbered_folder(reference_folder: Path, tmp_path: Path, texts: list[str]) -> None:
    """sentence-transformers 3.x wrote the module to 0_StaticEmbedding with the short type name."""
    folder = tmp_path / "v3"
    (folder / "0_StaticEmbedding").mkdir(parents=True)
    for name in ("model.safetensors", "tokenizer.json"):
        shutil.copy(reference_folder / name, folder / "0_StaticEmbedding" / name)
    entries = [
        {
            "idx": 0,
            "name": "0",
            "path": "0_StaticEmbedding",
            "type": "sentence_transformers.models.StaticEmbedding",
        }
    ]
    (folder / "modules.json").write_text(json.dumps(entries))
    expected = Reference(str(folder), device="cpu").encode(texts)
    assert_same(SentenceTransformer(folder, device="cpu").encode(texts), expected)


@pytest.mark.parametrize("quantized", [False, True])
@pytest.mark.parametrize("modules_json", [False, True])
def test_model2vec_folder(tmp_path: Path, texts: list[str], quantized: bool, modules_json: bool) -> None:
    folder = build_model2vec(tmp_path / "m2v", modules_json=modules_json, quantized=quantized)
    ours = SentenceTransformer(folder, device="cpu")
    assert [type(module).__name__ for module in ours] == ["StaticEmbedding", "Normalize"]
    # the reference reads the same table through StaticEmbedding.load (its model2vec compatibility)
    theirs = Reference(modules=[ReferenceStatic.load(str(folder)), ReferenceNormalize()], device="cpu")
    embeddings = ours.encode(texts)
    assert_same(embeddings, theirs.encode(texts))
    np.testing.assert_allclose(np.linalg.norm(embeddings[:500], axis=1), 1.0, atol=1e-5)


def test_model2vec_without_normalize(tmp_path: Path) -> None:
    folder = build_model2vec(tmp_path / "m2v", normalize=False)
    assert [type(module).__name__ for module in SentenceTransformer(folder, device="cpu")] == [
        "StaticEmbedding"
    ]


def test_word_cache_gives_the_tokenizer_ids(texts: list[str]) -> None:
    tokenizer = Tokenizer.from_file(str(MINILM_DIR / "tokenizer.json"))
    tokenizer.no_padding()
    cache = WordCache.for_tokenizer(tokenizer)
    assert cache is not None
    documents = [f"{doc['title']} {doc['body']}" for doc in cranfield(300)[0]]
    sample = texts + documents + texts  # the second pass is served from the cache
    for truncation in (None, 20):
        if truncation:
            tokenizer.enable_truncation(truncation)
        ids, lengths = cache.tokenize(sample)
        expected = [e.ids for e in tokenizer.encode_batch_fast(sample, add_special_tokens=False)]
        assert lengths.tolist() == [len(row) for row in expected]
        assert ids.tolist() == [token for row in expected for token in row]


def test_word_cache_only_for_word_tokenizers() -> None:
    bpe = Tokenizer(models.BPE())
    assert WordCache.for_tokenizer(bpe) is None


def test_max_seq_length_sets_truncation(reference_folder: Path) -> None:
    model = SentenceTransformer(reference_folder, device="cpu")
    long_text = "boundary layer " + "supersonic flow " * 50
    before = model.encode(long_text)
    model.max_seq_length = 2
    assert model.max_seq_length == 2
    np.testing.assert_allclose(model.encode(long_text), model.encode("boundary layer"), atol=1e-6)
    assert not np.allclose(before, model.encode(long_text))


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["tokenizer.json", "model.safetensors"])
def test_folder_missing_a_file(reference_folder: Path, tmp_path: Path, missing: str) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(reference_folder, folder)
    (folder / missing).unlink()
    with pytest.raises(ModelFormatError, match=missing.replace(".", r"\.")):
        SentenceTransformer(folder, device="cpu")


def test_table_with_too_few_rows(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    folder = build_model2vec(tmp_path / "m2v", modules_json=True)
    save_file({"embeddings": np.zeros((100, 4), dtype=np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=f"100 rows but the tokenizer has {VOCABULARY} tokens"):
        SentenceTransformer(folder, device="cpu")


def test_table_under_another_name(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    folder = build_model2vec(tmp_path / "m2v", modules_json=True)
    save_file({"table": np.zeros((VOCABULARY, 4), dtype=np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"'embedding\.weight' or 'embeddings'"):
        StaticEmbedding.load(folder, LoadOptions())


def test_constructor_errors() -> None:
    words = Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a"))
    with pytest.raises(ValueError, match="positive embedding_dim"):
        StaticEmbedding(words)
    with pytest.raises(ModelFormatError, match=r"\(tokens, dimension\) matrix"):
        StaticEmbedding(words, embedding_weights=torch.zeros(2))
    with pytest.raises(TypeError, match="fast tokenizer"):
        StaticEmbedding("bert-base-uncased", embedding_dim=4)
    with pytest.raises(ValueError, match="empty vocabulary"):
        StaticEmbedding(Tokenizer(models.WordLevel({}, unk_token="[UNK]")), embedding_dim=4)
