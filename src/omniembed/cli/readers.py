"""Reading import sources as streams of objects: JSON lines, CSV, Parquet, images, folders of them.

One rule for what a path holds, by extension: ``.jsonl``/``.ndjson``/``.csv``/``.parquet`` are
records (one object each), image extensions are one image object each, and a ``.pdf`` is one object
per page (``file``, ``page``, ``image``, ``text``). A folder imports each file by its kind. Every
reader streams: nothing is loaded whole (Parquet from standard input excepted, which needs a
seekable file), and a PDF is rendered a page at a time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniembed.errors import MissingExtraError

RECORD_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
PAGE_SUFFIXES = (".pdf",)
FORMATS = ("jsonl", "csv", "parquet")
Row = tuple[int, dict[str, Any]]  # (line or row number, the object)


@dataclass
class Places:
    """Where each object of an import came from (a file and a line), kept compactly by position."""

    files: list[str] = field(default_factory=list)
    file_of: array[int] = field(default_factory=lambda: array("i"))
    line_of: array[int] = field(default_factory=lambda: array("q"))

    def add(self, file: int, line: int) -> None:
        self.file_of.append(file)
        self.line_of.append(line)

    def __getitem__(self, position: int) -> str:
        return f"{self.files[self.file_of[position]]}:{self.line_of[position]}"


@dataclass
class Source:
    """One file (or standard input) and how to read it."""

    path: Path
    kind: str  # jsonl, csv, parquet, image or pdf

    @property
    def label(self) -> str:
        return "<stdin>" if str(self.path) == "-" else self.path.name


def sources(path: Path, format: str | None = None) -> list[Source]:
    """The sources ``path`` names: a file by its extension (or ``format``), each file of a folder, stdin."""
    if str(path) == "-":
        return [Source(path, format or "jsonl")]
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        found = [Source(p, kind) for p in files if (kind := _kind(p, None, strict=False))]
        if not found:
            raise ValueError(
                f"{path} holds no files to import "
                f"({', '.join(RECORD_SUFFIXES + IMAGE_SUFFIXES + PAGE_SUFFIXES)})"
            )
        return found
    return [Source(path, _kind(path, format, strict=True) or "")]


def _kind(path: Path, format: str | None, strict: bool) -> str | None:
    suffix = path.suffix.lower()
    if format is not None:
        return format
    if suffix in PAGE_SUFFIXES:
        return "pdf"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in RECORD_SUFFIXES:
        return "jsonl" if suffix == ".ndjson" else suffix[1:]
    if strict:
        raise ValueError(
            f"{path} is not a file omniembed imports ({', '.join(RECORD_SUFFIXES)}, images, PDFs, or a "
            "folder of them); give --format for another extension"
        )
    return None


def read(
    source: Source,
    skipped: list[str],
    types: Mapping[str, str],
    pdf_options: Mapping[str, Any] | None = None,
) -> Iterator[Row]:
    """Stream one source's objects; lines that cannot be read go to ``skipped`` with their number.

    ``types`` are the property types already known (declared or of the collection); CSV cells are
    converted to them, and other columns are typed from the cells themselves. ``pdf_options`` go to
    :func:`omniembed.store.pdf.pdf_pages` (``dpi``, ``max_side``, ``images``); a PDF or page that
    cannot be read goes to ``skipped``, naming the file and page.
    """
    if source.kind == "image":
        yield 1, {"file": source.path.name, "image": str(source.path.resolve())}
    elif source.kind == "pdf":
        from omniembed.store.pdf import pdf_pages

        for page in pdf_pages(source.path, errors=skipped, **(pdf_options or {})):
            yield page["page"], page
    elif source.kind == "jsonl":
        yield from _jsonl(source, skipped)
    elif source.kind == "csv":
        yield from _csv(source, skipped, types)
    elif source.kind == "parquet":
        yield from _parquet(source)
    else:
        raise ValueError(f"--format {source.kind!r} is not one of {', '.join(FORMATS)}")


def _text_lines(source: Source) -> Iterator[str]:
    if str(source.path) == "-":
        yield from io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
        return
    with source.path.open(encoding="utf-8", newline="") as handle:
        yield from handle


def _jsonl(source: Source, skipped: list[str]) -> Iterator[Row]:
    for number, line in enumerate(_text_lines(source), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as error:
            skipped.append(f"{source.label}:{number}: not JSON ({str(error)[:80]})")
            continue
        if not isinstance(record, dict):
            skipped.append(f"{source.label}:{number}: a JSON {type(record).__name__}, not an object")
            continue
        yield number, record


def _csv(source: Source, skipped: list[str], types: Mapping[str, str]) -> Iterator[Row]:
    from itertools import chain, islice

    from omniembed.store.infer import SAMPLE_SIZE

    reader = csv.DictReader(_text_lines(source))
    numbered = ((reader.line_num, row) for row in reader)  # the line a row ends on, read as it comes
    head = list(islice(numbered, SAMPLE_SIZE))
    columns = reader.fieldnames or []
    kinds = {name: types.get(name) or _column_type([row.get(name) for _, row in head]) for name in columns}
    converters = {name: _converter(name, kind) for name, kind in kinds.items()}
    for number, row in chain(head, numbered):
        try:
            yield (
                number,
                {
                    name: converters[name](cell)
                    for name, cell in row.items()
                    if name in converters and cell not in (None, "")
                },
            )
        except ValueError as error:
            skipped.append(f"{source.label}:{number}: {error}")


def _column_type(cells: list[str | None]) -> str:
    """A CSV column's type from its cells: int, number or bool where every cell reads as one, else text."""
    filled = [cell.strip() for cell in cells if cell not in (None, "")]
    if not filled:
        return "text"
    if all(_is_int(cell) for cell in filled):
        return "int"
    if all(_is_number(cell) for cell in filled):
        return "number"
    if all(cell.lower() in ("true", "false") for cell in filled):
        return "bool"
    return "text"


def _is_int(cell: str) -> bool:
    try:
        return -(2**63) <= int(cell) < 2**63
    except ValueError:
        return False


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _converter(name: str, kind: str) -> Callable[[str], Any]:
    """How a CSV cell becomes a value of ``kind`` (lists and objects are cells of JSON)."""

    def convert(cell: str) -> Any:
        try:
            if kind == "int":
                return int(cell)
            if kind == "number":
                return float(cell)
            if kind == "bool":
                if cell.strip().lower() not in ("true", "false", "1", "0"):
                    raise ValueError(cell)
                return cell.strip().lower() in ("true", "1")
            if kind.endswith("[]") or kind.startswith("object"):
                return json.loads(cell)
        except ValueError:
            raise ValueError(f"column {name!r} is {kind}, got {cell!r:.60}") from None
        return cell

    return convert


def _parquet(source: Source) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("Parquet input needs pyarrow: pip install 'omniembed[parquet]'") from None
    target: Any = io.BytesIO(sys.stdin.buffer.read()) if str(source.path) == "-" else source.path
    number = 0
    for batch in pq.ParquetFile(target).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield number, {name: value for name, value in row.items() if value is not None}
