"""CLAP-style dual encoders: one text tower and one audio tower projecting into a shared space."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from omniembed.modules.module import Features
from omniembed.modules.multimodal.base import (
    DualEncoder,
    load_feature_extractor,
    pooler_output,
)

_AUDIO_INPUTS = ("input_features", "is_longer")


class ClapModel(DualEncoder):
    """Embed texts with the text tower and audio with the audio tower of a CLAP model.

    Loads a bare Hugging Face CLAP folder and the reference library's form of it (a Transformer module
    with text and audio modalities); the processor is its ``ClapFeatureExtractor``. Audio is resampled
    to ``sampling_rate`` and clipped to ``max_audio_seconds`` before the feature extractor sees it, so
    the extractor never crops at random (its ``rand_trunc`` mode would); shorter audio is zero-padded
    to the model's length, as the reference library's call does.
    """

    model_types = ("clap",)
    medium = "audio"
    media_input = "input_features"
    modalities: ClassVar[list[Any]] = ["text", "audio"]

    def __init__(
        self, model: Any, tokenizer: Any, processor: Any, processor_folder: Path | None = None
    ) -> None:
        super().__init__(model, tokenizer, processor, processor_folder)
        self.max_audio_seconds: float = processor.nb_max_samples / processor.sampling_rate
        """The window, in seconds: longer audio is clipped to it (the model's own window by default)."""
        self.long_audio: Literal["clip", "chunk"] = "clip"
        """``"clip"`` keeps the first window of longer audio; ``"chunk"`` embeds every window (a tail
        shorter than a quarter window is dropped, unless it is all there is) and returns their mean."""

    @property
    def sampling_rate(self) -> int:
        """The rate, in samples per second, that the feature extractor expects."""
        return int(self.processor.sampling_rate)

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
        batch = self.processor(values, sampling_rate=self.sampling_rate, padding=True, return_tensors="pt")
        features = {name: batch[name] for name in _AUDIO_INPUTS if name in batch}
        if counts is not None:
            features["chunk_counts"] = counts
        return features

    def embed_media(self, features: Features) -> Tensor:
        """Run the audio tower on ``input_features``; with ``chunk_counts``, average each input's windows."""
        audio = {name: features[name] for name in _AUDIO_INPUTS if name in features}
        audio["input_features"] = audio["input_features"].to(self.auto_model.dtype)
        embeddings = pooler_output(self.auto_model.get_audio_features(**audio))
        if "chunk_counts" not in features:
            return embeddings
        parts = torch.split(embeddings, features["chunk_counts"].tolist())
        return torch.stack([part.mean(dim=0) for part in parts])

    @classmethod
    def load_processor(cls, folder: Path) -> Any:
        """Load the feature extractor."""
        return load_feature_extractor(folder)


def _windows(waveform: Any, size: int) -> list[Any]:
    """Split a waveform into windows of ``size`` samples; drop a short tail unless it is the only one."""
    parts = [waveform[start : start + size] for start in range(0, len(waveform), size)]
    if len(parts) > 1 and len(parts[-1]) < size // 4:
        parts.pop()
    return parts
