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
