"""Importing PDFs: pages/s rendered, rendered + embedded, peak memory of a long PDF, bytes stored per page.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/pdf_import.py [--pages 100] [--long 500]

The PDFs are written with fpdf2: one Cranfield document per A4 page (its text, Helvetica 9 pt) under
a drawn bar chart and circle. Pages render at 144 dpi capped at 1,536 pixels a side (the defaults:
1,087 x 1,536 for A4) and are stored as PNG. The runs:

* ``render``: ``pdf_pages`` alone (render, PNG-encode, text layer), and the text layer alone;
* ``tiny ColModernVBert``: ``insert_pdf`` into a collection whose ``image`` vector is a tiny random
  ColModernVBert (56 x 56 pixel input, 4 image tokens: the model costs almost nothing, so this is the
  store's and the renderer's share; a real ColModernVBert adds its forward pass);
* ``MiniLM text``: ``insert_pdf`` with all-MiniLM-L6-v2 embedding the text layer (vector ``text``),
  BM25 on it and the page image stored;
* ``long``: a ``--long``-page PDF imported as in the tiny ColModernVBert run, in a fresh process, for
  its peak RSS (``ru_maxrss``) beside the RSS before the import.

Bytes per page are the database folder's size after closing, divided by the pages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
# The tiny model factory and the PDF writer the tests use.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import omniembed as oe

from helpers import images as imf
from helpers import pdfs
from helpers.cranfield import cranfield
from helpers.models import MINILM_DIR


def write_pdf(path: Path, pages: int) -> Path:
    docs, _ = cranfield(1400)
    texts = [docs[i % len(docs)]["body"] for i in range(pages)]
    return pdfs.write_pdf(path, texts)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def render(pdf: Path, pages: int) -> dict[str, float]:
    start = time.perf_counter()
    images = [len(page["image"]) for page in oe.pdf_pages(pdf)]
    rendered = time.perf_counter() - start
    start = time.perf_counter()
    texts = [len(page["text"]) for page in oe.pdf_pages(pdf, images=False)]
    text_only = time.perf_counter() - start
    assert len(images) == len(texts) == pages
    return {
        "rendered pages/s": pages / rendered,
        "text layer only pages/s": pages / text_only,
        "PNG bytes/page": sum(images) / pages,
        "text chars/page": sum(texts) / pages,
    }


def import_into(pdf: Path, pages: int, folder: Path, vectors: dict[str, object]) -> dict[str, float]:
    with oe.connect(folder) as db:
        collection = db.collections.create("Pages", oe.PAGE_PROPERTIES, vectors)  # type: ignore[arg-type]
        start = time.perf_counter()
        result = collection.data.insert_pdf(pdf, batch_size=16, show_progress=False)
        seconds = time.perf_counter() - start
        assert len(result.uuids) == pages, result.unread
    return {"pages/s": pages / seconds, "bytes stored/page": folder_bytes(folder) / pages}


def long_run(pdf: str, model: str, folder: str) -> None:
    """In a fresh process: import the long PDF; print RSS before and the peak, as JSON."""
    encoder = oe.MultiVectorEncoder(model, device="cpu")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    vectors: dict[str, object] = {"image": oe.Vectorizer(encoder, ["image"])}
    result = import_into(Path(pdf), _pages(pdf), Path(folder), vectors)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rss before MiB": before, "peak rss MiB": peak, **result}))


def _pages(pdf: str) -> int:
    from omniembed.inputs.pdf import count_pages

    return count_pages(pdf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100, help="pages of the PDF the speeds are measured on")
    parser.add_argument(
        "--long", type=int, default=500, help="pages of the PDF the peak memory is measured on"
    )
    parser.add_argument("--long-run", nargs=3, metavar=("PDF", "MODEL", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.long_run:
        long_run(*args.long_run)
        return
    work = Path(tempfile.mkdtemp(prefix="pdf-import-"))
    pdf = write_pdf(work / "short.pdf", args.pages)
    print(f"{args.pages}-page PDF: {pdf.stat().st_size / 2**20:.2f} MiB", flush=True)
    rows: dict[str, dict[str, float]] = {"render": render(pdf, args.pages)}
    print(rows, flush=True)
    model = imf.build_colmodernvbert(work / "colmodernvbert")
    tiny = oe.MultiVectorEncoder(model, device="cpu")
    rows["tiny ColModernVBert (image vector, float16 matrices)"] = import_into(
        pdf, args.pages, work / "db-tiny", {"image": oe.Vectorizer(tiny, ["image"])}
    )
    print(rows, flush=True)
    minilm = oe.SentenceTransformer(MINILM_DIR, device="cpu")
    rows["all-MiniLM-L6-v2 on the text layer (+ BM25, image stored)"] = import_into(
        pdf, args.pages, work / "db-minilm", {"text": oe.Vectorizer(minilm, ["text"])}
    )
    print(rows, flush=True)
    long_pdf = write_pdf(work / "long.pdf", args.long)
    command = [sys.executable, __file__, "--long-run", str(long_pdf), str(model), str(work / "db-long")]
    measured = json.loads(
        subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
    )
    rows[f"{args.long}-page PDF ({long_pdf.stat().st_size / 2**20:.1f} MiB), tiny ColModernVBert"] = measured
    print("\n| run | measure | value |\n|---|---|---:|")
    for run, values in rows.items():
        for name, value in values.items():
            print(f"| {run} | {name} | {value:,.1f} |")


if __name__ == "__main__":
    main()
