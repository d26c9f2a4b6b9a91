"""Vision late interaction: tiny random ColPali / ColQwen2 / ColModernVBert token matrices."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sentence_transformers import MultiVectorEncoder as Reference

import omniembed
from omniembed.errors import ModelFormatError
from omniembed.late_interaction.encoder import MultiVectorEncoder
from omniembed.late_interaction.vision import VisionMultiVectorEncoder

from helpers import images as imf

QUERIES = ["a red car on the road", "what is the total amount due"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("colpali")
    return {
        "plain": imf.build_colpali(root / "plain"),
        "v6": imf.build_colpali(root / "v6", layout="v6"),
        "images_only": imf.build_colpali(root / "images_only", layout="v6", keep_only_images=True),
        "colqwen2": imf.build_colqwen2(root / "colqwen2"),
        "colmodernvbert": imf.build_colmodernvbert(root / "colmodernvbert"),
    }


@pytest.fixture(scope="module")
def pages() -> list[Path]:
    return [path for path, _ in imf.cifar_images()[:5]]


@pytest.fixture(scope="module")
def model(folders: dict[str, Path]) -> MultiVectorEncoder:
    return MultiVectorEncoder(folders["plain"], device="cpu")


def reference(folder: Path) -> Reference:
    logging.disable(logging.WARNING)
    try:
        return Reference(str(folder), device="cpu")
    finally:
        logging.disable(logging.NOTSET)


def direct_maxsim(query: np.ndarray, document: np.ndarray) -> float:
    return float((query.astype(np.float64) @ document.astype(np.float64).T).max(axis=1).sum())


def test_a_for_retrieval_folder_loads_as_the_vision_encoder(model: MultiVectorEncoder) -> None:
    assert isinstance(model, VisionMultiVectorEncoder)
    assert omniembed.VisionMultiVectorEncoder is VisionMultiVectorEncoder
    assert model.get_embedding_dimension() == 16


@pytest.mark.parametrize("layout", ["plain", "v6", "images_only", "colqwen2"])
def test_token_vectors_equal_the_reference(folders: dict[str, Path], pages: list[Path], layout: str) -> None:
    ours = MultiVectorEncoder(folders[layout], device="cpu")
    theirs = reference(folders[layout])
    images = [Image.open(path).convert("RGB") for path in pages]
    pairs = [
        (ours.encode_document([str(path) for path in pages]), theirs.encode_document(images)),
        (ours.encode_query(QUERIES), theirs.encode_query(QUERIES)),
    ]
    for mine, expected in pairs:
        assert len(mine) == len(expected)
        for matrix, other in zip(mine, expected, strict=True):
            assert matrix.shape == tuple(other.shape)
            np.testing.assert_allclose(matrix, other.numpy(), atol=1e-5)
    scores = ours.similarity(pairs[1][0], pairs[0][0])
    np.testing.assert_allclose(scores.numpy(), theirs.similarity(pairs[1][1], pairs[0][1]).numpy(), atol=1e-4)


def test_kept_rows(folders: dict[str, Path], model: MultiVectorEncoder, pages: list[Path]) -> None:
    tokenizer = model.tokenizer
    # A page: 4 image tokens (28x28 pixels in 14x14 patches), then <bos>, the visual prompt, "\n".
    prompt = len(tokenizer("<bos>Describe the image.\n", add_special_tokens=False)["input_ids"])
    page = model.encode_document(pages[0])
    assert page.shape == (4 + prompt, 16)
    np.testing.assert_allclose(np.linalg.norm(page, axis=1), 1.0, atol=1e-5)
    # A query: <bos>, "Question: ", the text, ten augmentation (pad) tokens, "\n"; batch padding dropped.
    for query, matrix in zip(QUERIES, model.encode_query(QUERIES), strict=True):
        text = f"<bos>Question: {query}{'<pad>' * 10}\n"
        assert matrix.shape[0] == len(tokenizer(text, add_special_tokens=False)["input_ids"])
    # The v6 mask with keep_only_token_ids keeps the image rows of documents only, not of queries.
    images_only = MultiVectorEncoder(folders["images_only"], device="cpu")
    np.testing.assert_allclose(images_only.encode_document(pages[0]), page[:4], atol=1e-6)
    assert images_only.encode_query(QUERIES[0]).shape == model.encode_query(QUERIES[0]).shape


def test_maxsim_equals_a_direct_computation(model: MultiVectorEncoder, pages: list[Path]) -> None:
    documents = model.encode_document(pages)
    queries = model.encode_query(QUERIES)
    expected = np.array([[direct_maxsim(q, d) for d in documents] for q in queries])
    np.testing.assert_allclose(model.similarity(queries, documents).numpy(), expected, rtol=1e-5)
    pairwise = model.similarity_pairwise(queries, documents[:2]).numpy()
    np.testing.assert_allclose(pairwise, [expected[0, 0], expected[1, 1]], rtol=1e-5)


def test_image_input_kinds_give_the_same_matrix(model: MultiVectorEncoder, pages: list[Path]) -> None:
    image = Image.open(pages[1]).convert("RGB")
    array = np.array(image)
    expected = model.encode_document(image)
    variants = [pages[1], str(pages[1]), array, torch.from_numpy(array).permute(2, 0, 1).contiguous()]
    for variant in variants:
        np.testing.assert_allclose(model.encode_document(variant), expected, atol=1e-6)
    as_tensor = model.encode_document([image], convert_to_numpy=False)[0]
    assert isinstance(as_tensor, torch.Tensor)


def test_mixed_batches_keep_input_order(model: MultiVectorEncoder, pages: list[Path]) -> None:
    mixed = model.encode([pages[0], QUERIES[0], pages[1]], batch_size=1)
    np.testing.assert_allclose(mixed[0], model.encode(pages[0]), atol=1e-6)
    np.testing.assert_allclose(mixed[1], model.encode_query(QUERIES[0]), atol=1e-6)
    np.testing.assert_allclose(mixed[2], model.encode(pages[1]), atol=1e-6)


def test_an_unsupported_family_is_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "colqwen"
    shutil.copytree(folders["plain"], folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="colqwen3", architectures=["ColQwen3ForRetrieval"])
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ModelFormatError,
        match=r"'colqwen3' late-interaction retriever.*supported: \['colmodernvbert', 'colpali'",
    ):
        MultiVectorEncoder(folder, device="cpu")


def test_a_foreign_module_in_a_v6_retriever_folder_is_refused(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "extra"
    shutil.copytree(folders["v6"], folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelFormatError, match="'Normalize' does not belong"):
        MultiVectorEncoder(folder, device="cpu")


def test_bad_inputs_are_named(model: MultiVectorEncoder) -> None:
    with pytest.raises(omniembed.InvalidInputError, match="index 1"):
        model.encode(["a query", 3])
    with pytest.raises(ValueError, match="task must be"):
        model.encode("a query", task="passage")  # type: ignore[arg-type]


def test_colqwen2_rows(folders: dict[str, Path], pages: list[Path]) -> None:
    model = MultiVectorEncoder(folders["colqwen2"], device="cpu")
    tokenizer = model.tokenizer
    # A 32x32 page: 4x4 patches of 8 pixels, merged 2x2, so 4 <|image_pad|> tokens in the visual prompt.
    prompt = model.processor.visual_prompt_prefix.replace("<|image_pad|>", "<|image_pad|>" * 4)
    page = model.encode_document(pages[0])
    assert page.shape == (len(tokenizer(prompt, add_special_tokens=False)["input_ids"]), 16)
    query = f"Query: {QUERIES[1]}{tokenizer.pad_token * 10}\n"
    expected = len(tokenizer(query, add_special_tokens=False)["input_ids"])
    assert model.encode_query(QUERIES)[1].shape == (expected, 16)


def test_colmodernvbert_equals_its_model_called_directly(folders: dict[str, Path], pages: list[Path]) -> None:
    # The reference library 6.2 calls this processor without the visual prompt for images, which
    # fails, so the expected matrices come from the transformers model and processor themselves.
    import transformers

    folder = folders["colmodernvbert"]
    model = MultiVectorEncoder(folder, device="cpu")
    processor = transformers.ColModernVBertProcessor.from_pretrained(folder, backend="pil")
    raw = transformers.ColModernVBertForRetrieval.from_pretrained(folder).eval()
    images = [Image.open(path).convert("RGB") for path in pages[:3]]
    for batch, mine in (
        (processor.process_images(images=images, return_tensors="pt"), model.encode_document(pages[:3])),
        (processor.process_queries(text=QUERIES, return_tensors="pt"), model.encode_query(QUERIES)),
    ):
        with torch.inference_mode():
            embeddings = raw(**batch).embeddings
        for row, mask, matrix in zip(embeddings, batch["attention_mask"].bool(), mine, strict=True):
            np.testing.assert_allclose(matrix, row[mask].numpy(), atol=1e-5)
    image_rows = model.encode_document(pages[0])
    ids = processor.process_images(images=images[:1], return_tensors="pt")["input_ids"][0]
    assert image_rows.shape[0] == len(ids)
    assert int((ids == processor.image_token_id).sum()) == 4
