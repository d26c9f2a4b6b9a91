"""BM25 quality by text analysis: Cranfield nDCG@10 for each tokenization, stemmer and stop-word choice.

The store's keyword index alone (no model): the 1,400 Cranfield documents with ``title`` and ``body``
as two text properties (as ``benchmarks/store.py`` indexes them), the 225 queries searched over both
with boost 1, nDCG@10 with linear gains over the graded qrels. Runs in a few seconds.

    PYTHONPATH=src python benchmarks/keyword_quality.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omniembed.store.engines.keyword import KeywordIndex
from omniembed.store.schema import BM25Config
from store import load_cranfield, ndcg_at_10

# the classic 33-word English stop set of Lucene-based engines
SHORT_ENGLISH = [
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "for",
    "if",
    "in",
    "into",
    "is",
    "it",
    "no",
    "not",
    "of",
    "on",
    "or",
    "such",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "will",
    "with",
]

CONFIGS: dict[str, tuple[str, str | None, str | tuple[str, ...] | None]] = {
    "word (before this change)": ("word", None, None),
    "lowercase": ("lowercase", None, None),
    "whitespace": ("whitespace", None, None),
    "field": ("field", None, None),
    "word + english stemmer": ("word", "english", None),
    "word + porter stemmer": ("word", "porter", None),
    "word + english stop words (179)": ("word", None, "english"),
    "word + 33 classic stop words": ("word", None, tuple(SHORT_ENGLISH)),
    "word + english stemmer + 33 classic stop words": ("word", "english", tuple(SHORT_ENGLISH)),
    "word + english stemmer + english stop words (the default)": ("word", "english", "english"),
    "lowercase + english stemmer + english stop words": ("lowercase", "english", "english"),
}


def evaluate(tokenization: str, stemmer: str | None, stopwords: str | tuple[str, ...] | None) -> float:
    """Mean nDCG@10 over the Cranfield queries for one analysis."""
    corpus, queries, qrels = load_cranfield()
    ids = list(corpus)
    config = BM25Config(stemmer=stemmer, stopwords=stopwords)
    index = KeywordIndex(["title", "body"], config, dict.fromkeys(["title", "body"], tokenization))
    index.add_many(list(range(len(ids))), [corpus[doc] for doc in ids])
    scores = []
    for query_id, text in queries.items():
        slots, _ = index.search(text, {"title": 1.0, "body": 1.0}, 10)
        scores.append(ndcg_at_10([ids[slot] for slot in slots], qrels[query_id]))
    return statistics.mean(scores)


def main() -> None:
    print("| analysis | Cranfield nDCG@10 |\n| --- | --- |")
    for name, options in CONFIGS.items():
        print(f"| {name} | {evaluate(*options):.4f} |")


if __name__ == "__main__":
    main()
