"""PDF pages as objects: ``file``, ``page``, ``image`` (the rendered page) and ``text`` (its text layer).

:func:`pdf_pages` streams the pages of PDF files, folders of them or their bytes, one object per
page, for ``insert_many``; ``collection.data.insert_pdf`` does the same into a collection and says
which documents and pages could not be read. A collection made with :data:`PAGE_PROPERTIES` holds
such pages: a vectorizer over ``image`` embeds the page pictures (ColPali-style multi-vector models or
CLIP-style ones), one over ``text`` the text layer, and BM25 searches the text layer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from omniembed.errors import InvalidDocumentError
from omniembed.store.schema import Property

if TYPE_CHECKING:
    from omniembed.inputs.pdf import PdfLimits

PAGE_PROPERTIES: dict[str, Any] = {
    "file": Property("text", tokenization="field"),
    "page": "int",
    "image": "image",
    "text": "text",
}
"""The properties of a collection of PDF pages (``file`` is one token, for filters by file name)."""
PAGE_TYPES = {"file": "text", "page": "int", "image": "image", "text": "text"}
PdfSource: TypeAlias = "str | os.PathLike[str] | bytes | tuple[str, bytes]"
"""A PDF file or a folder of them, the file's bytes, or ``(name, bytes)``."""


def pdf_pages(
    sources: PdfSource | Iterable[PdfSource],
    *,
    dpi: float = 144.0,
    max_side: int | None = 1536,
    image_format: str = "png",
    limits: PdfLimits | None = None,
    images: bool = True,
    errors: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one object per page of each PDF, in file and page order, rendered one page at a time.

    Args:
        sources: a PDF file, a folder (its ``.pdf`` files, sorted by name), the file's bytes,
            ``(name, bytes)``, or a list of these.
        dpi: render resolution.
        max_side: the longest side of a page image in pixels (a larger page renders at the scale that
            fits); ``None`` for no cap.
        image_format: ``png`` or ``jpeg``.
        limits: file size, page count and pixel limits (:class:`omniembed.inputs.pdf.PdfLimits`).
        images: render the pages (off: ``image`` is left out, for text-only collections).
        errors: where to put the message of each document or page that cannot be read (naming the
            file and page), reading on; without it the first such error is raised.

    Raises:
        InvalidDocumentError: a document or page cannot be read, when ``errors`` is not given.
        MissingExtraError: pypdfium2 is not installed.
    """
    from omniembed.inputs.pdf import PageError, RenderOptions, read_pdf

    render = RenderOptions(dpi, max_side, image_format, 85)  # type: ignore[arg-type]
    for source, name in _documents(sources):
        try:
            for page in read_pdf(source, name=name, render=render, limits=limits, images=images):
                if isinstance(page, PageError):
                    _refuse(str(page), errors)
                    continue
                item: dict[str, Any] = {"file": page.file, "page": page.page, "text": page.text}
                if images:
                    item["image"] = page.image
                yield item
        except InvalidDocumentError as error:  # the document's own error, or a page's from _refuse
            if errors is None:
                raise
            errors.append(str(error))


def _refuse(message: str, errors: list[str] | None) -> None:
    if errors is None:
        raise InvalidDocumentError(message)
    errors.append(message)


def _documents(sources: PdfSource | Iterable[PdfSource]) -> Iterator[tuple[Any, str | None]]:
    """Each document of ``sources`` as (what to open, its name)."""
    if isinstance(sources, (str, os.PathLike, bytes)) or _named_bytes(sources):
        sources = [sources]  # type: ignore[list-item]
    for source in sources:
        if _named_bytes(source):
            pair: tuple[Any, Any] = source  # type: ignore[assignment]
            yield bytes(pair[1]), str(pair[0])
        elif isinstance(source, bytes):
            yield source, None
        elif isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            folder = Path(source)
            for path in sorted(folder.iterdir()):
                if path.is_file() and path.suffix.lower() == ".pdf" and not path.name.startswith("."):
                    yield path, None
        elif isinstance(source, (str, os.PathLike)):
            yield source, None
        else:
            raise TypeError(
                f"a PDF source is a path, a folder, bytes or (name, bytes), got {type(source).__name__}"
            )


def check_page_schema(properties: dict[str, str], collection: str) -> list[str]:
    """The page properties a collection holds; raise ``ValueError`` naming the fix when it cannot hold
    pages (``file`` and ``page`` are needed, and ``image`` or ``text``)."""
    wrong = [name for name, kind in PAGE_TYPES.items() if name in properties and properties[name] != kind]
    held = [name for name in PAGE_TYPES if name in properties]
    if wrong or not {"file", "page"} <= set(held) or not {"image", "text"} & set(held):
        raise ValueError(
            f"collection {collection!r} cannot hold PDF pages: it needs the properties {PAGE_TYPES} "
            f"(image or text may be left out), it has {properties}; create it with "
            "db.collections.create(name, oe.PAGE_PROPERTIES, vectors)"
        )
    return held


def _named_bytes(source: Any) -> bool:
    """Whether ``source`` is a ``(name, bytes)`` pair (a tuple of paths is a list of documents)."""
    return (
        isinstance(source, tuple)
        and len(source) == 2
        and isinstance(source[1], (bytes, bytearray, memoryview))
    )
