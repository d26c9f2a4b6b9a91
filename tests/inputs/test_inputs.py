"""Modality detection and image loading: every input form a user may pass, and every way it can go wrong."""

from __future__ import annotations

import base64
import http.server
import io
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from omniembed import SentenceTransformer
from omniembed.errors import InvalidImageError, InvalidInputError, UnsupportedModalityError
from omniembed.inputs.images import load_image
from omniembed.inputs.modality import detect_modality, input_batch

BOTH = ["text", "image"]


@pytest.fixture(scope="module")
def clip(tiny_clip: Callable[..., Path]) -> SentenceTransformer:
    return SentenceTransformer(tiny_clip("plain"), device="cpu")


@pytest.fixture(scope="module")
def cat_path(cifar: list[tuple[Path, str]]) -> Path:
    return next(path for path, label in cifar if label == "cat")


@pytest.mark.parametrize(
    ("value", "supported", "expected"),
    [
        ("a photo of a cat", BOTH, "text"),
        ("photo.jpg", BOTH, "text"),  # no such file and no separator: a text, as in the reference
        ("https://example.com/cat.png", BOTH, "image"),
        ("https://example.com/cat.png", ["text"], "text"),
        ("data:image/png;base64,AAAA", BOTH, "image"),
        (Path("cat.png"), BOTH, "image"),
        (np.zeros((4, 4, 3), dtype=np.uint8), BOTH, "image"),
        (torch.zeros(3, 4, 4), BOTH, "image"),
        (np.zeros(16000, dtype=np.float32), BOTH, "audio"),
        ({"image": "x.png"}, BOTH, "image"),
        ({"text": "a", "image": "x.png"}, BOTH, ("image", "text")),
        ({"role": "user", "content": "hi"}, BOTH, "message"),
        ([{"role": "user", "content": "hi"}], BOTH, "message"),
    ],
)
def test_detect_modality(value: object, supported: list[str], expected: object) -> None:
    assert detect_modality(value, 0, supported) == expected  # type: ignore[arg-type]


def test_existing_image_path_string_is_an_image(cat_path: Path) -> None:
    assert detect_modality(str(cat_path), 0, BOTH) == "image"
    assert detect_modality(str(cat_path), 0, ["text"]) == "text"


def test_single_versus_batch(cat_path: Path) -> None:
    assert input_batch("a", BOTH)[2] is True
    assert input_batch(cat_path, BOTH)[2] is True
    assert input_batch(Image.new("RGB", (2, 2)), BOTH)[2] is True
    assert input_batch(np.zeros((4, 4, 3), dtype=np.uint8), BOTH)[2] is True
    assert input_batch({"image": cat_path}, BOTH)[2] is True
    assert input_batch([{"role": "user", "content": "hi"}], [*BOTH, "message"])[2] is True
    items, kinds, single = input_batch(["a", cat_path], BOTH)
    assert (len(items), kinds, single) == (2, ["text", "image"], False)


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ([1.5], InvalidInputError, "index 0 is a float"),
        (["a", {"color": "red"}], InvalidInputError, r"index 1 is a dict with keys \['color'\]"),
        ([{"text": 3}], InvalidInputError, "'text' that is a int"),
        ([np.zeros((1, 2, 3, 4, 5))], InvalidInputError, "5 dims"),
        (["a", "b", {"text": "a", "image": "x.png"}], UnsupportedModalityError, "index 2 is image\\+text"),
        ([np.zeros(100, dtype=np.float32)], UnsupportedModalityError, "index 0 is audio.*text, image"),
        ([np.zeros((8, 8), dtype=np.uint8)], UnsupportedModalityError, r"as \(H, W, 1\) or a PIL image"),
        ([[{"role": "user", "content": "hi"}]], UnsupportedModalityError, "0 is message.*chat template"),
    ],
)
def test_bad_inputs_name_index_and_kind(
    clip: SentenceTransformer, bad: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        clip.encode(bad)


def test_text_model_names_the_unsupported_modality(minilm: SentenceTransformer) -> None:
    with pytest.raises(UnsupportedModalityError, match=r"index 1 is image.*\(it takes: text\)"):
        minilm.encode(["a text", Image.new("RGB", (8, 8))])
    assert minilm.modalities == ["text"]
    assert minilm.encode({"text": "a text"}).shape == (384,)


def test_every_image_form_gives_the_same_embedding(clip: SentenceTransformer, cat_path: Path) -> None:
    pil = Image.open(cat_path)
    array = np.array(pil.convert("RGB"))
    encoded = base64.b64encode(cat_path.read_bytes()).decode()
    forms = [
        pil,
        cat_path,
        str(cat_path),
        array,
        array.astype(np.float32) / 255.0,
        torch.from_numpy(array).permute(2, 0, 1),
        torch.from_numpy(array).permute(2, 0, 1).float() / 255.0,
        f"data:image/jpeg;base64,{encoded}",
        {"image": cat_path},
    ]
    embeddings = clip.encode(forms)
    assert embeddings.shape == (len(forms), 16)
    np.testing.assert_allclose(embeddings, np.repeat(embeddings[:1], len(forms), axis=0), atol=1e-6)
    np.testing.assert_allclose(clip.encode(pil), embeddings[0], atol=1e-6)


def test_mixed_batches_keep_input_order(
    clip: SentenceTransformer, cifar: list[tuple[Path, str]], sts_sentences: list[str]
) -> None:
    images = [path for path, _ in cifar[:40:3]]
    texts = sts_sentences[:14]
    mixed = [value for pair in zip(texts, images, strict=True) for value in pair]
    together = clip.encode(mixed, batch_size=4)
    np.testing.assert_allclose(together[0::2], clip.encode(texts), atol=1e-5)
    np.testing.assert_allclose(together[1::2], clip.encode(images), atol=1e-5)
    as_tensor = clip.encode(mixed, convert_to_tensor=True, normalize_embeddings=True)
    assert torch.allclose(as_tensor.norm(dim=1), torch.ones(len(mixed)), atol=1e-5)


def test_exif_orientation_is_applied(tmp_path: Path, clip: SentenceTransformer) -> None:
    upright = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera writes; EXIF says how to turn it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.png"
    stored.save(path, exif=exif)
    loaded = load_image(path, index=0)
    assert loaded.size == (30, 20)
    np.testing.assert_array_equal(np.asarray(loaded), np.asarray(upright))
    np.testing.assert_allclose(clip.encode(path), clip.encode(upright), atol=1e-6)


def test_png_with_alpha_is_composited_on_white(tmp_path: Path, clip: SentenceTransformer) -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:8, :, 3] = 255  # top half opaque red, bottom half fully transparent
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(path)
    loaded = np.asarray(load_image(path, index=0))
    assert loaded.shape == (16, 16, 3)
    assert tuple(loaded[0, 0]) == (200, 0, 0)
    assert tuple(loaded[-1, -1]) == (255, 255, 255)
    np.testing.assert_allclose(clip.encode(path), clip.encode(Image.fromarray(loaded)), atol=1e-6)


def test_one_pixel_and_grayscale_images_embed(clip: SentenceTransformer) -> None:
    tiny = Image.new("RGB", (1, 1), (10, 200, 30))
    gray = Image.new("L", (40, 20), 128)
    embeddings = clip.encode([tiny, gray])
    assert embeddings.shape == (2, 16)
    assert np.isfinite(embeddings).all()


def test_corrupt_and_fake_files_name_the_path(
    tmp_path: Path, clip: SentenceTransformer, cat_path: Path
) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(cat_path.read_bytes()[:300])
    with pytest.raises(InvalidImageError, match=r"truncated\.jpg.*corrupt or truncated"):
        clip.encode(["fine", truncated])
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"this is not a png at all")
    with pytest.raises(InvalidImageError, match=r"fake.png.*\(index 0\) is not an image format"):
        clip.encode([str(fake)])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def test_decompression_bomb_is_refused(tmp_path: Path, clip: SentenceTransformer) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20_000, 20_000))
    with pytest.raises(InvalidImageError, match=r"bomb\.png.*decompression bomb.*MAX_IMAGE_PIXELS"):
        clip.encode(bomb)
    just_above_limit = _png_header_only(10_000, 9_000)  # over 89.5M pixels: Pillow only warns here
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        load_image("data:image/png;base64," + base64.b64encode(just_above_limit).decode(), index=3)


def test_missing_paths(clip: SentenceTransformer, tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match=r"nope.png' \(input at index 1\) does not exist"):
        clip.encode(["fine", tmp_path / "nope.png"])
    with pytest.raises(InvalidImageError, match="does not exist"):
        clip.encode([str(tmp_path / "photos" / "cat.jpg")])


@pytest.fixture
def image_server(cat_path: Path) -> Iterator[str]:
    payload = cat_path.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/cat.jpg":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_urls_are_fetched_only_when_allowed(
    tiny_clip: Callable[..., Path], image_server: str, cat_path: Path
) -> None:
    model = SentenceTransformer(tiny_clip("plain"), device="cpu")
    url = f"{image_server}/cat.jpg"
    np.testing.assert_allclose(model.encode(url), model.encode(cat_path), atol=1e-6)
    with pytest.raises(InvalidImageError, match=r"could not fetch the image URL .*missing.png \(index 0\)"):
        model.encode(f"{image_server}/missing.png")
    model.allow_urls = False
    with pytest.raises(InvalidImageError, match=r"index 1 is a URL .* turned off"):
        model.encode(["a text", url])
    closed = SentenceTransformer(tiny_clip("plain"), device="cpu", allow_urls=False)
    with pytest.raises(InvalidImageError, match="allow_urls=True"):
        closed.encode(url)


def test_bad_arrays(clip: SentenceTransformer) -> None:
    with pytest.raises(InvalidInputError, match="outside \\[0, 1\\]"):
        clip.encode(np.full((8, 8, 3), 2.0, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="expected \\(H, W, C\\)"):
        clip.encode(np.zeros((8, 8, 7), dtype=np.uint8))
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG")
    assert clip.encode(Image.open(buffer)).shape == (16,)
