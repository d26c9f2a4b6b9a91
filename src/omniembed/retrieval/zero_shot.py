"""Zero-shot image classification: score images against label texts in a shared text-image space."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from omniembed.embedding.interface import EmbeddingModel

DEFAULT_TEMPLATE = "a photo of a {}"
CLIP_LOGIT_SCALE = 100.0
"""The temperature CLIP models learn (their ``logit_scale`` saturates at 100); it turns cosine scores
into a peaked distribution over labels."""


def zero_shot_classify(
    model: EmbeddingModel,
    images: Any,
    labels: list[str],
    *,
    template: str | None = DEFAULT_TEMPLATE,
    scale: float | None = CLIP_LOGIT_SCALE,
    batch_size: int = 32,
) -> Any:
    """Score each image against each label; return one ``{label: score}`` dict per image.

    Args:
        model: a model that embeds texts and images into one space (a CLIP model, a ``PairedEncoder``).
        images: one image or a list (anything ``encode`` takes as an image).
        labels: the class names, e.g. ``["cat", "dog"]``.
        template: turns a label into a text (``"a photo of a {}"``); ``None`` uses labels as they are.
        scale: scores are ``softmax(scale * similarity)`` over the labels (they sum to 1);
            ``None`` returns the raw similarities.
        batch_size: inputs per forward pass.

    Returns:
        A dict for one image, or a list of dicts, in label order.

    Raises:
        ValueError: no labels, repeated labels, or a template without ``{}``.
    """
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"labels must be a non-empty list of strings, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {labels!r}")
    if template is not None and "{}" not in template:
        raise ValueError(f"template must contain '{{}}' where the label goes, got {template!r}")
    if not model.supports("image"):
        raise ValueError(
            f"zero-shot image classification needs a model that embeds images; it takes {model.modalities}"
        )
    texts = [template.format(label) if template else label for label in labels]
    label_embeddings = model.encode(texts, convert_to_tensor=True, batch_size=batch_size)
    single = not isinstance(images, (list, tuple))
    image_embeddings = model.encode(
        [images] if single else list(images), convert_to_tensor=True, batch_size=batch_size
    )
    scores = model.similarity(image_embeddings, label_embeddings).float()
    if scale is not None:
        scores = torch.softmax(scores * scale, dim=1)
    rows = [dict(zip(labels, row, strict=True)) for row in scores.tolist()]
    return rows[0] if single else rows
