"""The embedded engine: SQLite for objects and vectors, exact or faiss HNSW vector indexes, BM25."""
