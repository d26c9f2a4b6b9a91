"""``encode --ray`` and ``import --ray``: the same commands, run as a job on a Ray cluster."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import typer

logger = logging.getLogger("omniembed.cli")
READERS = {".parquet": "parquet", ".jsonl": "json", ".ndjson": "json", ".json": "json"}
RayOption = typer.Option(
    "--ray",
    metavar="ADDRESS",
    help="run as a job on a Ray cluster: 'auto' (the one running here), 'local' (start one), "
    "host:port or ray://host:port; FILES are then .parquet/.jsonl files or folders of them",
)


def read_dataset(paths: list[Path]) -> Any:
    """A Ray Dataset of the Parquet or JSON-lines files named (folders: every such file in them)."""
    import ray

    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        found = sorted(p for p in path.iterdir() if p.suffix in READERS) if path.is_dir() else [path]
        if path.is_dir() and not found:
            raise ValueError(f"{path} holds no .parquet or .jsonl files")
        files.extend(found)
    kinds = {READERS.get(file.suffix) for file in files}
    if None in kinds or len(kinds) != 1:
        raise ValueError(
            f"--ray reads .parquet or .jsonl files, all of one kind; got {sorted(f.name for f in files)[:5]}"
        )
    names = [str(file.resolve()) for file in files]
    return ray.data.read_parquet(names) if kinds == {"parquet"} else ray.data.read_json(names, lines=True)


def encode_on_ray(address: str, model: str, files: list[Path], output: Path | None, **options: Any) -> None:
    """Embed a column of the files on the cluster and write Parquet files into the ``output`` folder."""
    import pyarrow.parquet as pq

    from omniembed import distributed

    if output is None or output.suffix in (".npy", ".jsonl"):
        raise ValueError("with --ray, give -o FOLDER: the embedded rows are written there as Parquet files")
    started = time.perf_counter()
    with distributed.session(address):
        embedded = distributed.embed(read_dataset(files), model, **options)
        embedded.write_parquet(str(output))
    rows = sum(pq.ParquetFile(file).metadata.num_rows for file in sorted(output.glob("*.parquet")))
    typer.echo(f"embedded {rows} rows into {output} in {time.perf_counter() - started:.1f}s")


def import_on_ray(
    address: str,
    database: Path,
    collection: str,
    file: Path,
    model: str,
    column: str,
    id_field: str,
    batch_size: int,
) -> int:
    """Embed ``column`` of ``file`` on the cluster, then write the objects from this process."""
    import omniembed as oe
    from omniembed import distributed

    with distributed.session(address):
        embedded = distributed.embed(read_dataset([file]), model, column=column, key_column=id_field)
        summary = distributed.import_into(
            embedded,
            database,
            collection,
            id_column=id_field,
            vectorizer=oe.Vectorizer(model, properties=[column]),
            batch_size=batch_size,
        )
    typer.echo(f"imported {summary.imported} objects into {collection!r}")
    for error in summary.errors[:20]:
        typer.echo(f"  refused {error}", err=True)
    return 3 if summary.errors else 0
