"""Vision-language decoders used as embedders (Qwen3-VL-Embedding style).

Every input (a text, an image, a video, a text+image or text+video dict or a chat conversation) becomes a
conversation that the tokenizer's chat template renders; a prompt becomes its system message. Each image
placeholder is widened to the number of merged patches the image processor makes of that image, each
video to its timed frame blocks (see ``vl_video``), sequences are padded on the right, and the decoder's
last hidden state goes on to last-token pooling (and Normalize) in the modules that follow.

Images go through transformers' torchvision image processor where torchvision imports, else its Pillow
one; video needs torchvision (the model's video processor uses it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from omniembed.errors import InvalidInputError, InvalidVideoError, ModelFormatError
from omniembed.inputs.video import VideoClip
from omniembed.modules.module import Features, read_json
from omniembed.modules.multimodal import vl_video
from omniembed.modules.multimodal.base import ModalityConfig, MultimodalTransformer, load_image_processor

UNSUPPORTED_VISION_LANGUAGE_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl_moe")
"""Vision-language decoders other than Qwen3-VL, which are not supported yet."""

IMAGE_TOKEN = "<|image_pad|>"
_FORWARD = {"method": "forward", "method_output_name": "last_hidden_state"}
_MODEL_INPUTS = ("input_ids", "attention_mask", "image_grid_thw", "video_grid_thw", "mm_token_type_ids")


class VisionLanguageTransformer(MultimodalTransformer):
    """Embed texts, images, text+image pairs and conversations with a vision-language decoder.

    The model is the ``transformers`` base model (``Qwen3VLModel``); its tokenizer must carry the chat
    template and pads on the right; the processor is the image processor (torchvision-backed where
    torchvision imports, else Pillow-backed; ``None`` without Pillow); ``video_processor`` is the
    folder's video processor (``None`` without torchvision).
    """

    model_types = ("qwen3_vl",)
    description = "a vision-language model"
    modality_config: ClassVar[ModalityConfig] = {
        "text": _FORWARD,
        "image": _FORWARD,
        "video": _FORWARD,
        "message": {**_FORWARD, "format": "structured"},
    }
    module_output_name = "token_embeddings"
    modalities: ClassVar[list[Any]] = [
        "text",
        "image",
        "video",
        ("image", "text"),
        ("text", "video"),
        "message",
    ]
    chat_inputs: ClassVar[bool] = True
    """Texts go through the chat template too, so the encoder sends them to ``preprocess``."""
    video_frames: int | None = None
    """Frames kept of each video; ``None`` keeps the video processor's rate-based choice."""
    video_fps: float | None = None
    """Frames kept per second of video instead of the video processor's own ``fps``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        processor: Any,
        processor_folder: Path | None = None,
        video_processor: Any = None,
    ) -> None:
        super().__init__(model, tokenizer, processor, processor_folder)
        self.tokenizer.padding_side = "right"
        self._image_token_id = int(model.config.image_token_id)
        self._video_token_id = int(model.config.video_token_id)
        if video_processor is None and processor_folder is not None:
            video_processor = vl_video.load_video_processor(processor_folder)
        self.video_processor = video_processor

    def preprocess(self, modality: Any, values: list[Any], prompt: str | None = None) -> Features:
        """Render each input as a conversation and turn the batch into model inputs."""
        conversations = [to_conversation(modality, value, prompt) for value in values]
        parts = [part for c in conversations for part in _parts(c)]
        images = [part["image"] for part in parts if part.get("type") == "image"]
        videos = [part["video"] for part in parts if part.get("type") == "video"]
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
        if videos:
            rendered = self._add_videos(videos, rendered, features)
        # Truncating could cut through an image's or video's tokens, so only text-only batches are.
        limits = {} if images or videos else {"truncation": True, "max_length": self.max_seq_length}
        batch = self.tokenizer(
            rendered, padding=True, add_special_tokens=False, return_tensors="pt", **limits
        )
        ids = batch["input_ids"]
        if not (images or videos):
            self._restore_endings(conversations, ids, batch["attention_mask"])
        features["input_ids"] = ids
        features["attention_mask"] = batch["attention_mask"]
        # The decoder places image (1) and video (2) tokens in space and time, text (0) in sequence.
        features["mm_token_type_ids"] = (ids == self._image_token_id).int() + 2 * (
            ids == self._video_token_id
        ).int()
        return features

    def _restore_endings(self, conversations: list[Any], ids: Any, mask: Any) -> None:
        """Write the chat template's ending back over the last tokens of each row that truncation cut:
        last-token pooling reads the final position, which must stay the template's (as in the
        reference library)."""
        limit = self.max_seq_length
        for row, length in enumerate(mask.sum(dim=1).tolist()):
            if limit is None or length < limit:
                continue
            ending = self._template_ending(conversations[row])[-length:]
            if ending:
                ids[row, length - len(ending) : length] = torch.tensor(ending, dtype=ids.dtype)

    def _template_ending(self, conversation: list[dict[str, Any]]) -> list[int]:
        """The token ids the chat template writes after a conversation's last content: the common tail
        of two renders whose non-system contents differ (empty when they never differ)."""
        renders = []
        for filler in ("a", "b c d"):
            skeleton = [
                message
                if message.get("role") == "system"
                else {**message, "content": [{"type": "text", "text": filler}]}
                for message in conversation
            ]
            text = self.tokenizer.apply_chat_template(skeleton, tokenize=False, add_generation_prompt=False)
            renders.append(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        first, second = renders
        common = 0
        while common < min(len(first), len(second)) and first[-1 - common] == second[-1 - common]:
            common += 1
        return list(first[len(first) - common :]) if common < min(len(first), len(second)) else []

    def pick_frames(self, total: int, fps: float | None) -> np.ndarray:
        """Choose the frames of a ``total``-frame video (its own rate ``fps``) as the video processor
        does, or as ``video_frames`` / ``video_fps`` override it."""
        processor = self._require_video_processor()
        indices, _ = vl_video.pick_frames(processor, total, fps, self.video_frames, self.video_fps)
        return indices

    def _add_videos(self, videos: list[Any], rendered: list[str], features: Features) -> list[str]:
        """Add the videos' pixels to ``features``; return the texts with each video's tokens."""
        processor = self._require_video_processor()
        if not all(isinstance(video, VideoClip) for video in videos):
            raise InvalidInputError("videos reach preprocess loaded (a VideoClip); encode() loads them")
        try:
            features.update(vl_video.video_features(processor, videos))
        except ValueError as error:  # the processor's own checks: too few frames, an extreme shape
            raise InvalidVideoError(
                f"a video in this batch cannot be prepared for the model: {error}"
            ) from None
        merge, temporal = int(processor.merge_size), int(processor.temporal_patch_size)
        placeholders = [
            vl_video.video_placeholder(video, grid, merge, temporal)
            for video, grid in zip(videos, features["video_grid_thw"], strict=True)
        ]
        return vl_video.widen_videos(rendered, placeholders)

    def _require_video_processor(self) -> Any:
        if self.video_processor is not None:
            return self.video_processor
        if not vl_video.torchvision_importable():
            raise vl_video.missing_torchvision()
        raise ModelFormatError(
            f"the model folder {self._processor_folder} has no video processor config "
            f"({' or '.join(vl_video.VIDEO_PROCESSOR_FILES)}), so it cannot embed video"
        )

    def forward(self, features: Features) -> Features:
        """Run the decoder on tokens (and images) and store its last hidden state."""
        inputs: dict[str, Any] = {name: features[name] for name in _MODEL_INPUTS if name in features}
        for name in ("pixel_values", "pixel_values_videos"):
            if name in features:
                inputs[name] = features[name].to(self.auto_model.dtype)
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
        """Load the image processor: torchvision's where it imports, else Pillow's (``None`` without
        Pillow), so images are prepared as the model's own processor prepares them there."""
        return load_image_processor(folder, "torchvision" if vl_video.torchvision_importable() else "pil")

    def save(self, folder: Path) -> None:
        """Write the module as ``MultimodalTransformer`` does, and the video processor config."""
        super().save(folder)
        if self.video_processor is not None:
            self.video_processor.save_pretrained(folder)
        elif self._processor_folder is not None:
            source = self._processor_folder / vl_video.VIDEO_PROCESSOR_FILES[0]
            target = folder / source.name
            if source.is_file() and source.resolve() != target.resolve():
                shutil.copyfile(source, target)


def refuse_vision_language(folder: Path) -> None:
    """Raise a clear error for a vision-language decoder folder, rather than loading it as a text model."""
    model_type = read_json(folder / "config.json", missing_ok=True).get("model_type")
    if model_type in UNSUPPORTED_VISION_LANGUAGE_TYPES:
        raise ModelFormatError(
            f"{folder} holds a {model_type!r} vision-language model; of these only qwen3_vl "
            "(Qwen3-VL-Embedding) is supported so far"
        )


def to_conversation(modality: Any, value: Any, prompt: str | None) -> list[dict[str, Any]]:
    """Turn one input into a chat conversation; a prompt becomes a first system message.

    A conversation gets the prompt before its own messages, a system message among them or not (as
    the reference library does): pass ``prompt=""`` to ``encode`` to send a conversation as it is.

    >>> to_conversation("text", "a cat", "Find images")[0]
    {'role': 'system', 'content': [{'type': 'text', 'text': 'Find images'}]}
    """
    if modality == "message":
        conversation = [value] if isinstance(value, dict) else list(value)
        if prompt:
            conversation.insert(0, _message("system", [{"type": "text", "text": prompt}]))
        return conversation
    if modality in ("text", "image", "video"):
        parts = [{"type": modality, modality: value}]
    elif modality in (("image", "text"), ("text", "video")):
        # The parts follow the dict's own key order, as the reference library lays them out.
        parts = [{"type": key, key: value[key]} for key in value if key in modality]
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
    return vl_video.replace_in_order(texts, IMAGE_TOKEN, (IMAGE_TOKEN * count for count in counts))
