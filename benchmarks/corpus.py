"""Corpora of real text for encoding benchmarks: short sentences, mixed lengths, long documents.

Short sentences come from the STS benchmark (train and dev), long documents from the
Cranfield collection (BEIR format), both in the repository's ``data/`` (see ``data/README.md``).
``build_corpus`` names the three corpora the speed benchmarks compare: ``short`` (STS-B sentences),
``mixed`` (both, shuffled) and ``long`` (the longest Cranfield documents by the model's tokenizer).
"""

from __future__ import annotations

import csv
import json
import random
import statistics
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
STS_FILES = ("sts-train.csv", "sts-dev.csv")
CORPORA = ("short", "mixed", "long")
DEFAULT_SIZES = {"short": 1500, "mixed": 5000, "long": 400}
"""Texts in each corpus unless a limit is given (``long`` has 662 documents of 200 tokens or more)."""
LONG_MIN_TOKENS = 200
"""The fewest tokens (all-MiniLM-L6-v2's tokenizer, special tokens included) of a ``long`` document."""


def cranfield_documents(data_dir: Path = DATA_DIR) -> list[str]:
    """Cranfield documents as ``title + " " + text``, skipping empty ones."""
    documents = []
    with (data_dir / "cranfield" / "beir" / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            text = f"{record.get('title', '')} {record.get('text', '')}".strip()
            if text:
                documents.append(text)
    return documents


def sts_sentences(data_dir: Path = DATA_DIR, files: tuple[str, ...] = STS_FILES) -> list[str]:
    """Unique STS-B sentences (columns 5 and 6) from ``files`` (train and dev), in file order."""
    sentences: dict[str, None] = {}
    for name in files:
        with (data_dir / "stsbenchmark" / name).open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                fields = row[:7]
                if len(fields) < 7:
                    continue
                for sentence in (fields[5].strip(), fields[6].strip()):
                    if sentence:
                        sentences.setdefault(sentence, None)
    return list(sentences)


def calibration_passages(count: int = 400, seed: int = 0) -> list[str]:
    """Texts to calibrate static int8 on: STS-B train sentences only (Cranfield and STS-B dev judge
    quality), joined into passages of 1 to 24 sentences, so that their lengths run from a short
    query to a document truncated at 256 tokens, as the corpora's do."""
    sentences = sts_sentences(files=("sts-train.csv",))
    rng = random.Random(seed)
    return [" ".join(rng.sample(sentences, rng.choice((1, 1, 2, 4, 8, 16, 24)))) for _ in range(count)]


def mixed_corpus(limit: int | None = None, seed: int = 0) -> list[str]:
    """Cranfield documents plus STS-B sentences, shuffled with ``seed``; the first ``limit`` if given."""
    texts = cranfield_documents() + sts_sentences()
    random.Random(seed).shuffle(texts)
    return texts if limit is None else texts[:limit]


def short_corpus(limit: int | None = None, seed: int = 0) -> list[str]:
    """STS-B sentences (about 15 tokens each), shuffled with ``seed``; the first ``limit`` if given."""
    texts = sts_sentences()
    random.Random(seed).shuffle(texts)
    return texts if limit is None else texts[:limit]


def long_corpus(
    tokenizer: Any, limit: int | None = None, min_tokens: int = LONG_MIN_TOKENS, seed: int = 0
) -> list[str]:
    """The longest Cranfield documents with at least ``min_tokens`` tokens (untruncated, counted by
    ``tokenizer``): the ``limit`` longest if given, shuffled with ``seed``."""
    documents = cranfield_documents()
    lengths = token_lengths(documents, tokenizer)
    ranked = sorted(range(len(documents)), key=lambda index: -lengths[index])
    kept = [documents[index] for index in ranked if lengths[index] >= min_tokens][:limit]
    random.Random(seed).shuffle(kept)
    return kept


def build_corpus(name: str, tokenizer: Any, limit: int | None = None) -> list[str]:
    """The corpus ``name`` (one of ``CORPORA``) of ``limit`` texts, default ``DEFAULT_SIZES[name]``."""
    if name not in CORPORA:
        raise ValueError(f"corpus {name!r} is not one of {CORPORA}")
    size = DEFAULT_SIZES[name] if limit is None else limit
    if name == "short":
        return short_corpus(size)
    if name == "long":
        return long_corpus(tokenizer, size)
    return mixed_corpus(size)


def token_lengths(texts: list[str], tokenizer: Any, max_length: int | None = None) -> list[int]:
    """Token count of each text (special tokens included), truncated at ``max_length`` if given."""
    if max_length is None:
        encoded = tokenizer(texts, add_special_tokens=True, verbose=False)
    else:
        encoded = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_length)
    return [len(ids) for ids in encoded["input_ids"]]


def corpus_stats(texts: list[str], tokenizer: Any, max_length: int | None = None) -> dict[str, Any]:
    """Count and token-length statistics (untruncated); with ``max_length``, how many exceed it."""
    lengths = token_lengths(texts, tokenizer)
    stats: dict[str, Any] = {
        "count": len(texts),
        "min_tokens": min(lengths, default=0),
        "mean_tokens": statistics.fmean(lengths) if lengths else 0.0,
        "median_tokens": statistics.median(lengths) if lengths else 0.0,
        "max_tokens": max(lengths, default=0),
    }
    if max_length is not None:
        stats["over_max_length"] = sum(length > max_length for length in lengths)
    return stats
