"""PDF files written for tests with fpdf2: pages of text (Cranfield documents) with drawn figures, and
broken ones (encrypted, corrupt, without pages, not a PDF at all)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def no_pages() -> bytes:
    """A well-formed PDF with no pages (written by PDFium itself)."""
    import io

    import pypdfium2

    document, buffer = pypdfium2.PdfDocument.new(), io.BytesIO()
    document.save(buffer)
    document.close()
    return buffer.getvalue()


def pdf_bytes(
    texts: Sequence[str],
    *,
    figures: bool = True,
    size: tuple[float, float] = (210.0, 297.0),
    sizes: Sequence[tuple[float, float]] | None = None,
    password: str | None = None,
) -> bytes:
    """A PDF with one page per text (Helvetica, wrapped), each with a drawn figure under the text.

    ``size`` is the page size in millimetres (``sizes``: one per page); ``password`` encrypts the file
    with that user password.
    """
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format=size)
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(10, 10, 10)
    for number, text in enumerate(texts):
        page_size = sizes[number] if sizes is not None else size
        pdf.add_page(format=page_size)
        pdf.set_font("Helvetica", size=9)
        pdf.multi_cell(0, 4, text.encode("latin-1", "replace").decode("latin-1"))
        if figures:
            _figure(pdf, number, page_size)
    if password is not None:
        pdf.set_encryption(owner_password="owner", user_password=password)
    return bytes(pdf.output())


def _figure(pdf: object, number: int, size: tuple[float, float]) -> None:
    """A small chart in the page's lower part: axes, bars whose heights depend on the page, a circle."""
    width, height = size
    left, bottom = 15.0, height - 15.0
    pdf.set_draw_color(0, 0, 0)  # type: ignore[attr-defined]
    pdf.line(left, bottom, left + 80, bottom)  # type: ignore[attr-defined]
    pdf.line(left, bottom, left, bottom - 50)  # type: ignore[attr-defined]
    for bar in range(6):
        tall = 5 + (number * 7 + bar * 11) % 45
        pdf.set_fill_color(40 * bar % 255, 90, 200 - 30 * bar)  # type: ignore[attr-defined]
        pdf.rect(left + 4 + bar * 12, bottom - tall, 8, tall, style="F")  # type: ignore[attr-defined]
    pdf.circle(x=min(width - 20, left + 110), y=bottom - 25, radius=10 + number % 8)  # type: ignore[attr-defined]


def write_pdf(path: Path, texts: Sequence[str], **options: object) -> Path:
    """Write :func:`pdf_bytes` to ``path`` and return it."""
    path.write_bytes(pdf_bytes(texts, **options))  # type: ignore[arg-type]
    return path


def corrupt(data: bytes) -> bytes:
    """A PDF's header followed by garbage where its objects were."""
    return data[:16] + bytes(range(256)) * 8
