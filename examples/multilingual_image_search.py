"""Search pictures with queries in several languages: a multilingual text model paired with CLIP.

clip-ViT-B-32-multilingual-v1 maps text in 50+ languages into the space of clip-ViT-B-32's image
encoder; ``PairedEncoder`` puts the two behind one model object (texts go to the first, images to
the second), usable wherever a single model is.

Run: python examples/multilingual_image_search.py [TEXT_MODEL IMAGE_MODEL]
(defaults: sentence-transformers/clip-ViT-B-32-multilingual-v1 and clip-ViT-B-32 from the hub)
"""

from __future__ import annotations

import sys

from shapes import example_images

from omniembed import PairedEncoder


def main() -> None:
    """Embed the pictures once, then find the best picture for each query."""
    text_model, image_model = (
        sys.argv[1:3]
        if len(sys.argv) > 2
        else ("sentence-transformers/clip-ViT-B-32-multilingual-v1", "clip-ViT-B-32")
    )
    model = PairedEncoder(text_model, image_model)
    pictures = example_images()
    names = list(pictures)
    image_embeddings = model.encode(list(pictures.values()), convert_to_tensor=True)
    queries = ["Ein roter Kreis", "Un carré bleu", "Un triangolo verde", "A green triangle"]
    query_embeddings = model.encode_query(queries, convert_to_tensor=True)
    scores = model.similarity(query_embeddings, image_embeddings)
    print(tuple(scores.shape))
    # (4, 3)
    for query, row in zip(queries, scores, strict=True):
        best = int(row.argmax())
        print(f"{query!r} -> {names[best]} ({float(row[best]):.3f})")
    # with the real models: 'Ein roter Kreis' -> a red circle, 'Un carré bleu' -> a blue square, ...


if __name__ == "__main__":
    main()
