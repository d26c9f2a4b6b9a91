"""``omniembed import``: files (or stdin) into a collection, streamed, with a summary of what was refused."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from omniembed.cli import ray_jobs, readers, refusals
from omniembed.cli.readers import Places, Source

logger = logging.getLogger("omniembed.cli")
PARTIAL = 3


def import_command(
    database: Annotated[Path, typer.Argument(help="the database folder (created if missing)")],
    collection: Annotated[str, typer.Argument(help="the collection (created if missing)")],
    file: Annotated[
        Path,
        typer.Argument(
            help="a .jsonl, .csv or .parquet file of objects, an image, a PDF (one object per page: file, "
            "page, image, text), a folder of such files (each imported by its extension), or '-' for "
            "standard input"
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="the model that embeds a new collection (a ColPali/ColQwen2/ColModernVBert folder "
            "embeds PDF pages as images, with MaxSim)"
        ),
    ] = None,
    text_model: Annotated[
        str | None,
        typer.Option(help="with PDFs: a text model that also embeds each page's text layer (vector 'text')"),
    ] = None,
    dpi: Annotated[
        float, typer.Option(min=1, max=1200, help="with PDFs: the page render resolution")
    ] = 144.0,
    max_side: Annotated[
        int, typer.Option(min=16, help="with PDFs: the longest side of a page image, in pixels")
    ] = 1536,
    vectorize: Annotated[
        list[str] | None,
        typer.Option(
            help="properties to embed (default: every text and image property); 'metadata.author' "
            "names text inside an object property"
        ),
    ] = None,
    image: Annotated[
        list[str] | None, typer.Option(help="a property whose values are image files (relative to FILE)")
    ] = None,
    id_field: Annotated[
        str | None,
        typer.Option(
            help="a field naming each object (default: '_id' when the data has one); its value derives "
            "the uuid, so importing the same file again updates the objects, and is kept as property 'id'"
        ),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            help='a JSON file of property types, {"year": "int", "metadata": "object"}; the '
            "rest are inferred from the first objects"
        ),
    ] = None,
    include: Annotated[list[str] | None, typer.Option(help="import only these properties")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="leave out these properties")] = None,
    format: Annotated[
        Literal["jsonl", "csv", "parquet"] | None,
        typer.Option(help="how to read stdin or a file with another extension"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    ray: Annotated[str | None, ray_jobs.RayOption] = None,
) -> int:
    """Import objects into a collection, with a progress bar and a summary of refused objects.

    A new collection's types are inferred from a sample (the widest that fits); --schema states them.
    With --ray, the cluster embeds the one --vectorize property with --model, and this process writes.
    """
    import omniembed as oe

    if ray is not None:
        if model is None or not vectorize or len(vectorize) != 1:
            raise ValueError("--ray embeds on the cluster: give --model and one --vectorize property")
        return ray_jobs.import_on_ray(
            ray, database, collection, file, model, vectorize[0], id_field or "id", batch_size
        )
    found = readers.sources(file, format)
    declared = _read_schema(schema)
    pdfs = any(source.kind == "pdf" for source in found)
    with oe.connect(database) as db:
        exists = db.collections.exists(collection)
        known = db.collections.get(collection).config.schema.properties if exists else declared
        skipped: list[str] = []
        places = Places(files=[source.label for source in found])
        pdf_options = {"dpi": dpi, "max_side": max_side, "images": not exists or "image" in known}
        streams = [
            _chosen(readers.read(source, skipped, known, pdf_options), include, exclude, id_field)
            for source in found
        ]
        sample, streams = _peek(streams)
        id_field = id_field or ("_id" if any("_id" in row for _, _, row in sample) else None)
        if not sample:
            _report_empty(file, skipped)
            return PARTIAL if skipped else 0
        if exists:
            target = db.collections.get(collection)
        else:
            if model is None:
                raise ValueError(f"collection {collection!r} does not exist; give --model to create it")
            images = [*(image or []), *(["image"] if any(s.kind in ("image", "pdf") for s in found) else [])]
            types = _types(sample, declared, images, id_field, places)
            if pdfs:
                types = {**types, **{k: v for k, v in oe.PAGE_PROPERTIES.items() if k not in declared}}
            logger.info("creating collection %s with properties %s", collection, types)
            vectors = _vectors(model, vectorize, text_model, pdfs, types)
            target = db.collections.create(collection, types, vectors)
        objects = _objects(streams, places, image or [], found)
        result = target.data.insert_many(
            objects, batch_size=batch_size, show_progress=True, id_field=id_field
        )
    total = len(places.line_of)
    typer.echo(f"imported {len(result.uuids)} of {total} objects into {collection!r}")
    refusals.report(result.errors, places, skipped)
    return PARTIAL if result.errors or skipped else 0


def _vectors(
    model: str, vectorize: list[str] | None, text_model: str | None, pdfs: bool, types: dict[str, Any]
) -> dict[str, Any]:
    """The named vectors of a new collection: one ``default`` vector over ``vectorize`` (every text and
    image property if not given). With PDFs: ``image`` over the page image when the model embeds
    images, else ``text`` over the text properties but the file name; and ``text`` by ``text_model``
    over the text layer when given."""
    import omniembed as oe

    first = oe.Vectorizer(model, vectorize or None, model_class=_model_class(model))
    if not pdfs:
        if text_model is not None:
            raise ValueError("--text-model embeds the text layer of PDF pages; this import has no PDFs")
        return {"default": first}
    if vectorize:
        vectors = {"default": first}
    elif _embeds_images(first.model):
        first.properties = ["image"]
        vectors = {"image": first}
    else:
        kinds = {name: getattr(kind, "type", kind) for name, kind in types.items()}
        first.properties = [
            name for name, kind in kinds.items() if kind in ("text", "text[]") and name != "file"
        ]
        vectors = {"text": first}
    if text_model is not None:
        if "text" in vectors:
            raise ValueError(
                "--model embeds text, not page images; give --text-model only with an image model"
            )
        vectors["text"] = oe.Vectorizer(text_model, ["text"], model_class=_model_class(text_model))
    return vectors


def _model_class(model: str) -> str:
    """The class that loads ``model``: a vision late-interaction (ColPali-style) folder is a
    ``MultiVectorEncoder``, anything else a ``SentenceTransformer``."""
    folder = Path(model)
    if (folder / "config.json").is_file():
        from omniembed.late_interaction.vision import is_vision_retrieval_folder

        if is_vision_retrieval_folder(folder):
            return "MultiVectorEncoder"
    return "SentenceTransformer"


def _embeds_images(model: Any) -> bool:
    from omniembed.late_interaction.vision import VisionMultiVectorEncoder

    if isinstance(model, VisionMultiVectorEncoder):
        return True
    supports = getattr(model, "supports", None)
    return bool(supports is not None and supports("image"))


def _read_schema(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        types = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"--schema {path} is not JSON: {error}") from None
    if not isinstance(types, dict) or not all(isinstance(v, str) for v in types.values()):
        raise ValueError(f'--schema {path} must be a JSON object of property types, {{"year": "int"}}')
    return types


def _chosen(
    rows: Iterator[readers.Row], include: list[str] | None, exclude: list[str] | None, id_field: str | None
) -> Iterator[readers.Row]:
    """The rows with only the included properties (the id field always stays) and none excluded."""
    if not include and not exclude:
        return rows
    keep, drop = set(include or []), set(exclude or [])
    ident = id_field or "_id"
    return (
        (line, {k: v for k, v in row.items() if (k == ident or not keep or k in keep) and k not in drop})
        for line, row in rows
    )


def _peek(
    streams: list[Iterator[readers.Row]],
) -> tuple[list[tuple[int, int, dict[str, Any]]], list[Iterator[readers.Row]]]:
    """A sample from each stream (for inference) and the streams, with the sampled rows put back."""
    from omniembed.store.infer import SAMPLE_SIZE

    per_file = max(20, SAMPLE_SIZE // max(1, len(streams)))
    sample: list[tuple[int, int, dict[str, Any]]] = []
    restored: list[Iterator[readers.Row]] = []
    for index, stream in enumerate(streams):
        head = list(itertools.islice(stream, per_file))
        sample.extend((index, line, row) for line, row in head)
        restored.append(itertools.chain(head, stream))
    return sample, restored


def _types(
    sample: list[tuple[int, int, dict[str, Any]]],
    declared: Mapping[str, str],
    images: list[str],
    id_field: str | None,
    places: Places,
) -> dict[str, Any]:
    """The property types of a new collection: declared ones, the rest inferred from the sample."""
    from omniembed.store.infer import infer_properties

    rows = [{k: v for k, v in row.items() if k not in declared and k != id_field} for _, _, row in sample]
    labels = (f"{places.files[index]}:{line}" for index, line, _ in sample)
    types: dict[str, Any] = {**infer_properties(rows, images=images, places=labels), **declared}
    if id_field is not None:
        types.setdefault("id", "text")
    for name in types:
        if name.startswith("_"):
            raise ValueError(
                f"field {name!r} starts with '_', which is reserved for the system; leave it out with "
                f"--exclude {name}, or name objects by it with --id-field {name}"
            )
    return types


def _objects(
    streams: Iterable[Iterator[readers.Row]], places: Places, images: list[str], found: list[Source]
) -> Iterator[dict[str, Any]]:
    """Every stream's objects in turn, recording where each came from and resolving image paths."""
    for index, (stream, source) in enumerate(zip(streams, found, strict=True)):
        for line, row in stream:
            for name in images:
                if isinstance(row.get(name), str):
                    row[name] = str((source.path.parent / row[name]).resolve())
            places.add(index, line)
            yield row


def _report_empty(file: Path, skipped: list[str]) -> None:
    what = "standard input" if str(file) == "-" else str(file)
    typer.echo(f"nothing to import: {what} holds no objects")
    refusals.report({}, Places(), skipped)
