"""The commands: each is a thin layer over the library, logging what it does."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from omniembed.cli import data, importing, ray_jobs, serve
from omniembed.errors import MissingExtraError

app = typer.Typer(
    name="omniembed",
    help="Embeddings, an embedded vectorizing database and an HTTP server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("import")(importing.import_command)
app.command("search")(data.search_command)
app.command("serve")(serve.serve_command)

logger = logging.getLogger("omniembed.cli")
ModelArg = Annotated[str, typer.Argument(help="a model folder or a Hugging Face id (from the cache)")]


@app.callback()
def setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log debug details")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="log only warnings and errors")] = False,
) -> None:
    """Embeddings, an embedded vectorizing database and an HTTP server."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def load_model(name: str) -> Any:
    """Load an embedding model by name or folder."""
    from omniembed import SentenceTransformer

    logger.info("loading model %s", name)
    return SentenceTransformer(name)


def read_lines(files: list[Path]) -> list[str]:
    """Non-empty lines of the files (``-`` or none: standard input)."""
    texts: list[str] = []
    for file in files or [Path("-")]:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        texts.extend(line for line in text.splitlines() if line.strip())
    return texts


@app.command()
def encode(
    model: ModelArg,
    files: Annotated[
        list[Path] | None, typer.Argument(help="text files, one input per line; '-' is stdin")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="a .npy, .jsonl or .parquet file (default: JSON lines on stdout)"
        ),
    ] = None,
    prompt_name: Annotated[str | None, typer.Option(help="one of the model's prompts, e.g. query")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    normalize: Annotated[bool, typer.Option(help="scale embeddings to unit length")] = False,
    ray: Annotated[str | None, ray_jobs.RayOption] = None,
    column: Annotated[str, typer.Option(help="with --ray: the column to embed")] = "text",
    concurrency: Annotated[int, typer.Option(min=1, help="with --ray: model actors")] = 1,
    num_cpus: Annotated[float, typer.Option(help="with --ray: CPUs (threads) per actor")] = 1.0,
    num_gpus: Annotated[float, typer.Option(help="with --ray: GPUs per actor")] = 0.0,
    skip_bad: Annotated[
        bool, typer.Option(help="with --ray: leave out rows whose column is null or not text")
    ] = False,
) -> None:
    """Embed every line of FILES (or stdin) and write the vectors; with --ray, a column of Parquet or
    JSON-lines files, on a Ray cluster, into a folder of Parquet files."""
    import numpy as np

    if ray is not None:
        ray_jobs.encode_on_ray(
            ray,
            model,
            list(files or []),
            output,
            column=column,
            concurrency=concurrency,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            on_bad="skip" if skip_bad else "refuse",
            batch_size=max(batch_size, 256),
            prompt_name=prompt_name,
            normalize_embeddings=normalize,
        )
        return
    if output is not None and output.suffix not in (".npy", ".jsonl", ".parquet"):
        raise ValueError(f"--output {output} must end in .npy, .jsonl or .parquet")
    loaded = load_model(model)
    texts = read_lines(list(files or []))
    embeddings = loaded.encode(
        texts, prompt_name=prompt_name, batch_size=batch_size, normalize_embeddings=normalize
    )
    logger.info("embedded %d inputs into %s vectors", len(texts), embeddings.shape[1:])
    if output is not None and output.suffix == ".npy":
        np.save(output, embeddings)
        return
    if output is not None and output.suffix == ".parquet":
        write_parquet(output, texts, embeddings)
        return
    lines = (json.dumps({"text": t, "embedding": v.tolist()}) for t, v in zip(texts, embeddings, strict=True))
    if output is None:
        for line in lines:
            sys.stdout.write(line + "\n")
    else:
        output.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_parquet(path: Path, texts: list[str], embeddings: Any) -> None:
    """Write a ``text`` column and a fixed-size-list ``embedding`` column."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError("parquet output needs pyarrow: pip install 'omniembed[parquet]'") from None
    width = int(embeddings.shape[1])
    column = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1), pa.float32()), width)
    pq.write_table(pa.table({"text": texts, "embedding": column}), path)


@app.command()
def info(model: ModelArg) -> None:
    """Show what a model embeds: modalities, dimensions, prompts, maximum length, similarity."""
    loaded = load_model(model)
    facts = {
        "model": model,
        "modalities": list(loaded.modalities),
        "dimensions": loaded.get_sentence_embedding_dimension(),
        "max_seq_length": loaded.max_seq_length,
        "similarity": loaded.similarity_fn_name,
        "prompts": loaded.prompts,
        "default_prompt_name": loaded.default_prompt_name,
        "modules": [type(module).__name__ for module in loaded],
    }
    sys.stdout.write(json.dumps(facts, indent=2) + "\n")


@app.command()
def bench(
    model: ModelArg,
    count: Annotated[int, typer.Option(min=1, help="how many texts to embed")] = 256,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
) -> None:
    """Time encoding on this machine with built-in sentences of mixed length (texts per second)."""
    loaded = load_model(model)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "while",
        "a",
        "cat",
        "watches",
        "from",
        "the",
        "warm",
        "window",
    ]
    texts = [" ".join(words[: 4 + (i * 7) % len(words)]) + f" {i}" for i in range(count)]
    loaded.encode(texts[:batch_size], batch_size=batch_size)  # warm up
    start = time.perf_counter()
    loaded.encode(texts, batch_size=batch_size)
    seconds = time.perf_counter() - start
    result = {"texts": count, "seconds": round(seconds, 3), "texts_per_second": round(count / seconds, 1)}
    sys.stdout.write(json.dumps(result) + "\n")
