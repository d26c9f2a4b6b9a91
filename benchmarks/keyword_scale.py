"""Keyword index at scale: bulk add rate, save, load (memory-mapped), RSS after load, bm25 query p50,
and a save after a few more objects (it writes only a new segment).

Synthetic documents: ``--objects`` texts of 40 words each, every word drawn at random with its real
frequency from the vocabulary of the Cranfield documents and STS-B sentences (``benchmarks/corpus.py``),
so term frequencies follow a real distribution. One text property, the default analysis (``word``,
English stemmer and stop words). Queries: 200 of 3 to 5 words drawn the same way.

    PYTHONPATH=src python benchmarks/keyword_scale.py --objects 1000000 [--engine-saves]
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omniembed.store.engines.keyword import KeywordIndex

from corpus import cranfield_documents, sts_sentences

BATCH = 10_000


def rss_mb() -> float:
    """Resident memory of this process, MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generator(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Words of the real corpora and their probabilities."""
    counts = Counter(re.findall(r"\S+", " ".join(cranfield_documents() + sts_sentences())))
    words = np.array(list(counts))
    weights = np.array(list(counts.values()), dtype=np.float64)
    return words, weights / weights.sum(), np.random.default_rng(seed)


def texts(words: np.ndarray, p: np.ndarray, rng: np.random.Generator, count: int, length: int) -> list[str]:
    """``count`` texts of ``length`` random words."""
    drawn = rng.choice(len(words), size=(count, length), p=p)
    return [" ".join(row) for row in words[drawn].tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=300_000)
    parser.add_argument(
        "--engine-saves",
        action="store_true",
        help="also save during the adds as the engine does (every max(50,000, count / 4) objects)",
    )
    args = parser.parse_args()
    words, p, rng = generator()
    index = KeywordIndex(["text"])
    adding, saves, unsaved = 0.0, [], 0
    staging = tempfile.TemporaryDirectory()
    for start in range(0, args.objects, BATCH):
        count = min(BATCH, args.objects - start)
        batch = [{"text": text} for text in texts(words, p, rng, count, 40)]
        began = time.perf_counter()
        index.add_many(range(start, start + count), batch)
        adding += time.perf_counter() - began
        unsaved += count
        if args.engine_saves and unsaved >= max(50_000, index.count // 4):
            began = time.perf_counter()
            index.save(Path(staging.name) / "docs", {"seq": start + count})
            saves.append(time.perf_counter() - began)
            unsaved = 0
    if saves:
        print(
            f"engine-schedule saves during the adds: {len(saves)}, {sum(saves):.1f} s in all "
            f"(longest {max(saves):.1f} s, {len(index.segments)} segments)"
        )
    staging.cleanup()
    began = time.perf_counter()
    index.fields["text"].flush()
    adding += time.perf_counter() - began
    print(f"add_many: {args.objects} objects in {adding:.1f} s = {args.objects / adding:,.0f} objects/s")
    queries = [" ".join(words[rng.choice(len(words), size=rng.integers(3, 6), p=p)]) for _ in range(200)]
    with tempfile.TemporaryDirectory() as folder:
        prefix = Path(folder) / "docs"
        began = time.perf_counter()
        index.save(prefix, {"seq": args.objects})
        size = sum(f.stat().st_size for f in Path(folder).iterdir()) / 1e6
        print(f"save: {time.perf_counter() - began:.1f} s, {size:.0f} MB")
        del index
        gc.collect()
        before = rss_mb()
        began = time.perf_counter()
        loaded = KeywordIndex.load(prefix, ["text"])
        opened = time.perf_counter() - began
        assert loaded is not None
        reopened, _ = loaded
        print(f"load: {opened * 1000:.0f} ms, RSS +{rss_mb() - before:.1f} MB")
        timings = []
        for query in queries:
            began = time.perf_counter()
            reopened.search(query, {"text": 1.0}, 10)
            timings.append(time.perf_counter() - began)
        print(
            f"bm25 query (3-5 words, 200 queries): p50 {statistics.median(timings) * 1000:.2f} ms, "
            f"p90 {np.percentile(timings, 90) * 1000:.2f} ms; RSS after queries +{rss_mb() - before:.0f} MB"
        )
        began = time.perf_counter()
        reopened.add_many(
            range(args.objects, args.objects + 1000), [{"text": t} for t in texts(words, p, rng, 1000, 40)]
        )
        reopened.search(queries[0], {"text": 1.0}, 10)
        print(f"1,000 objects added after load and a query: {(time.perf_counter() - began) * 1000:.0f} ms")
        more = [{"text": t} for t in texts(words, p, rng, 10_000, 40)]
        reopened.add_many(range(args.objects + 1000, args.objects + 11_000), more)
        began = time.perf_counter()
        reopened.save(prefix, {"seq": args.objects + 11_000})
        print(
            f"save after 11,000 more objects (a new segment): {(time.perf_counter() - began) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
