"""Searching embeddings without a database: semantic search, retrieve-and-rerank, rank fusion and
zero-shot classification."""
