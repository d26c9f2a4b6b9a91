"""``embed``: a Ray Dataset in, the same rows with an embedding column out, one model per actor."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from omniembed.distributed.cluster import ray_module
from omniembed.distributed.rows import Modality, OnBad
from omniembed.distributed.skipped import Skipped
from omniembed.distributed.spec import EmbedSpec, ModelClass, Task
from omniembed.distributed.worker import Embedder

logger = logging.getLogger(__name__)


def embed(
    ds: Any,
    model: str | os.PathLike[str],
    *,
    column: str = "text",
    output_column: str = "embedding",
    batch_size: int = 256,
    concurrency: int | tuple[int, int] = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0,
    model_class: ModelClass = "SentenceTransformer",
    modality: Modality = "text",
    task: Task = None,
    dtype: str = "float32",
    on_bad: OnBad = "refuse",
    key_column: str | None = None,
    skipped: Skipped | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    **encode_kwargs: Any,
) -> Any:
    """Return ``ds`` with ``output_column`` holding the embedding of each row's ``column`` (lazily).

    Each of ``concurrency`` Ray actors loads the model once and embeds batches of ``batch_size``
    rows with ``num_cpus`` CPU threads (or on ``num_gpus`` of a GPU). Nothing runs until the result
    is consumed (``write_parquet``, ``materialize``, :func:`import_into`).

    Args:
        ds: a ``ray.data.Dataset`` (``read_parquet``, ``read_json``, ``read_images``, ``from_items``...).
        model: a model folder (present on every node) or a hub id (in each node's cache).
        column: the input column: texts, or with ``modality="image"`` image paths, image bytes or
            pixel arrays (the ``image`` column of ``ray.data.read_images``).
        output_column: the new column: a fixed-size list per row (a ``SentenceTransformer``), a list of
            token vectors (a ``MultiVectorEncoder``) or a struct of ``indices`` and ``values`` (a
            ``SparseEncoder``).
        batch_size: rows per Ray batch (a forward pass takes ``encode_kwargs["batch_size"]``,
            32 by default).
        concurrency: actors, or ``(min, max)`` for an autoscaling pool.
        num_cpus: CPUs each actor reserves; its torch threads are limited to that many.
        num_gpus: GPUs each actor reserves; the model goes on ``cuda`` when above 0.
        model_class: ``"SentenceTransformer"``, ``"SparseEncoder"`` or ``"MultiVectorEncoder"``.
        modality: ``"text"`` or ``"image"``.
        task: ``"query"`` or ``"document"`` calls ``encode_query`` / ``encode_document``.
        dtype: the model's ``dtype`` (``"float32"`` exact, ``"bfloat16"``, ``"int8"``), for a
            ``SentenceTransformer``.
        on_bad: ``"refuse"`` (a null or non-text value fails the job, naming the row) or ``"skip"``
            (such rows are left out and counted in ``skipped``).
        key_column: a column that names rows in error messages (such as ``"id"``).
        skipped: a :class:`Skipped` that counts the rows left out.
        model_kwargs: more keyword arguments for the model class (``prompts``, ``truncate_dim``, ...).
        encode_kwargs: options of the model's ``encode`` (``prompt_name``, ``normalize_embeddings``,
            ``precision``, ``batch_size``, ``max_active_dims``, ...).
    """
    ray_module()
    kwargs = dict(model_kwargs or {})
    if dtype != "float32":
        if model_class != "SentenceTransformer":
            raise ValueError(
                f"dtype={dtype!r} is a SentenceTransformer option; {model_class} runs in float32"
            )
        kwargs["dtype"] = dtype
    spec = EmbedSpec(
        model=os.fspath(model),
        model_class=model_class,
        column=column,
        output_column=output_column,
        modality=modality,
        task=task,
        on_bad=on_bad,
        key_column=key_column,
        num_cpus=num_cpus,
        device="cuda" if num_gpus > 0 else kwargs.pop("device", None),
        model_kwargs=kwargs,
        encode_kwargs=dict(encode_kwargs),
    ).check()
    _check_columns(ds, [column, *([key_column] if key_column else [])], output_column)
    _check_cpus(concurrency, num_cpus, num_gpus)
    return ds.map_batches(
        Embedder,
        fn_constructor_kwargs={"spec": spec, "skipped": skipped},
        batch_size=batch_size,
        batch_format="pyarrow",
        concurrency=concurrency,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )


def _check_columns(ds: Any, needed: list[str], output_column: str) -> None:
    """Refuse a missing input column now, when the dataset's schema is known without running it."""
    schema = ds.schema(fetch_if_missing=False)
    names = list(getattr(schema, "names", None) or [])
    if not names:
        return  # unknown until the data is read; the workers check each batch
    for name in needed:
        if name not in names:
            raise KeyError(f"the dataset has no column {name!r} (it has {', '.join(names)})")
    if output_column in names:
        raise ValueError(f"the dataset already has a column {output_column!r}; choose another output_column")


def _check_cpus(concurrency: int | tuple[int, int], num_cpus: float, num_gpus: float) -> None:
    """Warn of a pool the cluster cannot place now: it waits for CPUs (for an autoscaler, or forever)."""
    ray = ray_module()
    least = concurrency[0] if isinstance(concurrency, tuple) else concurrency
    total = float(ray.cluster_resources().get("CPU", 0)) if ray.is_initialized() else None
    if total is not None and num_gpus == 0 and least * num_cpus >= total:
        logger.warning(
            "%d actors of num_cpus=%g take %g CPUs and the cluster has %g now; the job waits until "
            "there are more (leave some for reading and writing the data), or lower concurrency",
            least,
            num_cpus,
            least * num_cpus,
            total,
        )
