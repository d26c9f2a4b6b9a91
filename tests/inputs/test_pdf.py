"""PDF decoding: pages in order with their text layers, and every kind of bad document refused by name."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image

from omniembed.errors import InvalidDocumentError
from omniembed.inputs import policy
from omniembed.inputs.pdf import PageError, PdfLimits, PdfPage, RenderOptions, count_pages, read_pdf

from helpers import pdfs
from helpers.cranfield import cranfield


@pytest.fixture(scope="module")
def texts() -> list[str]:
    docs, _ = cranfield(12)
    return [doc["body"] for doc in docs]


def words(text: str) -> list[str]:
    return text.replace("-\n", "- ").split()


def test_pages_come_in_order_with_their_text_layer(tmp_path: Path, texts: list[str]) -> None:
    path = pdfs.write_pdf(tmp_path / "report.pdf", texts)
    pages = list(read_pdf(path))
    assert count_pages(path) == len(texts)
    assert all(isinstance(page, PdfPage) for page in pages)
    assert [page.page for page in pages] == list(range(1, len(texts) + 1))  # type: ignore[union-attr]
    assert {page.file for page in pages} == {"report.pdf"}  # type: ignore[union-attr]
    for page, text in zip(pages, texts, strict=True):
        assert isinstance(page, PdfPage)
        assert words(page.text) == text.split()


def test_a_page_renders_within_max_side_with_its_figure(texts: list[str]) -> None:
    data = pdfs.pdf_bytes(texts[:1])
    (page,) = read_pdf(data, name="a.pdf", render=RenderOptions(dpi=144, max_side=512))
    assert isinstance(page, PdfPage)
    image = Image.open(io.BytesIO(page.image))
    assert image.format == "PNG"
    assert max(image.size) == 512
    assert image.size == (page.width, page.height)
    assert image.size[1] > image.size[0]  # A4 portrait
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None
    assert len(colours) > 20
    (small,) = read_pdf(data, render=RenderOptions(dpi=36, max_side=None, image_format="jpeg"))
    assert isinstance(small, PdfPage)
    assert Image.open(io.BytesIO(small.image)).format == "JPEG"
    assert small.height == round(297 / 25.4 * 36)


def test_a_page_without_text_layer_has_empty_text() -> None:
    (page,) = read_pdf(pdfs.pdf_bytes([""], figures=True), name="scan.pdf")
    assert isinstance(page, PdfPage)
    assert page.text == ""
    assert page.image


def test_text_only_skips_rendering(texts: list[str]) -> None:
    (page,) = read_pdf(pdfs.pdf_bytes(texts[:1]), images=False)
    assert isinstance(page, PdfPage)
    assert page.image == b""
    assert words(page.text) == texts[0].split()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t: pdfs.pdf_bytes(t[:1], password="secret"), r"bad\.pdf: the PDF is encrypted"),
        (lambda t: pdfs.corrupt(pdfs.pdf_bytes(t[:2])), r"bad\.pdf: the PDF cannot be read.*corrupt"),
        (lambda t: pdfs.no_pages(), r"bad\.pdf: the PDF cannot be read.*has no pages"),
        (lambda t: b"PK\x03\x04 a zip file named .pdf", r"bad\.pdf: not a PDF"),
        (lambda t: b"", r"bad\.pdf: the file is empty"),
    ],
)
def test_bad_documents_are_refused_naming_the_file(texts: list[str], make, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidDocumentError, match=match):
        list(read_pdf(make(texts), name="bad.pdf"))


def test_limits_are_checked_before_reading_or_rendering(tmp_path: Path, texts: list[str]) -> None:
    data = pdfs.pdf_bytes(texts[:3])
    with pytest.raises(InvalidDocumentError, match=r"big\.pdf: .* over the limit of 100 bytes"):
        list(read_pdf(data, name="big.pdf", limits=PdfLimits(max_bytes=100)))
    with pytest.raises(InvalidDocumentError, match=r"long\.pdf: 3 pages is over the limit of 2"):
        list(read_pdf(data, name="long.pdf", limits=PdfLimits(max_pages=2)))
    huge = pdfs.pdf_bytes(texts[:1], size=(5000.0, 5000.0))  # 14,173 points a side
    (refused,) = read_pdf(huge, name="poster.pdf", render=RenderOptions(max_side=None))
    assert isinstance(refused, PageError)
    assert str(refused).startswith("poster.pdf, page 1: renders to 28346x28346")
    (capped,) = read_pdf(huge, name="poster.pdf", render=RenderOptions(max_side=256))
    assert isinstance(capped, PdfPage)
    assert (capped.width, capped.height) == (256, 256)


def test_a_remote_policy_reads_no_paths_and_caps_page_pixels(tmp_path: Path, texts: list[str]) -> None:
    path = pdfs.write_pdf(tmp_path / "local.pdf", texts[:1])
    remote = policy.InputPolicy.for_remote_callers(max_image_pixels=100 * 100)
    with policy.using(remote):
        with pytest.raises(InvalidDocumentError, match="send the file's bytes"):
            list(read_pdf(path))
        (page,) = read_pdf(path.read_bytes(), name="sent.pdf")
    assert isinstance(page, PageError)
    assert "over the limit of 10000" in page.message


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="dpi"):
        RenderOptions(dpi=0)
    with pytest.raises(ValueError, match="max_side"):
        RenderOptions(max_side=4)
    with pytest.raises(ValueError, match="max_pages"):
        PdfLimits(max_pages=0)
    with pytest.raises(InvalidDocumentError, match="bytes or a path"):
        list(read_pdf(123))  # type: ignore[arg-type]
    with pytest.raises(InvalidDocumentError, match=r"missing\.pdf.* does not exist; check the path"):
        list(read_pdf("/nowhere/missing.pdf"))


def test_a_page_embedding_a_huge_image_or_text_is_refused_before_it_decodes(texts: list[str]) -> None:
    """PDFium decodes embedded images at full size to render a page: their pixels count too; a
    page's text layer is counted before it is read."""
    pdf = FPDF(unit="mm", format="A4")
    pdf.add_page()
    picture = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(picture, format="PNG")
    pdf.image(picture, x=10, y=10, w=20)
    pdf.set_font("helvetica", size=8)
    pdf.multi_cell(0, 4, " ".join(texts[:3]))
    data = bytes(pdf.output())
    low = RenderOptions(dpi=18, max_side=None)  # the page itself: 149 x 210 pixels
    (refused,) = read_pdf(data, name="photo.pdf", render=low, limits=PdfLimits(max_page_pixels=50_000))
    assert isinstance(refused, PageError)
    assert str(refused) == (
        "photo.pdf, page 1: embeds an image of 300x200 = 60000 pixels, over the limit of 50000"
    )
    (page,) = read_pdf(data, name="photo.pdf", render=low, limits=PdfLimits(max_page_pixels=60_000))
    assert not isinstance(page, PageError)
    (wordy,) = read_pdf(data, name="photo.pdf", images=False, limits=PdfLimits(max_page_chars=50))
    assert isinstance(wordy, PageError)
    assert "characters of text, over the limit of 50" in str(wordy)
