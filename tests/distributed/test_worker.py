"""The embedding actor's class on its own (no Ray running): outputs, bad rows, a model that cannot load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.distributed.rows import why_bad
from omniembed.distributed.spec import EmbedSpec
from omniembed.distributed.worker import Embedder
from omniembed.errors import InvalidInputError, PoolWorkerError

from helpers.numbers import cosines

pa = pytest.importorskip("pyarrow")

TEXTS = ["a cat sits on the mat", "stock markets fell today", "how do magnets work?", "x"]


def table(column: str, values: list[Any]) -> Any:
    return pa.table({"id": list(range(len(values))), column: values})


def test_image_paths_and_bytes_equal_in_process(
    tiny_clip: Callable[..., Path], cifar: list[tuple[Path, str]]
) -> None:
    folder, paths = tiny_clip(), [str(path) for path, _ in cifar[:3]]
    worker = Embedder(EmbedSpec(str(folder), column="image", modality="image"))
    expected = oe.SentenceTransformer(folder, device="cpu").encode([{"image": p} for p in paths])
    for values in (paths, [Path(p).read_bytes() for p in paths]):
        out = worker(table("image", values))
        assert out.column_names == ["id", "image", "embedding"]
        assert pa.types.is_fixed_size_list(out.column("embedding").type)
        assert cosines(np.array(out.column("embedding").to_pylist()), expected).min() >= 0.99999


def test_a_row_the_model_refuses_is_named_or_skipped(tiny_clip: Callable[..., Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    values = [str(tmp_path / "missing.png"), str(broken)]
    refusing = Embedder(EmbedSpec(str(tiny_clip()), column="image", modality="image", key_column="id"))
    with pytest.raises(InvalidInputError, match=r"row id=0: column 'image' cannot be embedded"):
        refusing(table("image", values))
    skipping = Embedder(EmbedSpec(str(tiny_clip()), column="image", modality="image", on_bad="skip"))
    assert skipping(table("image", values)).num_rows == 0


def test_null_rows_are_refused_or_skipped(tiny_model: Callable[..., Path]) -> None:
    values = ["fine", None, "good", None]
    spec = EmbedSpec(str(tiny_model("bert")), key_column="id")
    with pytest.raises(InvalidInputError, match=r"row id=1: column 'text' is null \(2 bad row\(s\)"):
        Embedder(spec)(table("text", values))
    kept = Embedder(EmbedSpec(str(tiny_model("bert")), on_bad="skip"))(table("text", values))
    assert kept.column("id").to_pylist() == [0, 2]


@pytest.mark.parametrize("options", [{}, {"precision": "ubinary"}, {"truncate_dim": 8}])
def test_a_batch_of_only_skipped_rows_keeps_the_column_type(
    tiny_model: Callable[..., Path], options: dict[str, Any]
) -> None:
    worker = Embedder(EmbedSpec(str(tiny_model("bert")), on_bad="skip", encode_kwargs=options))
    full, empty = worker(table("text", TEXTS)), worker(table("text", [None, None]))
    assert empty.num_rows == 0
    assert empty.schema.field("embedding").type == full.schema.field("embedding").type


def test_sparse_and_multi_vector_columns_equal_in_process(tmp_path: Path) -> None:
    from helpers.models import build_colbert
    from helpers.sparse import build_splade

    splade, colbert = build_splade(tmp_path / "splade"), build_colbert(tmp_path / "colbert")
    sparse = Embedder(EmbedSpec(str(splade), model_class="SparseEncoder"))(table("text", TEXTS))
    dense = oe.SparseEncoder(splade, device="cpu").encode(TEXTS, convert_to_sparse_tensor=False).numpy()
    for row, expected in zip(sparse.column("embedding").to_pylist(), dense, strict=True):
        rebuilt = np.zeros_like(expected)
        rebuilt[row["indices"]] = row["values"]
        np.testing.assert_allclose(rebuilt, expected, rtol=1e-5, atol=1e-6)
    spec = EmbedSpec(str(colbert), model_class="MultiVectorEncoder", task="query")
    tokens = Embedder(spec)(table("text", TEXTS)).column("embedding").to_pylist()
    matrices = oe.MultiVectorEncoder(colbert, device="cpu").encode_query(TEXTS)
    for row, expected in zip(tokens, matrices, strict=True):
        np.testing.assert_allclose(np.array(row), expected, rtol=1e-5, atol=1e-6)


def test_a_model_that_cannot_load_names_the_worker(tmp_path: Path) -> None:
    with pytest.raises(PoolWorkerError, match=r"worker pid \d+ on .* could not load SentenceTransformer"):
        Embedder(EmbedSpec(str(tmp_path / "nothing-here")))


def test_options_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="would overwrite the input column"):
        EmbedSpec("m", output_column="text").check()
    with pytest.raises(ValueError, match="SparseEncoder embeds texts only"):
        EmbedSpec("m", model_class="SparseEncoder", modality="image").check()
    with pytest.raises(ValueError, match="num_threads follows num_cpus"):
        EmbedSpec("m", model_kwargs={"num_threads": 4}).check()
    assert EmbedSpec("m", num_cpus=2.5).threads == 2
    assert why_bad(b"\x89PNG", "image") is None
    assert why_bad(3.5, "image") is not None
