"""Bi-encoders: SentenceTransformer, PairedEncoder, their shared interface, similarity, quantization
and the process pool."""
