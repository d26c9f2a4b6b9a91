"""The engines behind the collections API: the embedded SQLite engine, Milvus, and the BM25 index both use."""
