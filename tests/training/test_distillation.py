"""``parallel_sentences_dataset``: one row per (source, translation) labelled with the teacher's
embedding of the source, ready for ``MSELoss``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from omniembed import SentenceTransformer

pytest.importorskip("datasets")
from omniembed.training import losses
from omniembed.training.data import check_dataset
from omniembed.training.distillation import parallel_sentences_dataset

SOURCES = ["A man plays the guitar.", "The cat sleeps.", "The cat sleeps.", ""]
GERMAN = ["Ein Mann spielt Gitarre.", "Die Katze schläft.", "Die Katze schläft.", "Leer."]
FRENCH = ["Un homme joue de la guitare.", "Le chat dort.", "Le chat dort.", "Vide."]


@pytest.fixture(scope="module")
def teacher(tiny_model: Callable[..., Path]) -> SentenceTransformer:
    return SentenceTransformer(tiny_model("bert"), device="cpu")


def test_rows_carry_the_teachers_embedding_of_the_source(teacher: SentenceTransformer) -> None:
    data = parallel_sentences_dataset(teacher, SOURCES, {"de": GERMAN, "fr": FRENCH})
    assert data.column_names == ["source", "translation", "label"]
    assert data["translation"] == [GERMAN[0], GERMAN[1], FRENCH[0], FRENCH[1]]  # duplicates and empties gone
    expected = teacher.encode(data["source"])
    np.testing.assert_allclose(np.asarray(data["label"]), expected, atol=1e-6)
    check_dataset(data, losses.MSELoss(teacher).columns, "MSELoss", "train")


def test_one_list_of_translations_and_duplicates_kept(teacher: SentenceTransformer) -> None:
    data = parallel_sentences_dataset(teacher, SOURCES, GERMAN, deduplicate=False)
    assert data["source"] == SOURCES[:3]


def test_misaligned_translations_are_refused(teacher: SentenceTransformer) -> None:
    with pytest.raises(ValueError, match=r"translations\['de'\] has 2 rows but sources has 4"):
        parallel_sentences_dataset(teacher, SOURCES, {"de": GERMAN[:2]})
    with pytest.raises(ValueError, match="no \\(source, translation\\) pair"):
        parallel_sentences_dataset(teacher, ["", " "], ["a", "b"])
