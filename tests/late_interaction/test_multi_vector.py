"""Late interaction: token vectors equal the reference's on tiny ColBERT folders; MaxSim is a direct sum."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import MultiVectorEncoder as Reference

from omniembed.errors import ModelFormatError
from omniembed.late_interaction.encoder import MultiVectorEncoder
from omniembed.late_interaction.maxsim import maxsim, maxsim_pairwise

from helpers import models as mf

LONG = (
    "a much longer query about many different things, really long, with more words than sixteen tokens allow"
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("colbert")
    pylate = mf.build_colbert(root / "pylate")
    attend = mf.build_colbert(root / "attend", attend_to_expansion_tokens=True, query_length=24, seed=3)
    # The reference library's own v6 multi-vector layout, written by the reference itself.
    with logging_disabled():
        Reference(str(pylate), device="cpu").save(str(root / "v6"))
    return {"pylate": pylate, "attend": attend, "v6": root / "v6"}


class logging_disabled:  # noqa: N801 - used as a context manager
    def __enter__(self) -> None:
        logging.disable(logging.WARNING)

    def __exit__(self, *args: object) -> None:
        logging.disable(logging.NOTSET)


def _same(ours: list[np.ndarray], theirs: list[torch.Tensor]) -> None:
    assert [m.shape for m in ours] == [tuple(t.shape) for t in theirs]
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine, reference.numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["pylate", "attend", "v6"])
def test_token_vectors_match_reference(folders: dict[str, Path], sts_sentences: list[str], name: str) -> None:
    ours, theirs = (
        MultiVectorEncoder(folders[name], device="cpu"),
        Reference(str(folders[name]), device="cpu"),
    )
    texts = [*sts_sentences[:40], LONG]
    with logging_disabled():
        _same(ours.encode_query(texts, batch_size=7), theirs.encode_query(texts, batch_size=7))
        _same(ours.encode_document(texts, batch_size=7), theirs.encode_document(texts, batch_size=7))
        _same(ours.encode(texts[:5]), theirs.encode(texts[:5]))
    queries, documents = ours.encode_query(texts[:6]), ours.encode_document(texts)
    reference_scores = theirs.similarity(
        [torch.from_numpy(q) for q in queries], [torch.from_numpy(d) for d in documents]
    )
    np.testing.assert_allclose(ours.similarity(queries, documents), reference_scores, atol=1e-4)


def test_config_shapes(folders: dict[str, Path]) -> None:
    model = MultiVectorEncoder(folders["pylate"], device="cpu")
    assert model.get_embedding_dimension() == 8
    assert model.prompts == {"query": "[unused0]", "document": "[unused1]"}
    query = model.encode_query("What is a frog?")
    assert query.shape == (16, 8)  # padded to the expansion width with [MASK] vectors
    np.testing.assert_allclose(np.linalg.norm(query, axis=1), 1.0, atol=1e-5)
    # [CLS] [unused1] frogs are amphibians [SEP]: the punctuation is in the skiplist.
    with_punct, without = model.encode_document(["Frogs, are amphibians!?", "Frogs are amphibians"])
    assert with_punct.shape == without.shape
    assert model.tokenizer.tokenize("[unused0]frog") == ["[unused0]", "frog"]
    long_document = model.encode_document(" ".join(["word"] * 200))
    assert long_document.shape == (48, 8)  # document_length


def test_maxsim_equals_direct_computation() -> None:
    rng = np.random.default_rng(0)
    queries = [rng.standard_normal((n, 8)).astype(np.float32) for n in (3, 16, 1)]
    documents = [rng.standard_normal((n, 8)).astype(np.float32) for n in (5, 1, 40, 7)]
    expected = np.array([[(q @ d.T).max(axis=1).sum() for d in documents] for q in queries])
    np.testing.assert_allclose(maxsim(queries, documents, chunk_size=3), expected, rtol=1e-5, atol=1e-5)
    pairwise = maxsim_pairwise(queries, documents[:3])
    np.testing.assert_allclose(pairwise, [expected[i, i] for i in range(3)], rtol=1e-5)
    assert maxsim(queries, []).shape == (3, 0)
    assert float(maxsim(queries[:1], [np.zeros((0, 8), np.float32)])[0, 0]) == 0.0
    with pytest.raises(ValueError, match="query tokens have 8 dims, document tokens 4"):
        maxsim(queries, [np.ones((2, 4), np.float32)])
    with pytest.raises(ValueError, match="token matrix at index 0 has shape"):
        maxsim([np.ones(8, np.float32)], documents)


def test_bad_folders(folders: dict[str, Path], tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelFormatError, match="not a late-interaction model"):
        MultiVectorEncoder(tiny_model("bert"), device="cpu")
    folder = shutil.copytree(folders["pylate"], tmp_path / "evil")
    entries = json.loads((folder / "modules.json").read_text())
    entries[1]["type"] = "os.system"
    (folder / "modules.json").write_text(json.dumps(entries))
    with pytest.raises(ModelFormatError, match=r"module type .os\.system. is not supported"):
        MultiVectorEncoder(folder, device="cpu")
