"""SparseEncoder gives the reference library's sparse vectors on the same model folders."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from sentence_transformers import SparseEncoder as Reference

from omniembed import ModelFormatError, SentenceTransformer, SparseEncoder
from omniembed.runtime.fused_encoder import FusedMaskedLM

from helpers import sparse as builders

TEXTS = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "x",
    "Search engines retrieve relevant passages for a query, " * 8,
    "",
]


@pytest.fixture(scope="module")
def sparse_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``sparse_model(kind, **options)``: a folder saved by the reference library, built once per
    distinct options; kind is ``splade``, ``legacy`` or ``inference_free``."""
    built: dict[tuple[object, ...], Path] = {}
    makers = {
        "splade": builders.build_splade,
        "legacy": builders.build_legacy_splade,
        "inference_free": builders.build_inference_free,
    }

    def build(kind: str, **options: object) -> Path:
        key = (kind, *sorted((name, repr(value)) for name, value in options.items()))
        if key not in built:
            built[key] = makers[kind](tmp_path_factory.mktemp(kind) / "model", **options)  # type: ignore[operator]
        return built[key]

    return build


def assert_same_vectors(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """The same active dimensions, and values within 1e-5."""
    assert ours.shape == theirs.shape
    a, b = ours.to_dense(), theirs.to_dense()
    assert torch.equal(a != 0, b != 0)
    assert torch.allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("pooling", "activation"),
    [("max", "relu"), ("sum", "relu"), ("max", "log1p_relu"), ("sum", "log1p_relu")],
)
def test_splade_matches_reference(sparse_model: Callable[..., Path], pooling: str, activation: str) -> None:
    folder = sparse_model("splade", pooling=pooling, activation=activation)
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    embeddings = ours.encode(TEXTS)
    assert embeddings.is_sparse
    assert embeddings.shape == (len(TEXTS), 30522)
    assert_same_vectors(embeddings, theirs.encode(TEXTS))
    assert_same_vectors(ours.encode_query(TEXTS[:3]), theirs.encode_query(TEXTS[:3]))


@pytest.mark.parametrize("pooling", ["max", "sum"])
def test_long_batches_pool_chunk_by_chunk_as_the_reference(
    sparse_model: Callable[..., Path], pooling: str
) -> None:
    """Batches of many long inputs run the head in several chunks (HEAD_ROWS token rows each)."""
    folder = sparse_model("splade", pooling=pooling)
    texts = [
        f"document {index}: " + "the quick brown fox jumps over the lazy dog " * (3 + index % 9)
        for index in range(40)
    ]
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    assert_same_vectors(ours.encode(texts, batch_size=16), theirs.encode(texts, batch_size=16))


def test_a_plain_masked_lm_checkpoint_becomes_splade_with_max_pooling(tmp_path: Path) -> None:
    folder = builders.save_masked_lm(tmp_path / "plain")
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    assert_same_vectors(ours.encode(TEXTS), theirs.encode(TEXTS))
    # the dense encoder reads the same checkpoint as a mean-pooled embedding model, as the reference does
    assert SentenceTransformer(folder, device="cpu").encode("hello").shape == (32,)


def test_splade_runs_the_fused_network_and_its_head_in_onednn(sparse_model: Callable[..., Path]) -> None:
    model = SparseEncoder(sparse_model("splade"), device="cpu")
    assert isinstance(model[0].fast_forward, FusedMaskedLM)
    assert type(model[0].auto_model.cls.predictions.decoder).__name__ == "OneDnnLinear"


def test_legacy_mlm_transformer_layout_loads(sparse_model: Callable[..., Path]) -> None:
    folder = sparse_model("legacy")
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    assert ours.max_seq_length == 128
    assert_same_vectors(ours.encode(TEXTS), theirs.encode(TEXTS))


def test_inference_free_routes_queries_to_the_lookup_table(sparse_model: Callable[..., Path]) -> None:
    folder = sparse_model("inference_free")
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    queries = ours.encode_query(TEXTS)
    assert_same_vectors(queries, theirs.encode_query(TEXTS))
    assert_same_vectors(ours.encode_document(TEXTS), theirs.encode_document(TEXTS))
    assert_same_vectors(ours.encode(TEXTS), theirs.encode(TEXTS))  # the default route: documents
    # a query vector holds only the weights of the query's own tokens
    ids = ours.tokenizer("The weather is lovely today.", add_special_tokens=False)["input_ids"]
    active = set(queries[0].coalesce().indices()[0].tolist())
    assert active
    assert active <= set(ids)
    assert ours.similarity_fn_name == "dot"
    assert torch.allclose(
        ours.similarity(queries, ours.encode_document(TEXTS)),
        theirs.similarity(theirs.encode_query(TEXTS), theirs.encode_document(TEXTS)),
        atol=1e-4,
    )


def test_output_forms(sparse_model: Callable[..., Path]) -> None:
    model = SparseEncoder(sparse_model("splade"), device="cpu")
    one = model.encode("hello world")
    assert one.is_sparse
    assert one.shape == (30522,)
    dense = model.encode(TEXTS, convert_to_sparse_tensor=False)
    assert not dense.is_sparse
    assert torch.allclose(dense, model.encode(TEXTS).to_dense())
    rows = model.encode(TEXTS, convert_to_tensor=False)
    assert isinstance(rows, list)
    assert len(rows) == len(TEXTS)
    assert torch.allclose(rows[2].to_dense(), dense[2])
    assert model.encode([]).shape == (0, 30522)
    assert model.get_embedding_dimension() == 30522


def test_max_active_dims_matches_reference(sparse_model: Callable[..., Path]) -> None:
    folder = sparse_model("splade")
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    limited = ours.encode(TEXTS, max_active_dims=7)
    assert_same_vectors(limited, theirs.encode(TEXTS, max_active_dims=7))
    assert (limited.to_dense() != 0).sum(dim=1).max() <= 7
    saved = sparse_model("splade", max_active_dims=5)
    assert SparseEncoder(saved, device="cpu").max_active_dims == 5
    assert (SparseEncoder(saved, device="cpu").encode(TEXTS).to_dense() != 0).sum(dim=1).max() <= 5


def test_prompts_match_reference(sparse_model: Callable[..., Path]) -> None:
    folder = sparse_model("splade", prompts={"query": "query: ", "document": "passage: "})
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    assert_same_vectors(ours.encode_query(TEXTS[:3]), theirs.encode_query(TEXTS[:3]))
    assert_same_vectors(ours.encode_document(TEXTS[:3]), theirs.encode_document(TEXTS[:3]))
    assert not torch.equal(ours.encode_query(TEXTS[:1]).to_dense(), ours.encode(TEXTS[:1]).to_dense())


def test_decode_and_similarity_match_reference(sparse_model: Callable[..., Path]) -> None:
    folder = sparse_model("splade")
    ours, theirs = SparseEncoder(folder, device="cpu"), Reference(str(folder), device="cpu")
    a, b = ours.encode(TEXTS[:3]), theirs.encode(TEXTS[:3])
    decoded, expected = ours.decode(a, top_k=5), theirs.decode(b, top_k=5)
    assert [[token for token, _ in row] for row in decoded] == [
        [token for token, _ in row] for row in expected
    ]
    assert ours.decode(a[0])[0][1] == pytest.approx(expected[0][0][1], abs=1e-5)
    assert torch.allclose(ours.similarity(a, a), theirs.similarity(b, b), rtol=1e-5)
    assert torch.allclose(ours.similarity_pairwise(a, a), theirs.similarity_pairwise(b, b), rtol=1e-5)
    ours.similarity_fn_name = "cosine"
    assert torch.allclose(ours.similarity(a, a).diagonal(), torch.ones(3), atol=1e-5)


def test_saved_folder_loads_in_the_reference(sparse_model: Callable[..., Path], tmp_path: Path) -> None:
    for kind in ("splade", "inference_free"):
        model = SparseEncoder(sparse_model(kind), device="cpu")
        model.save(tmp_path / kind)
        theirs = Reference(str(tmp_path / kind), device="cpu")
        assert_same_vectors(model.encode_query(TEXTS), theirs.encode_query(TEXTS))
        assert_same_vectors(model.encode_document(TEXTS), theirs.encode_document(TEXTS))
        assert_same_vectors(SparseEncoder(tmp_path / kind, device="cpu").encode(TEXTS), model.encode(TEXTS))


def test_a_sparse_model_is_refused_by_sentence_transformer(sparse_model: Callable[..., Path]) -> None:
    for kind in ("splade", "inference_free", "legacy"):
        with pytest.raises(ModelFormatError, match=r"load it with omniembed\.SparseEncoder"):
            SentenceTransformer(sparse_model(kind), device="cpu")


def test_a_dense_model_is_refused_by_sparse_encoder(
    tiny_model: Callable[..., Path], minilm_dir: Path
) -> None:
    for folder in (tiny_model("bert"), minilm_dir):
        with pytest.raises(ModelFormatError, match=r"load it with omniembed\.SentenceTransformer"):
            SparseEncoder(folder, device="cpu")


def test_sparse_auto_encoder_is_refused_clearly(sparse_model: Callable[..., Path], tmp_path: Path) -> None:
    folder = Path(shutil.copytree(sparse_model("splade"), tmp_path / "csr"))
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "sentence_transformers.sparse_encoder.modules.sparse_auto_encoder.SparseAutoEncoder"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFormatError, match=r"SparseAutoEncoder \(CSR\) models are not supported yet"):
        SparseEncoder(folder, device="cpu")


def test_bad_arguments(sparse_model: Callable[..., Path]) -> None:
    model = SparseEncoder(sparse_model("splade"), device="cpu")
    with pytest.raises(TypeError, match="encodes texts"):
        model.encode(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_active_dims must be a positive integer"):
        model.encode("a", max_active_dims=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.encode("a", batch_size=0)
    with pytest.raises(ValueError, match="not supported for sparse vectors"):
        model.similarity_fn_name = "euclidean"
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        model.decode(model.encode("a"), top_k=0)
    with pytest.raises(ValueError, match="cannot be compared"):
        model.similarity(model.encode("a"), torch.zeros(5))
    with pytest.raises(ValueError, match="prompt_name 'nope'"):
        model.encode("a", prompt_name="nope")
    routed = SparseEncoder(sparse_model("inference_free"), device="cpu")
    with pytest.raises(ValueError, match="no route for task 'summary'"):
        routed.encode("a", task="summary")
