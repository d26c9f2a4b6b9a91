"""Cranfield documents (``title`` and ``body``) and queries from the repository's data folder, for the
keyword index tests."""

from __future__ import annotations

import json
from pathlib import Path

CRANFIELD = Path(__file__).resolve().parents[2] / "data" / "cranfield" / "beir"
FIELDS = ["title", "body"]
BOOSTS = {"title": 2.0, "body": 1.0}


def cranfield(limit: int = 1400) -> tuple[list[dict[str, str]], list[str]]:
    """The first ``limit`` documents and the first 40 queries."""
    lines = (CRANFIELD / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:limit]
    docs = [{"title": r.get("title", ""), "body": r.get("text", "")} for r in map(json.loads, lines)]
    queries = [json.loads(line)["text"] for line in (CRANFIELD / "queries.jsonl").read_text().splitlines()]
    return docs, queries[:40]


def judged() -> tuple[list[dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """Every document (with its ``_id``), the queries that have judgements, and the graded judgements."""
    docs = [
        {"_id": r["_id"], "title": r.get("title", ""), "body": r.get("text", "")}
        for r in map(json.loads, (CRANFIELD / "corpus.jsonl").read_text(encoding="utf-8").splitlines())
    ]
    qrels: dict[str, dict[str, int]] = {}
    for line in (CRANFIELD / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query, doc, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(query, {})[doc] = int(score)
    queries = {
        r["_id"]: r["text"]
        for r in map(json.loads, (CRANFIELD / "queries.jsonl").read_text(encoding="utf-8").splitlines())
        if r["_id"] in qrels
    }
    return docs, queries, qrels


def ndcg_at_10(ranking: list[str], relevant: dict[str, int]) -> float:
    """nDCG@10 with linear gains."""
    import math

    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    best = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / best if best else 0.0
