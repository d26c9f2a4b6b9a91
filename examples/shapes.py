"""Draw a few small pictures for the image examples, so they run without downloading any images."""

from __future__ import annotations

from PIL import Image, ImageDraw

SIZE = 96
BACKGROUND = (245, 245, 240)


def example_images() -> dict[str, Image.Image]:
    """Return simple 96x96 pictures keyed by what they show."""
    circle, square, triangle = (Image.new("RGB", (SIZE, SIZE), BACKGROUND) for _ in range(3))
    ImageDraw.Draw(circle).ellipse((16, 16, 80, 80), fill=(220, 30, 30))
    ImageDraw.Draw(square).rectangle((20, 20, 76, 76), fill=(30, 60, 220))
    ImageDraw.Draw(triangle).polygon([(48, 12), (84, 82), (12, 82)], fill=(30, 170, 60))
    return {"a red circle": circle, "a blue square": square, "a green triangle": triangle}
