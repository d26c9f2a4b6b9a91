"""One model object over two: a text encoder and an image encoder trained into the same space.

This is how multilingual CLIP models work (clip-ViT-B-32-multilingual-v1 embeds text in 50+
languages into the space of clip-ViT-B-32's image tower): texts go to the text model, images to the
image model, and the pair is used wherever a single ``SentenceTransformer`` is.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from omniembed.embedding.common import ScoringAndPrompts
from omniembed.embedding.encoder import SentenceTransformer, _convert
from omniembed.embedding.quantize import Precision
from omniembed.inputs.modality import Modality, input_batch, unwrap

ModelSource = SentenceTransformer | str | os.PathLike[str]
_PROMPT_OPTIONS = ("prompt", "prompt_name")


class PairedEncoder(ScoringAndPrompts):
    """Embed texts with ``text_model`` and images with ``image_model``, into one space.

    Args:
        text_model: a ``SentenceTransformer`` or the name/path of one (e.g. the multilingual model).
        image_model: a ``SentenceTransformer`` that embeds images, or its name/path (e.g. a CLIP model).
        similarity_fn_name: the scoring function; defaults to the text model's.
        **load_options: passed to ``SentenceTransformer`` for models given by name (``device``, ...).

    >>> # pair = PairedEncoder("clip-ViT-B-32-multilingual-v1", "clip-ViT-B-32")
    >>> # pair.encode(["Ein Hund im Schnee", Image.open("dog.jpg")])  # one row per input, in order
    """

    def __init__(
        self,
        text_model: ModelSource,
        image_model: ModelSource,
        *,
        similarity_fn_name: str | None = None,
        **load_options: Any,
    ) -> None:
        self.text_model = _as_model(text_model, load_options)
        self.image_model = _as_model(image_model, load_options)
        if not self.image_model.supports("image"):
            raise ValueError(
                f"the image model embeds {self.image_model.modalities}, not images; pair the text "
                "model with an image model such as a CLIP model"
            )
        text_width = self.text_model.get_sentence_embedding_dimension()
        image_width = self.image_model.get_sentence_embedding_dimension()
        if text_width != image_width:
            raise ValueError(
                f"the text model gives {text_width}-dim embeddings and the image model {image_width}; "
                "a pair must share one embedding space"
            )
        self.similarity_fn_name = similarity_fn_name or self.text_model.similarity_fn_name

    @property
    def allow_urls(self) -> bool:
        """Whether image inputs given as http(s) URLs are fetched."""
        return self.image_model.allow_urls

    @allow_urls.setter
    def allow_urls(self, value: bool) -> None:
        self.image_model.allow_urls = value

    @property
    def modalities(self) -> list[Modality]:
        """Text and image (what each half embeds)."""
        return ["text", "image"]

    @property
    def prompts(self) -> dict[str, str]:
        """The text model's prompts (images take none)."""
        return self.text_model.prompts

    @property
    def device(self) -> torch.device:
        """Where the text model's weights live."""
        return self.text_model.device

    @property
    def tokenizer(self) -> Any:
        """The text model's tokenizer."""
        return self.text_model.tokenizer

    @property
    def max_seq_length(self) -> int:
        """Texts longer than this many tokens are truncated by the text model."""
        return self.text_model.max_seq_length

    @property
    def name_or_path(self) -> str | None:
        """Where the text model was loaded from (``None`` when built from modules)."""
        return getattr(self.text_model, "name_or_path", None)

    def supports(self, modality: Modality) -> bool:
        """Return whether the pair embeds inputs of this modality."""
        return modality in self.modalities

    def get_sentence_embedding_dimension(self) -> int:
        """Return the width of the shared embedding space."""
        return self.text_model.get_sentence_embedding_dimension()

    get_embedding_dimension = get_sentence_embedding_dimension

    def encode(
        self,
        inputs: Any,
        *,
        precision: Precision = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        **options: Any,
    ) -> Any:
        """Embed texts and images (mixed freely), one row per input in input order.

        Takes the options of ``SentenceTransformer.encode``; prompts apply to texts only.
        """
        items, kinds, single = input_batch(inputs, self.modalities)
        if options.get("output_value", "sentence_embedding") != "sentence_embedding":
            if any(kind != "text" for kind in kinds):
                raise ValueError(
                    f"output_value {options['output_value']!r} is only available for text inputs"
                )
            return self.text_model.encode(inputs, **options)
        parts: list[tuple[np.ndarray, Tensor]] = []
        for kind, model in (("text", self.text_model), ("image", self.image_model)):
            positions = np.array([i for i, k in enumerate(kinds) if k == kind], dtype=np.int64)
            if len(positions):
                values = [unwrap(items[i], kind) for i in positions]
                kind_options = options if kind == "text" else _without_prompts(options)
                embeddings = model.encode(values, convert_to_tensor=True, **kind_options)
                parts.append((positions, embeddings.cpu()))
        width = min(self.get_sentence_embedding_dimension(), options.get("truncate_dim") or 1 << 30)
        embeddings = _in_input_order(parts, width)
        result = _convert(embeddings, precision, convert_to_numpy, convert_to_tensor)
        return result[0] if single else result

    def __repr__(self) -> str:
        return f"PairedEncoder(text_model={self.text_model!r}, image_model={self.image_model!r})"


def _as_model(source: ModelSource, options: dict[str, Any]) -> SentenceTransformer:
    return source if isinstance(source, SentenceTransformer) else SentenceTransformer(source, **options)


def _without_prompts(options: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in options.items() if name not in _PROMPT_OPTIONS}


def _in_input_order(parts: list[tuple[np.ndarray, Tensor]], width: int) -> Tensor:
    if not parts:
        return torch.zeros((0, width), dtype=torch.float32)
    order = np.argsort(np.concatenate([positions for positions, _ in parts]))
    return torch.cat([embeddings for _, embeddings in parts])[torch.from_numpy(order)]
