"""CLIP-style dual encoders: one text tower and one image tower projecting into a shared space."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from omniembed.modules.module import Features
from omniembed.modules.multimodal.base import DualEncoder, load_image_processor, pooler_output


class CLIPModel(DualEncoder):
    """Embed texts with the text tower and images with the image tower of a CLIP model.

    Reads both folder forms of the reference library: the ``CLIPModel`` module of models such as
    clip-ViT-B-32 and a Transformer module whose config lists text and image modalities (which is also
    how a bare Hugging Face CLIP folder loads). The processor is the image processor (``None`` when
    Pillow is missing; images then raise).
    """

    model_types = ("clip",)
    medium = "image"
    media_input = "pixel_values"
    modalities: ClassVar[list[Any]] = ["text", "image", "video"]
    video_frames: int = 8
    """Frames sampled evenly from each video (the most kept when ``video_fps`` is set)."""
    video_fps: float | None = None
    """Sample a frame every ``1 / video_fps`` seconds instead of spreading ``video_frames`` evenly."""

    def preprocess(
        self, modality: str | tuple[str, ...], values: list[Any], prompt: str | None = None
    ) -> Features:
        """Turn loaded RGB images into ``pixel_values`` as the model's processor config says; a video's
        sampled frames become one image each, with ``frame_counts`` saying how many each video has."""
        if modality not in ("image", "video"):
            raise ValueError(f"{type(self).__name__} preprocesses images and videos here, not {modality}")
        processor = self.pillow_processor()
        if modality == "image":
            return {"pixel_values": processor(images=values, return_tensors="pt")["pixel_values"]}
        from PIL import Image

        frames = [Image.fromarray(frame) for video in values for frame in video]
        pixels = processor(images=frames, return_tensors="pt")["pixel_values"]
        return {"pixel_values": pixels, "frame_counts": torch.tensor([len(video) for video in values])}

    def embed_media(self, features: Features) -> Tensor:
        """Run the image tower on ``pixel_values``.

        With ``frame_counts`` (videos), each video's embedding is the mean of its frames' unit-length
        image embeddings, scaled back to unit length: CLIP has no video tower, so this is an average
        of what it sees in each frame, blind to motion and frame order.
        """
        pixels = features["pixel_values"].to(self.auto_model.dtype)
        embeddings = pooler_output(self.auto_model.get_image_features(pixel_values=pixels))
        if "frame_counts" not in features:
            return embeddings
        frames = torch.nn.functional.normalize(embeddings, dim=-1)
        means = [part.mean(dim=0) for part in torch.split(frames, features["frame_counts"].tolist())]
        return torch.nn.functional.normalize(torch.stack(means), dim=-1)

    @classmethod
    def load_processor(cls, folder: Path) -> Any:
        """Load the image processor (``None`` without Pillow)."""
        return load_image_processor(folder)
