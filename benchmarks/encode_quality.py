"""Retrieval and similarity quality per configuration: do the fast modes lose accuracy?

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/encode_quality.py \
        [--configs ref,ours,ours-onnx,ours-int8,ours-int8-static,ours-bf16]

For each configuration of ``encode_speed.CONFIGS``: Cranfield (BEIR) nDCG@10 with cosine
ranking over all 1,400 documents for the 225 queries, and STS-B dev Spearman correlation between
cosine similarity and the gold scores. The loss column is relative to the reference default
(fp32), or to the first configuration listed when ``ref`` is not. The output is markdown,
ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from corpus import DATA_DIR
from encode_speed import BY_KEY, load_models, markdown_table, model_folder

DEFAULT_CONFIGS = "ref,ours,ours-onnx,ours-int8,ours-int8-static,ours-bf16"


def cranfield() -> tuple[list[str], list[str], list[str], list[str], dict[str, dict[str, int]]]:
    """Document ids and texts, query ids and texts, and graded relevance per query."""
    folder = DATA_DIR / "cranfield" / "beir"
    docs = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").open(encoding="utf-8") if line.strip()]
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels[row["query-id"]][row["corpus-id"]] = int(row["score"])
    queries = [query for query in queries if query["_id"] in qrels]
    doc_texts = [f"{doc.get('title', '')} {doc.get('text', '')}".strip() for doc in docs]
    return (
        [d["_id"] for d in docs],
        doc_texts,
        [q["_id"] for q in queries],
        [q["text"] for q in queries],
        qrels,
    )


def ndcg_at_10(
    scores: np.ndarray, doc_ids: list[str], query_ids: list[str], qrels: dict[str, dict[str, int]]
) -> float:
    """Mean nDCG@10 with linear gains (as BEIR's evaluator computes it)."""
    discounts = 1.0 / np.log2(np.arange(2, 12))
    values = []
    for row, query_id in zip(scores, query_ids, strict=True):
        top = np.argsort(-row, kind="stable")[:10]
        gains = np.array([qrels[query_id].get(doc_ids[i], 0) for i in top], dtype=np.float64)
        ideal = np.sort(np.array(list(qrels[query_id].values()), dtype=np.float64))[::-1][:10]
        values.append((gains * discounts[: len(gains)]).sum() / (ideal * discounts[: len(ideal)]).sum())
    return float(np.mean(values))


def sts_dev() -> tuple[list[str], list[str], np.ndarray]:
    """STS-B dev sentence pairs and gold similarity scores."""
    first, second, gold = [], [], []
    with (DATA_DIR / "stsbenchmark" / "sts-dev.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                first.append(row[5])
                second.append(row[6])
                gold.append(float(row[4]))
    return first, second, np.array(gold)


def normalized(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def main(argv: list[str] | None = None) -> None:
    """Entry point: print one markdown table."""
    from scipy.stats import spearmanr

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated config keys")
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    args = parser.parse_args(argv)
    keys = [key for key in args.configs.split(",") if key]
    models, notes = load_models(keys, model_folder(args.model), None)
    doc_ids, docs, query_ids, queries, qrels = cranfield()
    first, second, gold = sts_dev()
    results = {}
    for key, model in models.items():
        documents = normalized(model.encode(docs, show_progress_bar=False))
        scores = normalized(model.encode(queries, show_progress_bar=False)) @ documents.T
        a = normalized(model.encode(first, show_progress_bar=False))
        b = normalized(model.encode(second, show_progress_bar=False))
        spearman = float(spearmanr((a * b).sum(axis=1), gold).statistic)
        results[key] = (ndcg_at_10(scores, doc_ids, query_ids, qrels), spearman)
        print(f"{key}: nDCG@10 {results[key][0]:.4f}, Spearman {results[key][1]:.4f}", file=sys.stderr)
    base_key = "ref" if "ref" in results else keys[0]
    base_ndcg, base_spearman = results[base_key]
    rows = [
        [
            BY_KEY[key].name,
            f"{ndcg:.4f}",
            f"{100 * (ndcg - base_ndcg) / base_ndcg:+.2f}%",
            f"{spearman:.4f}",
            f"{100 * (spearman - base_spearman) / base_spearman:+.2f}%",
        ]
        for key, (ndcg, spearman) in results.items()
    ]
    header = ["Configuration", "Cranfield nDCG@10", f"vs {base_key}", "STS-B dev Spearman", f"vs {base_key}"]
    lines = ["### Quality (cosine; Cranfield BEIR test qrels, STS-B dev)", "", *markdown_table(header, rows)]
    if notes:
        lines += ["Configurations that could not run on this machine:", "", *notes, ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
