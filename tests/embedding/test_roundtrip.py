"""What we save the reference loads, and what the reference saves we load, with the same numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer as Reference

from omniembed import SentenceTransformer

from helpers.numbers import assert_same


@pytest.mark.parametrize(
    "options",
    [
        {"pooling": "mean", "normalize": True},
        {"pooling": ("cls", "max"), "dense": (64, 16), "layout": "v6"},
        {"pooling": "weightedmean", "include_prompt": False, "prompts": {"query": "q: "}, "layout": "v6"},
    ],
    ids=["mean-normalize", "multi-dense", "prompt-excluded"],
)
def test_our_save_loads_in_reference(
    tiny_model: Callable[..., Path], tmp_path: Path, sts_sentences: list[str], options: dict[str, object]
) -> None:
    ours = SentenceTransformer(tiny_model("bert", **options), device="cpu")
    ours.save(tmp_path / "saved")
    reference = Reference(str(tmp_path / "saved"), device="cpu")
    texts = sts_sentences[:100]
    assert_same(ours.encode(texts), reference.encode(texts))
    assert_same(ours.encode(texts, prompt="q: "), reference.encode(texts, prompt="q: "))
    assert reference.similarity_fn_name == ours.similarity_fn_name
    reloaded = SentenceTransformer(tmp_path / "saved", device="cpu")
    assert_same(reloaded.encode(texts), ours.encode(texts))
    assert reloaded.prompts == ours.prompts


def test_reference_save_loads_in_ours(
    minilm_reference: Reference, tmp_path: Path, sts_sentences: list[str]
) -> None:
    minilm_reference.save(str(tmp_path / "ref"))
    ours = SentenceTransformer(tmp_path / "ref", device="cpu")
    texts = sts_sentences[:300]
    assert ours.max_seq_length == 256
    assert_same(ours.encode(texts), minilm_reference.encode(texts))


def test_reference_save_of_dense_model(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    reference = Reference(str(tiny_model("bert", dense=(32, 8), normalize=True, layout="v6")), device="cpu")
    reference.save(str(tmp_path / "ref"))
    ours = SentenceTransformer(tmp_path / "ref", device="cpu")
    texts = ["a first sentence", "and a second, longer one than the first"]
    assert_same(ours.encode(texts), reference.encode(texts))


def test_saved_folder_layout(minilm: SentenceTransformer, tmp_path: Path) -> None:
    minilm.save(tmp_path / "m")
    modules = json.loads((tmp_path / "m" / "modules.json").read_text())
    assert [entry["path"] for entry in modules] == ["", "1_Pooling", "2_Normalize"]
    assert all(entry["type"].startswith("sentence_transformers.") for entry in modules)
    config = json.loads((tmp_path / "m" / "config_sentence_transformers.json").read_text())
    assert config["similarity_fn_name"] == "cosine"
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert not list((tmp_path / "m").rglob("*.bin"))


def test_truncate_dim_and_max_length_survive_a_save(tiny_model: Callable[..., Path], tmp_path: Path) -> None:
    ours = SentenceTransformer(tiny_model("bert"), device="cpu", truncate_dim=8)
    ours.max_seq_length = 16
    ours.save(tmp_path / "m")
    reloaded = SentenceTransformer(tmp_path / "m", device="cpu")
    assert reloaded.truncate_dim == 8
    assert reloaded.max_seq_length == 16
    assert Reference(str(tmp_path / "m"), device="cpu").max_seq_length == 16
    text = "word " * 40
    np.testing.assert_allclose(reloaded.encode(text), ours.encode(text), atol=1e-6)
