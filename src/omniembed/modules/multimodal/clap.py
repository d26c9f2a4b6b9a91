"""CLAP-style dual encoders: one text tower and one audio tower projecting into a shared space."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from omniembed.errors import ModelFormatError
from omniembed.modules.module import Features, LoadOptions, read_json
from omniembed.modules.transformer import (
    Transformer,
    _load_model,
    _load_tokenizer,
    _read_module_config,
    set_max_length,
)

CLAP_MODEL_TYPES = ("clap",)
"""``config.json`` model types that load as a text+audio encoder (tested against the reference library)."""

CLAP_MODALITY_CONFIG = {
    "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
    "audio": {"method": "get_audio_features", "method_output_name": "pooler_output"},
}
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
_AUDIO_INPUTS = ("input_features", "is_longer")


class ClapModel(Transformer):
    """Embed texts with the text tower and audio with the audio tower of a CLAP model.

    Loads a bare Hugging Face CLAP folder and the reference library's form of it (a Transformer module
    with text and audio modalities). Audio is resampled to ``sampling_rate`` and clipped to
    ``max_audio_seconds`` before the feature extractor sees it, so the extractor never crops at random
    (its ``rand_trunc`` mode would); shorter audio is zero-padded to the model's length, as the
    reference library's call does. The embeddings are not normalised, as in the reference library.

    Args:
        model: a ``transformers`` CLAP model.
        tokenizer: its tokenizer.
        feature_extractor: its ``ClapFeatureExtractor``.
    """

    modalities: ClassVar[list[Any]] = ["text", "audio"]

    def __init__(self, model: Any, tokenizer: Any, feature_extractor: Any) -> None:
        super().__init__(model, tokenizer)
        self.feature_extractor = feature_extractor
        self.max_audio_seconds: float = feature_extractor.nb_max_samples / feature_extractor.sampling_rate
        """The window, in seconds: longer audio is clipped to it (the model's own window by default)."""
        self.long_audio: Literal["clip", "chunk"] = "clip"
        """``"clip"`` keeps the first window of longer audio; ``"chunk"`` embeds every window (a tail
        shorter than a quarter window is dropped, unless it is all there is) and returns their mean."""

    @property
    def dimension(self) -> int:
        """Width of the shared embedding space."""
        return int(self.auto_model.config.projection_dim)

    @property
    def sampling_rate(self) -> int:
        """The rate, in samples per second, that the feature extractor expects."""
        return int(self.feature_extractor.sampling_rate)

    def preprocess(
        self, modality: str | tuple[str, ...], values: list[Any], prompt: str | None = None
    ) -> Features:
        """Turn mono float32 waveforms at ``sampling_rate`` into log-mel ``input_features``."""
        if modality != "audio":
            raise ValueError(f"{type(self).__name__} preprocesses audio here, not {modality}")
        counts = None
        if self.long_audio == "chunk":
            windows = [
                _windows(value, round(self.max_audio_seconds * self.sampling_rate)) for value in values
            ]
            values = [window for parts in windows for window in parts]
            counts = torch.tensor([len(parts) for parts in windows])
        batch = self.feature_extractor(
            values, sampling_rate=self.sampling_rate, padding=True, return_tensors="pt"
        )
        features = {name: batch[name] for name in _AUDIO_INPUTS if name in batch}
        if counts is not None:
            features["chunk_counts"] = counts
        return features

    def forward(self, features: Features) -> Features:
        """Run the audio tower on ``input_features``, else the text tower on ``input_ids``."""
        if "input_features" in features:
            audio = {name: features[name] for name in _AUDIO_INPUTS if name in features}
            audio["input_features"] = audio["input_features"].to(self.auto_model.dtype)
            output = self.auto_model.get_audio_features(**audio)
            if "chunk_counts" in features:
                chunks = getattr(output, "pooler_output", output)
                parts = torch.split(chunks, features["chunk_counts"].tolist())
                features["sentence_embedding"] = torch.stack([part.mean(dim=0) for part in parts])
                return features
        else:
            inputs = {name: features[name] for name in self._inputs if name in features}
            output = self.auto_model.get_text_features(**inputs)
        features["sentence_embedding"] = getattr(output, "pooler_output", output)
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the config in the reference library's v6 shape (a multimodal Transformer)."""
        return {
            "transformer_task": "feature-extraction",
            "modality_config": CLAP_MODALITY_CONFIG,
            "module_output_name": "sentence_embedding",
        }

    def save(self, folder: Path) -> None:
        """Write model, tokenizer, feature extractor config and ``sentence_bert_config.json``."""
        super().save(folder)
        self.feature_extractor.save_pretrained(folder)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> ClapModel:
        """Load a CLAP folder, bare or in the reference library's module form."""
        config = _read_module_config(folder, text_only=False)
        _check_modalities(folder, config)
        if not (folder / "config.json").is_file():
            raise ModelFormatError(f"model file {folder / 'config.json'} is missing")
        model_type = read_json(folder / "config.json").get("model_type")
        if model_type not in CLAP_MODEL_TYPES:
            raise ModelFormatError(
                f"{folder}: model type {model_type!r} does not load as a text+audio model; "
                f"supported: {list(CLAP_MODEL_TYPES)}"
            )
        model = _load_model(folder, options, config)
        tokenizer = _load_tokenizer(folder, options, config)
        module = cls(model, tokenizer, _load_feature_extractor(folder))
        set_max_length(module, config, options)
        return module


def _windows(waveform: Any, size: int) -> list[Any]:
    """Split a waveform into windows of ``size`` samples; drop a short tail unless it is the only one."""
    parts = [waveform[start : start + size] for start in range(0, len(waveform), size)]
    if len(parts) > 1 and len(parts[-1]) < size // 4:
        parts.pop()
    return parts


def _check_modalities(folder: Path, config: dict[str, Any]) -> None:
    modalities = config.get("modality_config")
    if modalities is None:
        return
    methods = {name: (entry or {}).get("method") for name, entry in modalities.items()}
    expected = {name: entry["method"] for name, entry in CLAP_MODALITY_CONFIG.items()}
    output = config.get("module_output_name", "sentence_embedding")
    if methods != expected or output != "sentence_embedding":
        raise ModelFormatError(
            f"{folder}: modality config {modalities} with output {output!r} is not supported; "
            f"a text+audio model maps {expected} to sentence_embedding"
        )


def _load_feature_extractor(folder: Path) -> Any:
    if not any((folder / name).is_file() for name in _PROCESSOR_FILES):
        raise ModelFormatError(
            f"no feature extractor config in {folder}: expected one of {', '.join(_PROCESSOR_FILES)}"
        )
    from transformers import AutoFeatureExtractor

    # Through Any: transformers types from_pretrained in some releases and not in others.
    auto: Any = AutoFeatureExtractor
    try:
        return auto.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"could not load the feature extractor in {folder}: {error}") from error


def is_clap_folder(folder: Path) -> bool:
    """Whether a folder's ``config.json`` holds a CLAP-style model."""
    config = read_json(folder / "config.json", missing_ok=True)
    return config.get("model_type") in CLAP_MODEL_TYPES
