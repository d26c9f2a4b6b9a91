"""``omniembed search``: queries out as a table (``omniembed import`` is in ``importing``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

logger = logging.getLogger("omniembed.cli")
PARTIAL = 3


def search_command(
    database: Annotated[Path, typer.Argument(help="the database folder", exists=True, file_okay=False)],
    collection: Annotated[str, typer.Argument(help="the collection to search")],
    query: Annotated[str, typer.Argument(help="the query text")],
    mode: Annotated[Literal["near_text", "bm25", "hybrid"], typer.Option(help="how to search")] = "hybrid",
    alpha: Annotated[float, typer.Option(min=0, max=1, help="hybrid: 1 is pure vector search")] = 0.5,
    limit: Annotated[int, typer.Option(min=1)] = 10,
    output_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    target_vector: Annotated[
        str | None, typer.Option(help="the named vector to search, where the collection has several")
    ] = None,
) -> None:
    """Search a collection and print the results as a table."""
    import omniembed as oe

    with oe.connect(database) as db:
        target = db.collections.get(collection)
        if mode == "near_text":
            result = target.query.near_text(query, limit=limit, target_vector=target_vector)
        elif mode == "bm25":
            result = target.query.bm25(query, limit=limit)
        else:
            result = target.query.hybrid(query, alpha=alpha, limit=limit, target_vector=target_vector)
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
