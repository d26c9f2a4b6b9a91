"""CLIP-style dual encoders: one text tower and one image tower projecting into a shared space."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from omniembed.errors import MissingExtraError, ModelFormatError
from omniembed.modules.module import Features, LoadOptions, read_json
from omniembed.modules.transformer import (
    Transformer,
    _load_model,
    _load_tokenizer,
    _read_module_config,
    set_max_length,
)

CLIP_MODEL_TYPES = ("clip",)
"""``config.json`` model types that load as a dual encoder (each tested against the reference library)."""

VISION_LANGUAGE_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl_moe")
"""Vision-language decoders other than Qwen3-VL, which are not supported yet."""

CLIP_MODALITY_CONFIG = {
    "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
    "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
}
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


class CLIPModel(Transformer):
    """Embed texts with the text tower and images with the image tower of a CLIP model.

    Reads both folder forms of the reference library: the ``CLIPModel`` module of models such as
    clip-ViT-B-32 and a Transformer module whose config lists text and image modalities (which is also
    how a bare Hugging Face CLIP folder loads). Adds ``sentence_embedding`` to the features; the
    embeddings are not normalised, as in the reference library.

    Args:
        model: a ``transformers`` CLIP model.
        tokenizer: its tokenizer.
        image_processor: its image processor (``None`` when Pillow is missing; images then raise).
        processor_folder: where the processor config was read from, copied on ``save`` when
            ``image_processor`` is ``None``.
    """

    modalities: ClassVar[list[Any]] = ["text", "image", "video"]
    video_frames: int = 8
    """Frames sampled evenly from each video (the most kept when ``video_fps`` is set)."""
    video_fps: float | None = None
    """Sample a frame every ``1 / video_fps`` seconds instead of spreading ``video_frames`` evenly."""

    def __init__(
        self, model: Any, tokenizer: Any, image_processor: Any, processor_folder: Path | None = None
    ) -> None:
        super().__init__(model, tokenizer)
        self.image_processor = image_processor
        self._processor_folder = processor_folder

    @property
    def dimension(self) -> int:
        """Width of the shared embedding space."""
        return int(self.auto_model.config.projection_dim)

    def preprocess(
        self, modality: str | tuple[str, ...], values: list[Any], prompt: str | None = None
    ) -> Features:
        """Turn loaded RGB images into ``pixel_values`` as the model's processor config says; a video's
        sampled frames become one image each, with ``frame_counts`` saying how many each video has."""
        if modality not in ("image", "video"):
            raise ValueError(f"{type(self).__name__} preprocesses images and videos here, not {modality}")
        if self.image_processor is None:
            raise MissingExtraError(
                "encoding images needs Pillow, which is not installed; install it with "
                "pip install 'omniembed[image]'"
            )
        if modality == "image":
            return {"pixel_values": self.image_processor(images=values, return_tensors="pt")["pixel_values"]}
        from PIL import Image

        frames = [Image.fromarray(frame) for video in values for frame in video]
        pixels = self.image_processor(images=frames, return_tensors="pt")["pixel_values"]
        return {"pixel_values": pixels, "frame_counts": torch.tensor([len(video) for video in values])}

    def forward(self, features: Features) -> Features:
        """Run the image tower on ``pixel_values``, else the text tower on ``input_ids``.

        With ``frame_counts`` (videos), each video's embedding is the mean of its frames' unit-length
        image embeddings, scaled back to unit length: CLIP has no video tower, so this is an average
        of what it sees in each frame, blind to motion and frame order.
        """
        if "frame_counts" in features:
            pixels = features["pixel_values"].to(self.auto_model.dtype)
            frames = _pooled(self.auto_model.get_image_features(pixel_values=pixels))
            means = [part.mean(dim=0) for part in torch.split(frames, features["frame_counts"].tolist())]
            features["sentence_embedding"] = torch.nn.functional.normalize(torch.stack(means), dim=-1)
            return features
        if "pixel_values" in features:
            pixels = features["pixel_values"].to(self.auto_model.dtype)
            output = self.auto_model.get_image_features(pixel_values=pixels)
        else:
            inputs = {name: features[name] for name in self._inputs if name in features}
            output = self.auto_model.get_text_features(**inputs)
        features["sentence_embedding"] = getattr(output, "pooler_output", output)
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the config in the reference library's v6 shape (a multimodal Transformer)."""
        return {
            "transformer_task": "feature-extraction",
            "modality_config": CLIP_MODALITY_CONFIG,
            "module_output_name": "sentence_embedding",
        }

    def save(self, folder: Path) -> None:
        """Write model, tokenizer, image processor config and ``sentence_bert_config.json``."""
        super().save(folder)
        if self.image_processor is not None:
            self.image_processor.save_pretrained(folder)
        elif self._processor_folder is not None:
            for name in _PROCESSOR_FILES:
                source = self._processor_folder / name
                if source.is_file() and source.resolve() != (folder / name).resolve():
                    shutil.copyfile(source, folder / name)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> CLIPModel:
        """Load a CLIP folder in either of the reference library's forms."""
        config = _read_module_config(folder, text_only=False)
        _check_modalities(folder, config)
        if not (folder / "config.json").is_file():
            raise ModelFormatError(f"model file {folder / 'config.json'} is missing")
        model_type = read_json(folder / "config.json").get("model_type")
        if model_type not in CLIP_MODEL_TYPES:
            raise ModelFormatError(
                f"{folder}: model type {model_type!r} does not load as a text+image model; "
                f"supported: {list(CLIP_MODEL_TYPES)}"
            )
        model = _load_model(folder, options, config)
        tokenizer = _load_tokenizer(folder, options, config)
        module = cls(model, tokenizer, _load_image_processor(folder), processor_folder=folder)
        set_max_length(module, config, options)
        return module


def _pooled(output: Any) -> Tensor:
    embeddings = getattr(output, "pooler_output", output)
    return torch.nn.functional.normalize(embeddings, dim=-1)


def _check_modalities(folder: Path, config: dict[str, Any]) -> None:
    modalities = config.get("modality_config")
    if modalities is None:
        return  # the legacy CLIPModel module folder carries no module config
    methods = {name: (entry or {}).get("method") for name, entry in modalities.items()}
    expected = {name: entry["method"] for name, entry in CLIP_MODALITY_CONFIG.items()}
    output = config.get("module_output_name", "sentence_embedding")
    if methods != expected or output != "sentence_embedding":
        raise ModelFormatError(
            f"{folder}: modality config {modalities} with output {output!r} is not supported; "
            f"a text+image model maps {expected} to sentence_embedding"
        )


def _load_image_processor(folder: Path) -> Any:
    """Load the image processor with the Pillow backend (no torchvision), or ``None`` without Pillow."""
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


def refuse_vision_language(folder: Path) -> None:
    """Raise a clear error for a vision-language decoder folder, rather than loading it as a text model."""
    model_type = read_json(folder / "config.json", missing_ok=True).get("model_type")
    if model_type in VISION_LANGUAGE_MODEL_TYPES:
        raise ModelFormatError(
            f"{folder} holds a {model_type!r} vision-language model; of these only qwen3_vl "
            "(Qwen3-VL-Embedding) is supported so far"
        )


def is_clip_folder(folder: Path) -> bool:
    """Whether a bare Hugging Face folder (no ``modules.json``) holds a CLIP-style model."""
    config = read_json(folder / "config.json", missing_ok=True)
    return config.get("model_type") in CLIP_MODEL_TYPES


def has_media_modalities(folder: Path) -> bool:
    """Whether a Transformer module folder's config lists modalities other than text."""
    modalities = read_json(folder / "sentence_bert_config.json", missing_ok=True).get("modality_config")
    return isinstance(modalities, dict) and bool(set(modalities) - {"text"})
