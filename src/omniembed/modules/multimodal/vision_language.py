"""Vision-language decoders used as embedders (Qwen3-VL-Embedding style).

Every input (a text, an image, a text+image dict or a chat conversation) becomes a conversation that the
tokenizer's chat template renders; a prompt becomes its system message. Each image placeholder is
widened to the number of merged patches the image processor makes of that image, sequences are padded
on the right, and the decoder's last hidden state goes on to last-token pooling (and Normalize) in the
modules that follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from omniembed.errors import InvalidInputError, ModelFormatError
from omniembed.modules.module import Features, read_json
from omniembed.modules.multimodal.base import ModalityConfig, MultimodalTransformer, load_image_processor

UNSUPPORTED_VISION_LANGUAGE_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl_moe")
"""Vision-language decoders other than Qwen3-VL, which are not supported yet."""

IMAGE_TOKEN = "<|image_pad|>"
_FORWARD = {"method": "forward", "method_output_name": "last_hidden_state"}


class VisionLanguageTransformer(MultimodalTransformer):
    """Embed texts, images, text+image pairs and conversations with a vision-language decoder.

    The model is the ``transformers`` base model (``Qwen3VLModel``); its tokenizer must carry the chat
    template and pads on the right; the processor is the Pillow-backed image processor (``None``
    without Pillow).
    """

    model_types = ("qwen3_vl",)
    description = "a vision-language model"
    modality_config: ClassVar[ModalityConfig] = {
        "text": _FORWARD,
        "image": _FORWARD,
        "message": {**_FORWARD, "format": "structured"},
    }
    module_output_name = "token_embeddings"
    modalities: ClassVar[list[Any]] = ["text", "image", ("image", "text"), "message"]
    chat_inputs: ClassVar[bool] = True
    """Texts go through the chat template too, so the encoder sends them to ``preprocess``."""

    def __init__(
        self, model: Any, tokenizer: Any, processor: Any, processor_folder: Path | None = None
    ) -> None:
        super().__init__(model, tokenizer, processor, processor_folder)
        self.tokenizer.padding_side = "right"
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
            processor = self.pillow_processor()
            pixels = processor(images=images, return_tensors="pt")
            merge = int(processor.merge_size) ** 2
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

    @classmethod
    def check_tokenizer(cls, folder: Path, tokenizer: Any) -> None:
        """Refuse a tokenizer without a chat template: every input is rendered as a conversation."""
        if not getattr(tokenizer, "chat_template", None):
            raise ModelFormatError(f"the tokenizer in {folder} has no chat template, which this model needs")

    @classmethod
    def load_processor(cls, folder: Path) -> Any:
        """Load the image processor (``None`` without Pillow)."""
        return load_image_processor(folder)


def refuse_vision_language(folder: Path) -> None:
    """Raise a clear error for a vision-language decoder folder, rather than loading it as a text model."""
    model_type = read_json(folder / "config.json", missing_ok=True).get("model_type")
    if model_type in UNSUPPORTED_VISION_LANGUAGE_TYPES:
        raise ModelFormatError(
            f"{folder} holds a {model_type!r} vision-language model; of these only qwen3_vl "
            "(Qwen3-VL-Embedding) is supported so far"
        )


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
