"""The embedded engine: SQLite for objects and vectors, in-memory or hnswlib vector indexes, BM25."""
