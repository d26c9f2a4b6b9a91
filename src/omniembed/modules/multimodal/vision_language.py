"""Vision-language decoders used as embedders (Qwen3-VL-Embedding style).

Every input (a text, an image, a text+image dict or a chat conversation) becomes a conversation that the
tokenizer's chat template renders; a prompt becomes its system message. Each image placeholder is
widened to the number of merged patches the image processor makes of that image, sequences are padded
on the right, and the decoder's last hidden state goes on to last-token pooling (and Normalize) in the
modules that follow.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

from omniembed.errors import InvalidInputError, MissingExtraError, ModelFormatError
from omniembed.modules.module import Features, LoadOptions, read_json
from omniembed.modules.transformer import (
    Transformer,
    _load_model,
    _load_tokenizer,
    _read_module_config,
    set_max_length,
)

VISION_LANGUAGE_TYPES = ("qwen3_vl",)
"""``config.json`` model types that load as a vision-language embedder."""

IMAGE_TOKEN = "<|image_pad|>"
_FORWARD = {"method": "forward", "method_output_name": "last_hidden_state"}
_MODALITY_CONFIG = {
    "text": _FORWARD,
    "image": _FORWARD,
    "message": {**_FORWARD, "format": "structured"},
}
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


class VisionLanguageTransformer(Transformer):
    """Embed texts, images, text+image pairs and conversations with a vision-language decoder.

    Args:
        model: the ``transformers`` base model (``Qwen3VLModel``).
        tokenizer: its tokenizer, which must carry the chat template; it pads on the right.
        image_processor: the Pillow-backed image processor (``None`` without Pillow).
        processor_folder: where the processor config came from (copied on ``save`` without Pillow).
    """

    modalities: ClassVar[list[Any]] = ["text", "image", ("image", "text"), "message"]
    chat_inputs: ClassVar[bool] = True
    """Texts go through the chat template too, so the encoder sends them to ``preprocess``."""

    def __init__(
        self, model: Any, tokenizer: Any, image_processor: Any, processor_folder: Path | None = None
    ) -> None:
        super().__init__(model, tokenizer)
        self.tokenizer.padding_side = "right"
        self.image_processor = image_processor
        self._processor_folder = processor_folder
        self._image_token_id = int(model.config.image_token_id)

    def preprocess(self, modality: Any, values: list[Any], prompt: str | None = None) -> Features:
        """Render each input as a conversation and turn the batch into model inputs."""
        conversations = [to_conversation(modality, value, prompt) for value in values]
        images = [part["image"] for c in conversations for part in _parts(c) if part.get("type") == "image"]
        rendered = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=False)
            for c in conversations
        ]
        features: Features = {}
        if images:
            if self.image_processor is None:
                raise MissingExtraError(
                    "encoding images needs Pillow, which is not installed; install it with "
                    "pip install 'omniembed[image]'"
                )
            pixels = self.image_processor(images=images, return_tensors="pt")
            merge = int(self.image_processor.merge_size) ** 2
            counts = [int(grid.prod()) // merge for grid in pixels["image_grid_thw"]]
            rendered = _widen_image_tokens(rendered, counts)
            features = {"pixel_values": pixels["pixel_values"], "image_grid_thw": pixels["image_grid_thw"]}
        # Truncating could cut through an image's tokens, so only text-only batches are truncated.
        limits = {} if images else {"truncation": True, "max_length": self.max_seq_length}
        batch = self.tokenizer(
            rendered, padding=True, add_special_tokens=False, return_tensors="pt", **limits
        )
        features["input_ids"] = batch["input_ids"]
        features["attention_mask"] = batch["attention_mask"]
        features["mm_token_type_ids"] = (batch["input_ids"] == self._image_token_id).int()
        return features

    def forward(self, features: Features) -> Features:
        """Run the decoder on tokens (and images) and store its last hidden state."""
        inputs: dict[str, Any] = {
            name: features[name]
            for name in ("input_ids", "attention_mask", "image_grid_thw", "mm_token_type_ids")
            if name in features
        }
        if "pixel_values" in features:
            inputs["pixel_values"] = features["pixel_values"].to(self.auto_model.dtype)
        output = self.auto_model(**inputs, use_cache=False, return_dict=True)
        features["token_embeddings"] = output.last_hidden_state
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the config in the reference library's v6 shape (a chat-template Transformer)."""
        return {
            "transformer_task": "feature-extraction",
            "modality_config": _MODALITY_CONFIG,
            "module_output_name": "token_embeddings",
        }

    def save(self, folder: Path) -> None:
        """Write model, tokenizer (with its chat template), image processor and module config."""
        super().save(folder)
        if self.image_processor is not None:
            self.image_processor.save_pretrained(folder)
        elif self._processor_folder is not None:
            for name in _PROCESSOR_FILES:
                source = self._processor_folder / name
                if source.is_file() and source.resolve() != (folder / name).resolve():
                    shutil.copyfile(source, folder / name)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> VisionLanguageTransformer:
        """Load a vision-language embedder folder."""
        config = _read_module_config(folder, text_only=False)
        model_type = read_json(folder / "config.json").get("model_type")
        if model_type not in VISION_LANGUAGE_TYPES:
            raise ModelFormatError(
                f"{folder}: model type {model_type!r} is not a supported vision-language model"
            )
        model = _load_model(folder, options, config)
        tokenizer = _load_tokenizer(folder, options, config)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelFormatError(f"the tokenizer in {folder} has no chat template, which this model needs")
        module = cls(model, tokenizer, _load_image_processor(folder), processor_folder=folder)
        set_max_length(module, config, options)
        return module


def to_conversation(modality: Any, value: Any, prompt: str | None) -> list[dict[str, Any]]:
    """Turn one input into a chat conversation; a prompt becomes the system message.

    >>> to_conversation("text", "a cat", "Find images")[0]
    {'role': 'system', 'content': [{'type': 'text', 'text': 'Find images'}]}
    """
    if modality == "message":
        conversation = [value] if isinstance(value, dict) else list(value)
        if prompt and not any(message.get("role") == "system" for message in conversation):
            conversation.insert(0, _message("system", [{"type": "text", "text": prompt}]))
        return conversation
    if modality == "text":
        parts = [{"type": "text", "text": value}]
    elif modality == "image":
        parts = [{"type": "image", "image": value}]
    elif modality == ("image", "text"):
        parts = [{"type": "image", "image": value["image"]}, {"type": "text", "text": value["text"]}]
    else:
        raise InvalidInputError(f"a vision-language model cannot take {modality} inputs")
    system = [_message("system", [{"type": "text", "text": prompt}])] if prompt else []
    return [*system, _message("user", parts)]


def _message(role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": role, "content": parts}


def _parts(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        part
        for message in conversation
        if isinstance(message.get("content"), list)
        for part in message["content"]
    ]


def _widen_image_tokens(texts: list[str], counts: list[int]) -> list[str]:
    """Repeat each image placeholder as many times as its image has merged patches, in order."""
    remaining = iter(counts)
    widened = []
    for text in texts:
        pieces = text.split(IMAGE_TOKEN)
        rebuilt = pieces[0]
        for piece in pieces[1:]:
            rebuilt += IMAGE_TOKEN * next(remaining) + piece
        widened.append(rebuilt)
    return widened


def _load_image_processor(folder: Path) -> Any:
    if not any((folder / name).is_file() for name in _PROCESSOR_FILES):
        raise ModelFormatError(
            f"no image processor config in {folder}: expected one of {', '.join(_PROCESSOR_FILES)}"
        )
    try:
        import PIL  # noqa: F401 (the processor needs it; probe before transformers does)
    except ImportError:
        return None
    from transformers import AutoImageProcessor

    # Through Any: transformers types from_pretrained in some releases and not in others.
    auto: Any = AutoImageProcessor
    try:
        return auto.from_pretrained(folder, backend="pil")
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"could not load the image processor in {folder}: {error}") from error


def is_vision_language_folder(folder: Path) -> bool:
    """Whether a folder's ``config.json`` names a supported vision-language model type."""
    return read_json(folder / "config.json", missing_ok=True).get("model_type") in VISION_LANGUAGE_TYPES
