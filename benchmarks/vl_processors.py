"""How far a vision-language embedder's image embeddings move between the Pillow and the torchvision
image processor (transformers' two backends for the same processor config).

The main environment has no torchvision, so there images go through Pillow; where torchvision imports,
omniembed uses torchvision's processor, as the reference library does. This prints the min / mean /
median cosine between the two, per input size, on the CIFAR-10 test images in data/.

Run it where torchvision imports (``make test-vlm`` builds ``.venv-vlm``)::

    .venv-vlm/bin/python benchmarks/vl_processors.py            # a tiny random Qwen3-VL (tests/helpers)
    .venv-vlm/bin/python benchmarks/vl_processors.py --model /path/to/Qwen3-VL-Embedding-2B
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"native 32x32": None, "upscaled 96x96": (96, 96), "wide 120x40": (120, 40), "tall 50x90": (50, 90)}
"""Sizes the CIFAR images are given at; the tiny model's processor keeps 32x32 to 64x64 pixels, so all
but the first are resized by the processor."""


def parse_args() -> argparse.Namespace:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--model", type=Path, help="a Qwen3-VL embedder folder (default: a tiny random one)")
    parser.add_argument("--images", type=int, default=200, help="CIFAR-10 test images to embed (at most 500)")
    return parser.parse_args()


def tiny_model(folder: Path) -> Path:
    """Build the tests' tiny random Qwen3-VL embedder in ``folder``."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers.images import build_qwen3_vl

    return build_qwen3_vl(folder)


def cifar(count: int) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers.images import cifar_images

    return [path for path, _ in cifar_images()[:count]]


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from PIL import Image

    from omniembed import SentenceTransformer
    from omniembed.modules.multimodal.base import load_image_processor
    from omniembed.modules.multimodal.vl_video import torchvision_importable

    if not torchvision_importable():
        sys.exit("torchvision does not import here; run this in .venv-vlm (make test-vlm builds it)")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.model or tiny_model(Path(scratch) / "qwen3-vl")
        model = SentenceTransformer(folder, device="cpu")
        module = model[0]
        torchvision_processor = module.processor
        pillow_processor = load_image_processor(Path(folder), "pil")
        print(f"model: {folder if args.model else 'tiny random Qwen3-VL'}; images: {args.images} CIFAR-10")
        print(f"{'input size':<16} {'min':>10} {'mean':>10} {'median':>10} {'max |pixel diff|':>17}")
        for label, size in SIZES.items():
            images = []
            for path in cifar(args.images):
                with Image.open(path) as image:
                    rgb = image.convert("RGB")
                images.append(rgb if size is None else rgb.resize(size, Image.Resampling.BICUBIC))
            module.processor = torchvision_processor
            reference = model.encode(images, batch_size=32)
            module.processor = pillow_processor
            pillow = model.encode(images, batch_size=32)
            cosines = (reference * pillow).sum(axis=1)
            row = (cosines.min(), cosines.mean(), np.median(cosines))
            pixels = [
                processor(images=images, return_tensors="pt")["pixel_values"]
                for processor in (torchvision_processor, pillow_processor)
            ]
            gap = float((pixels[0] - pixels[1]).abs().max())  # normalised pixel units
            print(f"{label:<16} {row[0]:>10.6f} {row[1]:>10.6f} {row[2]:>10.6f} {gap:>17.4f}")
        module.processor = torchvision_processor


if __name__ == "__main__":
    main()
