"""Check that the tiny models from ``helpers.models`` load in the reference sentence-transformers library."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
import pytest
import safetensors.torch
import sentence_transformers
import torch

from helpers import models as mf

SENTENCES = ["A man is playing a guitar.", "The cat sleeps.", "Paris is the capital of France."]

BUILDERS: dict[str, tuple[Callable[[Path], Path], int]] = {
    "bert-v2-mean": (lambda p: mf.build_bert(p), 32),
    "bert-v6-dense-normalize": (
        lambda p: mf.build_bert(p, layout="v6", dense=(32, 16), normalize=True),
        16,
    ),
    "distilbert-cls": (lambda p: mf.build_bert(p, arch="distilbert", pooling="cls"), 32),
    "bert-v2-mean-max": (lambda p: mf.build_bert(p, pooling=("mean", "max")), 64),
    "bert-v6-mean-max": (lambda p: mf.build_bert(p, pooling=("mean", "max"), layout="v6"), 64),
    "qwen3-plain": (lambda p: mf.build_qwen3(p), 32),
    "qwen3-modules": (lambda p: mf.build_qwen3(p, plain=False), 32),
}


def _load(path: Path) -> sentence_transformers.SentenceTransformer:
    return sentence_transformers.SentenceTransformer(str(path), device="cpu")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_reference_loads_and_encodes(tmp_path: Path, name: str) -> None:
    build, dim = BUILDERS[name]
    model = _load(build(tmp_path / name))
    embeddings = model.encode(SENTENCES)
    assert embeddings.shape == (3, dim)
    assert model.get_embedding_dimension() == dim


def test_qwen3_plain_uses_lasttoken_and_appends_eos(tmp_path: Path) -> None:
    model = _load(mf.build_qwen3(tmp_path / "q"))
    assert not (tmp_path / "q" / "modules.json").exists()
    assert model[1].pooling_mode == "lasttoken"
    assert model.tokenizer.padding_side == "left"
    ids = model.tokenizer("hello world")["input_ids"]
    assert ids[-1] == model.tokenizer.convert_tokens_to_ids(mf.EOS)


def test_qwen3_modules_prompts_and_normalize(tmp_path: Path) -> None:
    model = _load(mf.build_qwen3(tmp_path / "q", plain=False))
    assert model.prompts["query"] == mf.QWEN3_PROMPTS["query"]
    norms = torch.linalg.norm(model.encode(SENTENCES, convert_to_tensor=True), dim=1)
    assert torch.allclose(norms, torch.ones(3), atol=1e-5)


def test_bert_prompts_and_include_prompt(tmp_path: Path) -> None:
    path = mf.build_bert(
        tmp_path / "b",
        prompts={"query": "query: "},
        default_prompt_name="query",
        include_prompt=False,
        similarity_fn_name="dot",
    )
    model = _load(path)
    assert model.prompts["query"] == "query: "
    assert model.default_prompt_name == "query"
    assert model.similarity_fn_name == "dot"
    assert model[1].include_prompt is False
    assert not (path / "3_Normalize").exists()


@pytest.mark.parametrize("layout", ["v2", "v6"])
def test_max_seq_length(tmp_path: Path, layout: str) -> None:
    assert _load(mf.build_bert(tmp_path / "b", layout=layout, max_seq_length=24)).max_seq_length == 24


def test_distilbert_tokenizer_has_no_token_type_ids(tmp_path: Path) -> None:
    model = _load(mf.build_bert(tmp_path / "d", arch="distilbert"))
    assert "token_type_ids" not in model.tokenizer("hello")


def test_v2_normalize_has_no_folder(tmp_path: Path) -> None:
    path = mf.build_bert(tmp_path / "b", normalize=True)
    assert not (path / "2_Normalize").exists()
    modules = json.loads((path / "modules.json").read_text())
    assert modules[-1]["type"] == "sentence_transformers.models.Normalize"
    norms = torch.linalg.norm(_load(path).encode(SENTENCES, convert_to_tensor=True), dim=1)
    assert torch.allclose(norms, torch.ones(3), atol=1e-5)


def test_builds_are_deterministic(tmp_path: Path) -> None:
    a = mf.build_bert(tmp_path / "a", dense=(32, 8))
    b = mf.build_bert(tmp_path / "b", dense=(32, 8))
    for rel in ("model.safetensors", "2_Dense/model.safetensors"):
        ta, tb = safetensors.torch.load_file(a / rel), safetensors.torch.load_file(b / rel)
        assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_hub_cache_snapshot_download(tmp_path: Path) -> None:
    source = mf.build_bert(tmp_path / "src")
    snapshot = mf.build_hub_cache(tmp_path / "cache", "tiny-org/tiny-bert", source)
    found = huggingface_hub.snapshot_download(
        "tiny-org/tiny-bert", cache_dir=tmp_path / "cache", local_files_only=True
    )
    assert Path(found) == snapshot
    assert _load(Path(found)).encode(SENTENCES).shape == (3, 32)


def test_sts_dev_sentences() -> None:
    if not (mf.STS_DIR / "sts-dev.csv").exists():
        pytest.skip("STS benchmark data not available")
    sentences = mf.sts_dev_sentences(limit=10)
    assert len(sentences) == 10
    assert len(set(sentences)) == 10
    assert all(isinstance(s, str) and s for s in sentences)
