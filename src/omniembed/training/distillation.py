"""Multilingual knowledge distillation: training rows that teach a student to put a sentence and
each of its translations where a teacher puts the sentence.

The recipe: a teacher (say all-MiniLM-L6-v2, good in English), a student (the same model, or a
multilingual one) and parallel ``(source, translation)`` sentences. Each row holds the source, one
translation and the teacher's embedding of the source as its label; ``losses.MSELoss`` pulls the
student's embeddings of both texts onto that label. ``evaluators.TranslationEvaluator`` and
``evaluators.MSEEvaluator`` on held-out pairs measure progress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer


def parallel_sentences_dataset(
    teacher: SentenceTransformer,
    sources: Sequence[str],
    translations: Mapping[str, Sequence[str]] | Sequence[str],
    *,
    batch_size: int = 64,
    deduplicate: bool = True,
    show_progress_bar: bool = False,
) -> Any:
    """Return a ``datasets.Dataset`` with columns ``source``, ``translation`` and ``label``.

    Args:
        teacher: embeds each distinct source sentence once; its embedding is the row's label.
        sources: sentences in the teacher's language.
        translations: row-aligned translations of ``sources``: one list, or a list per language
            (``{"de": [...], "fr": [...]}``), giving one row per source and language.
        batch_size: for the teacher's encoding.
        deduplicate: keep one row per distinct (source, translation) pair.
        show_progress_bar: show the teacher's encoding progress.

    Rows whose source or translation is empty are skipped. Train with ``losses.MSELoss(student)``.

    Raises:
        ValueError: a translation list's length differs from ``sources``'s, or no row is left.
    """
    from datasets import Dataset

    by_language = {"": translations} if not isinstance(translations, Mapping) else dict(translations)
    pairs: list[tuple[str, str]] = []
    for language, texts in by_language.items():
        if isinstance(texts, str) or len(texts) != len(sources):
            count = "one string" if isinstance(texts, str) else f"{len(texts)} rows"
            name = f"translations[{language!r}]" if language else "translations"
            raise ValueError(
                f"{name} has {count} but sources has {len(sources)}; give one translation per source"
            )
        pairs += [(s, t) for s, t in zip(sources, texts, strict=True) if s.strip() and t.strip()]
    if deduplicate:
        pairs = list(dict.fromkeys(pairs))
    if not pairs:
        raise ValueError("no (source, translation) pair is left: every source or translation is empty")
    distinct = list(dict.fromkeys(source for source, _ in pairs))
    embeddings = teacher.encode(
        distinct, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=show_progress_bar
    )
    row_of = {source: row for row, source in enumerate(distinct)}
    labels = np.asarray(embeddings, dtype=np.float32)[[row_of[source] for source, _ in pairs]]
    return Dataset.from_dict(
        {"source": [s for s, _ in pairs], "translation": [t for _, t in pairs], "label": list(labels)}
    )
