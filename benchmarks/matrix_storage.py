"""Page matrices kept as float16 or int8: recall@10 of exact MaxSim against float32, and bytes per page.

Run from the repository root::

    python benchmarks/matrix_storage.py --pages 10000 [--queries 50]

No late-interaction weights can be downloaded here, so pages are synthetic, shaped like a
ColPali-style page: 1,000 L2-normalised 128-dim token vectors each. A page mixes 6 of 256 random
"topics" (token = topic + noise, normalised), so pages share structure and a query has real
neighbours; a query is 32 tokens: 20 drawn from one page plus noise and 12 from random topics. Each page
is encoded and decoded with the store's own codec (``omniembed.store.engines.embedded.matrices``) and
scored against every query by exact MaxSim, as the store rescores candidates. Recall@10 is the overlap
of each storage's top 10 with float32's; ``max |score error|`` is the largest MaxSim difference.
Pages are generated a chunk at a time from per-page seeds, so memory stays flat at any count.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np

from omniembed.store.engines.embedded import matrices

TOKENS, DIMS, TOPICS, PER_PAGE = 1000, 128, 256, 6
STORAGES = ("float32", "float16", "int8")


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def page(index: int, topics: np.ndarray) -> np.ndarray:
    """Page ``index``'s (1000 x 128) matrix, the same for the same index on every run."""
    rng = np.random.default_rng(1_000_003 + index)
    chosen = topics[rng.choice(TOPICS, PER_PAGE, replace=False)]
    base = chosen[rng.integers(0, PER_PAGE, TOKENS)]
    return unit(base + 0.9 * rng.standard_normal((TOKENS, DIMS), dtype=np.float32) / np.sqrt(DIMS) * 4)


def queries(count: int, pages: int, topics: np.ndarray) -> np.ndarray:
    """``count`` queries of 32 tokens: 20 near tokens of one page, 12 near random topics."""
    rng = np.random.default_rng(7)
    out = []
    for _ in range(count):
        source = page(int(rng.integers(0, pages)), topics)
        near = source[rng.choice(TOKENS, 20, replace=False)]
        other = topics[rng.integers(0, TOPICS, 12)]
        tokens = np.concatenate([near, other]) + 0.3 * rng.standard_normal((32, DIMS)) / np.sqrt(DIMS) * 4
        out.append(unit(tokens))
    return np.stack(out)


def run(pages: int, count: int, chunk: int) -> None:
    topics = unit(np.random.default_rng(0).standard_normal((TOPICS, DIMS)))
    asked = queries(count, pages, topics)
    flat = asked.reshape(-1, DIMS)  # (queries * 32, 128)
    scores = {storage: np.zeros((count, pages), dtype=np.float64) for storage in STORAGES}
    sizes = dict.fromkeys(STORAGES, 0)
    seconds = dict.fromkeys(STORAGES, 0.0)
    start = time.perf_counter()
    for first in range(0, pages, chunk):
        block = [page(i, topics) for i in range(first, min(first + chunk, pages))]
        for storage in STORAGES:
            began = time.perf_counter()
            blobs = [matrices.encode(m, storage) for m in block]
            decoded = np.stack([matrices.decode(b, storage, DIMS) for b in blobs])
            seconds[storage] += time.perf_counter() - began
            sizes[storage] += sum(len(b) for b in blobs)
            sims = flat @ decoded.reshape(-1, DIMS).T  # (queries * 32, pages * 1000)
            best = sims.reshape(count, 32, len(block), TOKENS).max(axis=3).sum(axis=1)
            scores[storage][:, first : first + len(block)] = best
        if first and first % (chunk * 20) == 0:
            print(f"  {first} pages, {time.perf_counter() - start:.0f} s", flush=True)
    reference = np.argsort(-scores["float32"], axis=1)[:, :10]
    machine = platform.processor() or platform.machine()
    print(f"\n{pages} pages of {TOKENS}x{DIMS}, {count} queries of 32 tokens; {machine}")
    print(f"total {time.perf_counter() - start:.0f} s\n")
    print(
        "| storage | bytes per page | vs float32 | recall@10 vs float32 | max abs score error "
        "| encode+decode ms/page |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for storage in STORAGES:
        top = np.argsort(-scores[storage], axis=1)[:, :10]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, reference, strict=True)])
        error = float(np.abs(scores[storage] - scores["float32"]).max())
        per_page = sizes[storage] / pages
        print(
            f"| {storage} | {per_page:,.0f} | {per_page / (sizes['float32'] / pages):.3f} | {recall:.4f} | "
            f"{error:.2e} | {1000 * seconds[storage] / pages:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=10, help="pages scored together (memory)")
    args = parser.parse_args()
    run(args.pages, args.queries, args.chunk)


if __name__ == "__main__":
    main()
