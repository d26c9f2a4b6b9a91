"""A corpus of real text with mixed lengths, for encoding benchmarks.

Short sentences come from the STS benchmark (train and dev), long documents from the
Cranfield collection (BEIR format), both in the repository's ``data/`` (see ``data/README.md``).
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


def sts_sentences(data_dir: Path = DATA_DIR) -> list[str]:
    """Unique STS-B sentences (columns 5 and 6) from the train and dev files, in file order."""
    sentences: dict[str, None] = {}
    for name in STS_FILES:
        with (data_dir / "stsbenchmark" / name).open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                fields = row[:7]
                if len(fields) < 7:
                    continue
                for sentence in (fields[5].strip(), fields[6].strip()):
                    if sentence:
                        sentences.setdefault(sentence, None)
    return list(sentences)


def mixed_corpus(limit: int | None = None, seed: int = 0) -> list[str]:
    """Cranfield documents plus STS-B sentences, shuffled with ``seed``; the first ``limit`` if given."""
    texts = cranfield_documents() + sts_sentences()
    random.Random(seed).shuffle(texts)
    return texts if limit is None else texts[:limit]


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
