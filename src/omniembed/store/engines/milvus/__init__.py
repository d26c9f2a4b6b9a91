"""The Milvus engine: collections, filters and BM25 over a Milvus server or Milvus Lite."""
