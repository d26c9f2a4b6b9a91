"""Embed pictures and captions into one space with a CLIP model, then score captions and classify.

Run: python examples/text_image.py [MODEL]   (default: clip-ViT-B-32 from the Hugging Face hub;
any CLIP model folder works, in the reference library's old CLIPModel form or its current form)
"""

from __future__ import annotations

import sys

from shapes import example_images

from omniembed import SentenceTransformer, zero_shot_classify


def main() -> None:
    """Encode three pictures and three captions, print their similarities and zero-shot labels."""
    model = SentenceTransformer(sys.argv[1] if len(sys.argv) > 1 else "clip-ViT-B-32")
    print(model.modalities)
    # ['text', 'image']
    pictures = example_images()
    image_embeddings = model.encode(list(pictures.values()))
    text_embeddings = model.encode(["A red circle", "A blue square", "A green triangle"])
    print(image_embeddings.shape, text_embeddings.shape)
    # (3, 512) (3, 512)
    print(model.similarity(image_embeddings, text_embeddings))
    # with clip-ViT-B-32, each picture scores highest with its own caption (the diagonal)

    # Texts and images can share one call; rows come back in input order.
    mixed = model.encode(["A red circle", pictures["a red circle"]])
    print(mixed.shape)
    # (2, 512)

    labels = ["circle", "square", "triangle"]
    for name, scores in zip(
        pictures, zero_shot_classify(model, list(pictures.values()), labels), strict=True
    ):
        best = max(scores, key=scores.__getitem__)
        print(f"{name}: {best} ({scores[best]:.2f})")
    # a red circle: circle (0.9x) ... with clip-ViT-B-32


if __name__ == "__main__":
    main()
