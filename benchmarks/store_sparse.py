"""Sparse vectors in the store at scale: import, sparse search p50 and the fused dense + sparse + BM25
hybrid p50, through the collection API on an embedded database folder.

Synthetic data, no model. Each object has:

- a text of 20 words drawn with their real frequencies from the Cranfield and STS-B vocabulary
  (``benchmarks/corpus.py``), for BM25;
- a dense 384-dim vector, random normal (a cosine named vector with the default index: HNSW above
  10,000 objects, built during the import and waited for before timing; ``--flat`` keeps it exact);
- a SPLADE-like sparse vector: 100 to 200 distinct token ids (uniform) out of a 30,522-token vocabulary,
  drawn by a Zipf law (token of rank ``r`` with probability ``1 / r``, ranks mapped to ids by a fixed
  random permutation), weights ``log1p`` of Gamma(2, 1) draws.

Queries: 200 sparse vectors of 20 to 30 tokens drawn the same way, with 3 to 5 words of text and a
dense vector each. Timed: ``near_vector`` on the sparse vector (limit 10), the index alone (the
inverted-index search without fetching objects), and ``hybrid`` with ``weights={"dense": 1,
"sparse": 1, "bm25": 1}`` (limit 10, 100 candidates per source); dense and BM25 alone for scale. The
first 20 sparse answers are checked against a brute-force dot product (scipy CSR).

    PYTHONPATH=src python benchmarks/store_sparse.py --objects 100000
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

import omniembed as oe
from omniembed.store.config import IndexConfig

from corpus import cranfield_documents, sts_sentences

VOCAB = 30_522
DIMS = 384
BATCH = 2_000


def zipf_tokens(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Token ids by rank (a random permutation) and the Zipf probability of each rank."""
    p = 1.0 / np.arange(1, VOCAB + 1)
    return rng.permutation(VOCAB), p / p.sum()


def sparse_vectors(
    rng: np.random.Generator, ids: np.ndarray, p: np.ndarray, count: int, low: int, high: int
) -> list[dict[str, np.ndarray]]:
    """``count`` vectors of ``low`` to ``high`` distinct Zipf-drawn tokens with log1p(Gamma) weights."""
    sizes = rng.integers(low, high + 1, size=count)
    drawn = rng.choice(VOCAB, size=(count, 3 * high), p=p)  # with replacement; the first distinct ones kept
    out = []
    for row, size in zip(drawn, sizes.tolist(), strict=True):
        _, first = np.unique(row, return_index=True)
        tokens = np.sort(ids[row[np.sort(first)[:size]]])
        weights = np.log1p(rng.gamma(2.0, 1.0, size=len(tokens))).astype(np.float32) + np.float32(1e-3)
        out.append({"indices": tokens, "values": weights})
    return out


def words_sampler(rng: np.random.Generator) -> Callable[[int, int], list[str]]:
    counts = Counter(re.findall(r"\S+", " ".join(cranfield_documents() + sts_sentences())))
    words = np.array(list(counts))
    p = np.array(list(counts.values()), dtype=np.float64)
    p /= p.sum()

    def texts(count: int, length: int) -> list[str]:
        return [" ".join(row) for row in words[rng.choice(len(words), size=(count, length), p=p)].tolist()]

    return texts


def p50_ms(run: Callable[[Any], Any], items: list[Any]) -> float:
    times = []
    for item in items:
        began = time.perf_counter()
        run(item)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--flat", action="store_true", help="exact dense search (no HNSW graph)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ids, p = zipf_tokens(rng)
    texts = words_sampler(rng)
    staging = tempfile.TemporaryDirectory()  # about 5 KB an object; removed at the end
    folder = Path(staging.name)
    db = oe.connect(folder / "db")
    docs = db.collections.create(
        "Doc",
        {"body": "text"},
        {"dense": oe.SelfProvided(DIMS), "sp": oe.SelfProvided(VOCAB, sparse=True)},
        index=IndexConfig(flat_threshold=args.objects + 1) if args.flat else None,
    )
    held: list[dict[str, np.ndarray]] = []
    adding, nonzeros = 0.0, 0
    for start in range(0, args.objects, BATCH):
        count = min(BATCH, args.objects - start)
        sparse = sparse_vectors(rng, ids, p, count, 100, 200)
        dense = rng.normal(size=(count, DIMS)).astype(np.float32)
        batch = [
            oe.DataObject({"body": body}, vectors={"dense": d, "sp": s})
            for body, d, s in zip(texts(count, 20), dense, sparse, strict=True)
        ]
        began = time.perf_counter()
        result = docs.data.insert_many(batch, show_progress=False)
        adding += time.perf_counter() - began
        assert not result.errors, result.errors
        held += sparse
        nonzeros += sum(len(s["indices"]) for s in sparse)
    print(f"objects {args.objects}, sparse nonzeros {nonzeros} ({nonzeros / args.objects:.0f} per object)")
    print(f"import: {adding:.1f} s ({args.objects / adding:.0f} objects/s, dense + sparse + text)")
    began = time.perf_counter()
    db.backend.wait_indexed()  # type: ignore[attr-defined]
    print(f"waited {time.perf_counter() - began:.1f} s more for the HNSW graph")
    began = time.perf_counter()
    db.close()
    closing = time.perf_counter() - began
    began = time.perf_counter()
    db = oe.connect(folder / "db")
    opening = time.perf_counter() - began
    docs = db.collections.get("Doc")
    print(f"close (saves the indexes): {closing:.2f} s; open: {opening:.2f} s")

    queries = sparse_vectors(rng, ids, p, args.queries, 20, 30)
    words = [texts(1, int(rng.integers(3, 6)))[0] for _ in range(args.queries)]
    dense_queries = rng.normal(size=(args.queries, DIMS)).astype(np.float32)
    matrix = scipy.sparse.csr_matrix(
        (
            np.concatenate([s["values"] for s in held]).astype(np.float64),
            np.concatenate([s["indices"] for s in held]),
            np.concatenate([[0], np.cumsum([len(s["indices"]) for s in held])]),
        ),
        shape=(len(held), VOCAB),
    )
    order = {obj.uuid: i for i, obj in enumerate(docs.query.fetch_objects())}
    for query in queries[:20]:
        column = np.zeros(VOCAB)
        column[query["indices"]] = query["values"]
        scores = matrix @ column
        expected = np.lexsort((np.arange(len(scores)), -scores))[:10]
        got = [order[u] for u in docs.query.near_vector(query, target_vector="sp", limit=10).uuids]
        assert got == expected.tolist(), (got, expected.tolist())
    print("sparse top 10 equal brute force on 20 queries")

    index = db.backend.tables["Doc"].indexes["sp"]  # type: ignore[attr-defined]
    checked = [
        oe.sparse.SparseVector(tuple(q["indices"].tolist()), tuple(q["values"].tolist())) for q in queries
    ]
    rows = [
        ("sparse index alone", p50_ms(lambda q: index.search(q, 10), checked)),
        (
            "sparse near_vector",
            p50_ms(lambda q: docs.query.near_vector(q, target_vector="sp", limit=10), queries),
        ),
        (
            "dense near_vector",
            p50_ms(lambda q: docs.query.near_vector(q, target_vector="dense", limit=10), list(dense_queries)),
        ),
        ("bm25", p50_ms(lambda w: docs.query.bm25(w, limit=10), words)),
    ]
    both = list(zip(words, dense_queries, queries, strict=True))
    weights = {"dense": 1.0, "sparse": 1.0, "bm25": 1.0}

    def hybrid(item: tuple[str, np.ndarray, dict[str, np.ndarray]]) -> Any:
        text, dense, sparse = item
        return docs.query.hybrid(text, weights=weights, vector={"dense": dense, "sparse": sparse}, limit=10)

    rows.append(("hybrid dense + sparse + bm25", p50_ms(hybrid, both)))
    for name, value in rows:
        print(f"{name:32s} p50 {value:7.2f} ms")
    db.close()
    staging.cleanup()


if __name__ == "__main__":
    main()
