"""``omniembed import`` and ``omniembed search``: files into a collection, queries out as a table."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

logger = logging.getLogger("omniembed.cli")
PARTIAL = 3


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def read_image_folder(folder: Path) -> list[dict[str, Any]]:
    """One object per image file in ``folder`` (sorted): ``{"file": name, "image": path}``."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return [{"file": path.name, "image": str(path.resolve())} for path in files]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Objects from a JSON-lines (``.jsonl``) or CSV (``.csv``) file."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    if path.suffix not in (".jsonl", ".ndjson"):
        raise ValueError(f"{path} is neither .jsonl nor .csv")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number} is not JSON: {error}") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number} is not a JSON object")
            records.append(record)
    return records


def infer_types(records: list[dict[str, Any]], images: list[str]) -> dict[str, str]:
    """Property types from the values seen (text for strings, int, number, bool, text[] for lists)."""
    types: dict[str, str] = {}
    for record in records:
        for name, value in record.items():
            if name in types or value is None:
                continue
            if name in images:
                types[name] = "image"
            elif isinstance(value, bool):
                types[name] = "bool"
            elif isinstance(value, int):
                types[name] = "int"
            elif isinstance(value, float):
                types[name] = "number"
            elif isinstance(value, list):
                types[name] = "text[]"
            else:
                types[name] = "text"
    return types


def import_command(
    database: Annotated[Path, typer.Argument(help="the database folder (created if missing)")],
    collection: Annotated[str, typer.Argument(help="the collection (created if missing)")],
    file: Annotated[
        Path, typer.Argument(help="a .jsonl or .csv file of objects, or a folder of images", exists=True)
    ],
    model: Annotated[str | None, typer.Option(help="the model that embeds a new collection")] = None,
    vectorize: Annotated[
        list[str] | None, typer.Option(help="properties to embed (default: every text and image property)")
    ] = None,
    image: Annotated[
        list[str] | None, typer.Option(help="a property whose values are image files (relative to FILE)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
) -> int:
    """Import objects into a collection, with a progress bar and a summary of refused objects."""
    import omniembed as oe

    if file.is_dir():
        records, image = read_image_folder(file), ["image"]
    else:
        records = read_records(file)
    for record in records:
        for name in image or []:
            if isinstance(record.get(name), str):
                record[name] = str((file.parent / record[name]).resolve())
    with oe.connect(database) as db:
        if db.collections.exists(collection):
            target = db.collections.get(collection)
        else:
            if model is None:
                raise ValueError(f"collection {collection!r} does not exist; give --model to create it")
            types = infer_types(records, list(image or []))
            logger.info("creating collection %s with properties %s", collection, types)
            target = db.collections.create(collection, types, oe.Vectorizer(model, vectorize or None))
        result = target.data.insert_many(records, batch_size=batch_size, show_progress=True)
    typer.echo(f"imported {len(result.uuids)} of {len(records)} objects into {collection!r}")
    for index, message in sorted(result.errors.items())[:20]:
        typer.echo(f"  object {index}: {message}", err=True)
    if len(result.errors) > 20:
        typer.echo(f"  ... and {len(result.errors) - 20} more refused objects", err=True)
    return PARTIAL if result.errors else 0


def search_command(
    database: Annotated[Path, typer.Argument(help="the database folder", exists=True, file_okay=False)],
    collection: Annotated[str, typer.Argument(help="the collection to search")],
    query: Annotated[str, typer.Argument(help="the query text")],
    mode: Annotated[Literal["near_text", "bm25", "hybrid"], typer.Option(help="how to search")] = "hybrid",
    alpha: Annotated[float, typer.Option(min=0, max=1, help="hybrid: 1 is pure vector search")] = 0.5,
    limit: Annotated[int, typer.Option(min=1)] = 10,
    output_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Search a collection and print the results as a table."""
    import omniembed as oe

    with oe.connect(database) as db:
        target = db.collections.get(collection)
        if mode == "near_text":
            result = target.query.near_text(query, limit=limit)
        elif mode == "bm25":
            result = target.query.bm25(query, limit=limit)
        else:
            result = target.query.hybrid(query, alpha=alpha, limit=limit)
        kinds = target.config.schema.properties
    rows = [
        (
            obj.score,
            obj.uuid,
            {k: "<image>" if kinds.get(k) == "image" else v for k, v in obj.properties.items()},
        )
        for obj in result
    ]
    if output_json:
        for score, uuid, properties in rows:
            typer.echo(json.dumps({"score": score, "uuid": uuid, "properties": properties}, default=str))
        return
    _table(query, mode, rows)


def _table(query: str, mode: str, rows: list[tuple[float | None, str, dict[str, Any]]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{mode}: {query!r}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("uuid")
    table.add_column("properties", overflow="fold")
    for rank, (score, uuid, properties) in enumerate(rows, start=1):
        shown = ", ".join(f"{k}={str(v)[:80]}" for k, v in properties.items())
        table.add_row(str(rank), "" if score is None else f"{score:.4f}", uuid[:8], shown)
    Console(width=120).print(table)


def _shown(properties: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    return {name: "<image>" if kinds.get(name) == "image" else value for name, value in properties.items()}
