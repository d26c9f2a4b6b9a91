"""Decode PDF documents into pages: each page rendered to an image, with the text of its text layer.

pypdfium2 (the ``pdf`` extra) does the parsing and rendering; it is imported only when a PDF is read.
Pages come one at a time from a generator, so a long document never sits in memory as images. The
limits are checked before anything is allocated: the file's size before it is read, the page count
when the document opens, and each page's size in points times the render scale before it is rendered.
PDFium is not thread-safe, so every call into it holds one lock.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omniembed.errors import InvalidDocumentError, InvalidInputError, import_extra
from omniembed.inputs import policy as input_policy

_PDFIUM_LOCK = threading.RLock()
POINTS_PER_INCH = 72.0
PDF_MAGIC = b"%PDF-"
ImageFormat = Literal["png", "jpeg"]


MAX_PAGE_IMAGES = 10_000
"""Images one page may embed (each is decoded to render the page)."""


@dataclass(frozen=True)
class PdfLimits:
    """How large a PDF may be and how large its pages may render.

    Attributes:
        max_bytes: the largest file read (checked before reading).
        max_pages: the most pages in one document (checked when it opens, before any page renders).
        max_page_pixels: the most pixels in one rendered page, and in each image the page embeds
            (PDFium decodes those at full size to render it), checked before rendering; the input
            policy's per-image limit applies too, where it is lower.
        max_page_chars: the most characters in one page's text layer (checked before it is read).
    """

    max_bytes: int = 512 * 2**20
    max_pages: int = 10_000
    max_page_pixels: int = 6000 * 6000
    max_page_chars: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pages", "max_page_pixels", "max_page_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PdfLimits.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RenderOptions:
    """How pages become images.

    Attributes:
        dpi: render resolution (72 is one pixel per point).
        max_side: the longest side of a rendered page in pixels; a page that would be larger at
            ``dpi`` is rendered at the scale that fits (``None``: no cap).
        image_format: how the rendered page is encoded (``png`` keeps text sharp, ``jpeg`` is smaller
            for scans and photos).
        jpeg_quality: the JPEG quality, 1 to 95.
    """

    dpi: float = 144.0
    max_side: int | None = 1536
    image_format: ImageFormat = "png"
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        if not isinstance(self.dpi, (int, float)) or isinstance(self.dpi, bool) or not 1 <= self.dpi <= 1200:
            raise ValueError(f"dpi must be a number from 1 to 1200, got {self.dpi!r}")
        if self.max_side is not None and (
            not isinstance(self.max_side, int) or isinstance(self.max_side, bool) or self.max_side < 16
        ):
            raise ValueError(
                f"max_side must be an integer of at least 16 pixels or None, got {self.max_side!r}"
            )
        if self.image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be 'png' or 'jpeg', got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be from 1 to 95, got {self.jpeg_quality!r}")

    def scale(self, width: float, height: float) -> float:
        """The render scale (pixels per point) of a page of ``width`` x ``height`` points."""
        scale = self.dpi / POINTS_PER_INCH
        if self.max_side is not None and max(width, height) * scale > self.max_side:
            scale = self.max_side / max(width, height)
        return scale


@dataclass
class PdfPage:
    """One page: the file it came from, its number (from 1), the encoded image and its text layer."""

    file: str
    page: int
    image: bytes
    text: str
    width: int
    height: int


@dataclass
class PageError:
    """A page that could not be rendered (the rest of its document still is)."""

    file: str
    page: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}, page {self.page}: {self.message}"


def require_pdfium() -> Any:
    """Import and return ``pypdfium2``, or explain how to install it."""
    return import_extra(
        "pypdfium2",
        "reading PDF files needs pypdfium2, which is not installed; install it with "
        "pip install 'omniembed[pdf]'",
    )


def read_pdf(
    source: bytes | str | os.PathLike[str],
    *,
    name: str | None = None,
    render: RenderOptions | None = None,
    limits: PdfLimits | None = None,
    images: bool = True,
) -> Iterator[PdfPage | PageError]:
    """Yield the pages of one PDF in order, rendered one at a time; a page that fails is a ``PageError``.

    Args:
        source: the file's bytes or its path (read under the current input policy).
        name: the file name pages carry (default: the path's name, or ``"document.pdf"`` for bytes).
        render: resolution, longest side and image format.
        limits: the size, page-count and pixel limits.
        images: render the pages (off: only the text layer is read, and ``image`` is empty).

    Raises:
        InvalidDocumentError: the document cannot be opened (not a PDF, corrupt, encrypted, empty, over
            a limit), naming the file; raised when the generator starts.
        MissingExtraError: pypdfium2 is not installed.
    """
    render, limits = render or RenderOptions(), limits or PdfLimits()
    label, data = _source(source, name, limits)
    pdfium = require_pdfium()
    document = _open(pdfium, data, label, limits)
    try:
        for number in range(1, len(document) + 1):
            yield _page(document, number, label, render if images else None, limits)
    finally:
        with _PDFIUM_LOCK:
            document.close()


def count_pages(
    source: bytes | str | os.PathLike[str], *, name: str | None = None, limits: PdfLimits | None = None
) -> int:
    """The number of pages of a PDF, opening it as :func:`read_pdf` would (same checks and errors)."""
    limits = limits or PdfLimits()
    label, data = _source(source, name, limits)
    document = _open(require_pdfium(), data, label, limits)
    with _PDFIUM_LOCK:
        count = len(document)
        document.close()
    return count


def _source(
    source: bytes | str | os.PathLike[str], name: str | None, limits: PdfLimits
) -> tuple[str, bytes | Path]:
    """The file's label and what PDFium opens (bytes, or a path it reads page by page)."""
    opened: bytes | Path
    if isinstance(source, (bytes, bytearray, memoryview)):
        opened = bytes(source)
        label = name or "document.pdf"
        size = len(opened)
        head = opened[:1024]
    elif isinstance(source, (str, os.PathLike)):
        try:
            path = input_policy.current().local_file(source, "PDF", "document")
        except InvalidInputError as error:
            raise InvalidDocumentError(str(error)) from None
        label = name or path.name
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(1024)
        opened = path
    else:
        raise InvalidDocumentError(
            f"a PDF is given as its bytes or a path, got {type(source).__name__}; read the file first"
        )
    if size > limits.max_bytes:
        raise InvalidDocumentError(
            f"{label}: {size} bytes is over the limit of {limits.max_bytes} bytes per PDF; split the file "
            "or raise PdfLimits.max_bytes"
        )
    if size == 0:
        raise InvalidDocumentError(f"{label}: the file is empty; it holds no PDF")
    if PDF_MAGIC not in head:  # the header may follow a little junk, as readers allow
        raise InvalidDocumentError(f"{label}: not a PDF (it does not start with {PDF_MAGIC.decode()})")
    return label, opened


def _open(pdfium: Any, data: bytes | Path, label: str, limits: PdfLimits) -> Any:
    """Open a document and check its page count, with errors that name the file."""
    with _PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data if isinstance(data, bytes) else str(data))
        except pdfium.PdfiumError as error:
            text = str(error)
            if "password" in text.lower():
                raise InvalidDocumentError(
                    f"{label}: the PDF is encrypted (it needs a password); decrypt it first"
                ) from None
            raise InvalidDocumentError(
                f"{label}: the PDF cannot be read ({text.rstrip('.')}); it is corrupt, truncated or has no "
                "pages"
            ) from None
        pages = len(document)
        if pages == 0 or pages > limits.max_pages:
            document.close()
            if pages == 0:
                raise InvalidDocumentError(f"{label}: the PDF has no pages")
            raise InvalidDocumentError(
                f"{label}: {pages} pages is over the limit of {limits.max_pages} per PDF; split the file "
                "or raise PdfLimits.max_pages"
            )
    return document


def _page(
    document: Any, number: int, label: str, render: RenderOptions | None, limits: PdfLimits
) -> PdfPage | PageError:
    """Render one page (checking its size first, unless ``render`` is None) and read its text layer."""
    image: Any = None
    with _PDFIUM_LOCK:
        try:
            page = document[number - 1]
        except Exception as error:
            return PageError(label, number, f"cannot be read ({error})")
        try:
            if render is not None:
                width, height = page.get_size()
                scale = render.scale(width, height)
                pixels = (round(width * scale), round(height * scale))
                why = _too_large(pixels, limits) or _large_embedded_image(page, limits)
                if why:
                    return PageError(label, number, why)
                bitmap = page.render(scale=scale)
                try:
                    image = bitmap.to_pil()
                    if image.mode != "RGB":  # PIL shares RGBA, RGBX and L buffers: copy before freeing
                        image = image.convert("RGB")
                finally:
                    bitmap.close()
            textpage = page.get_textpage()
            try:
                chars = textpage.count_chars()
                if chars > limits.max_page_chars:
                    return PageError(
                        label,
                        number,
                        f"has {chars} characters of text, over the limit of {limits.max_page_chars}",
                    )
                text = textpage.get_text_range()
            finally:
                textpage.close()
        except Exception as error:  # PDFium reports a broken page as one of several errors
            return PageError(label, number, f"cannot be rendered ({error})")
        finally:
            page.close()
    if image is None or render is None:
        return PdfPage(label, number, b"", _clean_text(text), 0, 0)
    return PdfPage(label, number, _encode(image, render), _clean_text(text), image.width, image.height)


def _too_large(pixels: tuple[int, int], limits: PdfLimits) -> str:
    """Why a page that renders to ``pixels`` is refused, or an empty string."""
    count = pixels[0] * pixels[1]
    limit = limits.max_page_pixels
    policy_limit = input_policy.current().max_image_pixels
    if policy_limit is not None:
        limit = min(limit, policy_limit)
    if count > limit or min(pixels) < 1:
        return (
            f"renders to {pixels[0]}x{pixels[1]} = {count} pixels, over the limit of {limit}; "
            "render at a lower dpi or max_side"
        )
    return ""


def _large_embedded_image(page: Any, limits: PdfLimits) -> str:
    """Why a page whose embedded images PDFium would decode past the pixel limit is refused, or ``""``."""
    import pypdfium2.raw as pdfium_c

    limit = limits.max_page_pixels
    policy_limit = input_policy.current().max_image_pixels
    if policy_limit is not None:
        limit = min(limit, policy_limit)
    for count, image in enumerate(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=8)):
        if count >= MAX_PAGE_IMAGES:
            return f"embeds over {MAX_PAGE_IMAGES} images"
        width, height = image.get_px_size()
        if width * height > limit:
            return f"embeds an image of {width}x{height} = {width * height} pixels, over the limit of {limit}"
    return ""


def _encode(image: Any, render: RenderOptions) -> bytes:
    buffer = io.BytesIO()
    if render.image_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=render.jpeg_quality)
    else:
        image.save(buffer, format="PNG", compress_level=3)  # 2% larger than level 6, twice as fast
    return buffer.getvalue()


def _clean_text(text: str) -> str:
    """The text layer with PDFium's line breaks normalised, NUL characters dropped and lone surrogates
    replaced; PDFium marks a hyphen that ends a line with U+FFFE, which becomes the hyphen and the break."""
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\ufffe", "-\n")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
