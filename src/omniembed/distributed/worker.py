"""The Ray actor of an embedding job: one model, loaded once, embedding one column batch by batch."""

from __future__ import annotations

import logging
import os
from importlib import import_module
from typing import Any

import numpy as np

from omniembed.distributed import rows
from omniembed.distributed.rows import BadRow
from omniembed.distributed.spec import LOADERS, EmbedSpec
from omniembed.errors import InvalidInputError, PoolWorkerError

logger = logging.getLogger(__name__)
_PRECISION_DTYPES: dict[str, Any] = {
    "int8": np.int8,
    "binary": np.int8,
    "uint8": np.uint8,
    "ubinary": np.uint8,
}


def where() -> str:
    """This worker, as an error names it: its process and node."""
    try:
        import ray

        node = str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
    except Exception:  # outside Ray (tests call the class directly)
        node = "this machine"
    return f"worker pid {os.getpid()} on node {node}"


class Embedder:
    """Embed ``spec.column`` of each batch (a ``pyarrow.Table``) into ``spec.output_column``.

    Ray Data builds one instance per actor (``map_batches`` with a callable class), so the model
    loads once per actor; torch's threads are limited to the actor's share of the CPUs.
    """

    def __init__(self, spec: EmbedSpec, skipped: Any = None) -> None:
        import torch

        self.spec = spec
        self.skipped = skipped
        torch.set_num_threads(spec.threads)
        try:
            loader = getattr(import_module(LOADERS[spec.model_class]), spec.model_class)
            self.model = loader(spec.model, **spec.constructor_kwargs())
        except Exception as error:
            raise PoolWorkerError(
                f"{where()} could not load {spec.model_class} {spec.model!r}: "
                f"{type(error).__name__}: {error}; check that the model is on every node (or in its "
                "hub cache) and that its extras are installed there"
            ) from None
        logger.info("%s loaded %s with %d threads", where(), spec.model, spec.threads)

    def __call__(self, table: Any) -> Any:
        spec = self.spec
        if spec.output_column in table.column_names:
            raise ValueError(
                f"the dataset already has a column {spec.output_column!r}; choose another output_column"
            )
        values = rows.column_values(table, spec.column)
        keys = rows.column_values(table, spec.key_column) if spec.key_column else None
        bad = rows.find_bad(values, spec.modality, keys, spec.key_column)
        good = self._keep(values, bad, keys)
        try:
            column = self._column([values[i] for i in good])
        except (ValueError, TypeError) as error:  # find the rows the model refuses, one by one
            logger.warning("%s: a batch failed (%s); retrying its rows one by one", where(), error)
            good = self._keep(values, self._refused(values, good, keys), keys, already=good)
            column = self._column([values[i] for i in good])
        kept = table if len(good) == len(values) else table.take(np.array(good, dtype=np.int64))
        return kept.append_column(spec.output_column, column)

    def _keep(
        self, values: list[Any], bad: list[BadRow], keys: Any, already: list[int] | None = None
    ) -> list[int]:
        """The positions to embed; refuses the batch on a bad row, or records the bad rows as skipped."""
        positions = already if already is not None else list(range(len(values)))
        if not bad:
            return positions
        if self.spec.on_bad == "refuse":
            raise InvalidInputError(
                f"{bad[0].message(self.spec.column)} ({len(bad)} bad row(s) in this batch); fix the "
                "data, or pass on_bad='skip' to leave such rows out and count them"
            )
        if self.skipped is not None:
            digest = rows.batch_digest(values)
            self.skipped.record([(f"{digest}:{b.position}", b.message(self.spec.column)) for b in bad])
        logger.warning("%s skipped %d row(s): %s", where(), len(bad), bad[0].message(self.spec.column))
        dropped = {b.position for b in bad}
        return [i for i in positions if i not in dropped]

    def _refused(self, values: list[Any], good: list[int], keys: Any) -> list[BadRow]:
        refused = []
        for position in good:
            try:
                self._encode([values[position]])
            except (ValueError, TypeError) as error:
                label = rows.row_label(keys, self.spec.key_column, position)
                refused.append(BadRow(position, label, f"cannot be embedded: {error}"))
        return refused

    def _encode(self, values: list[Any]) -> Any:
        spec = self.spec
        method = {
            None: self.model.encode,
            "query": self.model.encode_query,
            "document": self.model.encode_document,
        }[spec.task]
        inputs = rows.as_inputs(values, spec.modality)
        options: dict[str, Any] = {"show_progress_bar": False, **spec.encode_kwargs}
        if spec.model_class == "SparseEncoder":
            options.update(convert_to_tensor=True, convert_to_sparse_tensor=True)
        elif spec.model_class == "MultiVectorEncoder":
            options["convert_to_numpy"] = True
        return method(inputs, **options)

    def _column(self, values: list[Any]) -> Any:
        spec = self.spec
        if spec.model_class == "SparseEncoder":
            return rows.sparse_column(self._encode(values)) if values else self._empty_sparse()
        if spec.model_class == "MultiVectorEncoder":
            width = int(self.model.get_embedding_dimension())
            return rows.multi_vector_column(self._encode(values) if values else [], width)
        if not values:  # the column type of a batch with rows, so blocks share one schema
            return rows.dense_column(self._empty_dense())
        return rows.dense_column(np.asarray(self._encode(values)))

    def _empty_dense(self) -> np.ndarray:
        options = self.spec.encode_kwargs
        width = int(self.model.get_sentence_embedding_dimension())
        width = min(width, options.get("truncate_dim") or width)
        precision = options.get("precision", "float32")
        if precision in ("binary", "ubinary"):
            width = (width + 7) // 8
        return np.zeros((0, width), dtype=_PRECISION_DTYPES.get(precision, np.float32))

    def _empty_sparse(self) -> Any:
        import torch

        return rows.sparse_column(torch.zeros((0, 1)).to_sparse())
