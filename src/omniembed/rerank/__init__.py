"""Cross-encoders that score (query, document) pairs."""
