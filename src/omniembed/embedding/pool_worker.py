"""The worker side of a multi-process pool: load the model, encode chunks, send results back.

Workers are spawned by ``pool.EncodePool``; nothing here runs in the parent except ``from_wire``
and ``log_once``, which undo what a worker did to send its results and warnings.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer

TRUNCATION_WARNING = "%d of %d inputs were longer than max_seq_length=%d tokens and were truncated"
"""Logged once per encode call; a pool gathers its workers' counts into one such line."""


@dataclass(frozen=True)
class EncodeJob:
    """The ``encode`` options a worker applies to each chunk, already resolved by the parent."""

    prompt: str | None
    batch_size: int
    output_value: str | None
    normalize_embeddings: bool
    truncate_dim: int | None


@dataclass(frozen=True)
class _Wire:
    """A tensor sent as a numpy array: the queue would otherwise hand it over as a shared-memory file
    descriptor, and thousands of per-input tensors can run out of them."""

    array: np.ndarray
    dtype: torch.dtype


def to_wire(value: Any) -> Any:
    """Replace the tensors in an ``encode`` result (also inside lists and dicts) by ``_Wire``s."""
    if isinstance(value, Tensor):
        tensor = value.detach().cpu()
        return _Wire((tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy(), tensor.dtype)
    if isinstance(value, dict):
        return {name: to_wire(item) for name, item in value.items()}
    if isinstance(value, list):
        return [to_wire(item) for item in value]
    return value


def from_wire(value: Any) -> Any:
    """Undo ``to_wire``: tensors again, with their dtype."""
    if isinstance(value, _Wire):
        return torch.from_numpy(value.array).to(value.dtype)
    if isinstance(value, dict):
        return {name: from_wire(item) for name, item in value.items()}
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    return value


def work(index: int, device: str, threads: int, setup: Any, tasks: Any, results: Any) -> None:
    """A worker's main loop: load the model from ``setup``, then encode chunks until a ``None`` task."""
    try:
        payload = setup.get()
        if payload is None:  # the parent gave up starting the pool
            return
        model = ForkingPickler.loads(payload)
        _prepare(model, device, threads)
        collector = _Collector()
    except Exception as error:
        results.put((None, index, False, portable(error)))
        return
    results.put((None, index, True, None))
    while True:
        task = tasks.get()
        if task is None:
            _exit_now(results)
        call, chunk_id, items, job = task
        collector.records = []
        try:
            output = to_wire(encode_in_process(model, items, job))
        except Exception as error:
            results.put((call, chunk_id, False, portable(error)))
        else:
            results.put((call, chunk_id, True, (output, collector.records)))


LogRecord = tuple[str, int, str, tuple[Any, ...]]
"""A worker's log record: logger name, level, message template, arguments."""


class _Collector(logging.Handler):
    """Keep the warnings a worker's ``encode`` logs, for the parent to log once per call.

    A worker would otherwise print each chunk's warnings itself, past the parent's logging setup.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[LogRecord] = []
        package = logging.getLogger("omniembed")
        package.addHandler(self)
        package.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and all(isinstance(arg, (int, float, str)) for arg in record.args):
            self.records.append((record.name, record.levelno, str(record.msg), record.args))
        else:
            self.records.append((record.name, record.levelno, record.getMessage(), ()))


def log_once(records: list[LogRecord], texts: int) -> None:
    """Log the workers' warnings in the parent: truncation counted over the call's ``texts``, other
    messages once each."""

    truncated = [args for _, _, message, args in records if message == TRUNCATION_WARNING]
    if truncated:
        count, total = sum(args[0] for args in truncated), max(texts, sum(args[1] for args in truncated))
        logging.getLogger("omniembed.embedding.encoder").warning(
            TRUNCATION_WARNING, count, total, truncated[0][2]
        )
    seen = set()
    for name, level, message, args in records:
        if message != TRUNCATION_WARNING and (name, message, args) not in seen:
            seen.add((name, message, args))
            logging.getLogger(name).log(level, message, *args)


def _exit_now(results: Any) -> None:
    """Flush what this worker sent, then exit without tearing the interpreter down.

    Unloading torch and transformers takes most of a second, which a pool started for one
    ``encode(device=[...])`` call would wait for. multiprocessing's own exit steps still run (they
    flush the queues and free the semaphores this process made, such as tqdm's lock).
    """
    from multiprocessing import util

    results.close()
    util._exit_function()  # type: ignore[attr-defined]  # not in the stubs; what Process runs on exit
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _prepare(model: SentenceTransformer, device: str, threads: int) -> None:
    # Ctrl-C reaches every process in the group; the parent stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if model.num_threads is None:
        torch.set_num_threads(threads)
        from omniembed.runtime.onnx import OnnxNetwork

        if isinstance(model._network, OnnxNetwork):
            model._network.num_threads = threads
    model.to(device)


def encode_in_process(model: SentenceTransformer, items: list[Any], job: EncodeJob) -> Any:
    """``model.encode`` with a job's options, as a worker runs each chunk."""
    return model.encode(
        items,
        prompt=job.prompt,
        batch_size=job.batch_size,
        output_value=job.output_value,  # type: ignore[arg-type]
        normalize_embeddings=job.normalize_embeddings,
        truncate_dim=job.truncate_dim,
        convert_to_tensor=job.output_value == "sentence_embedding",
        show_progress_bar=False,
    )


def portable(error: Exception) -> Exception:
    """The error itself if it survives the queue, else a ``RuntimeError`` carrying its traceback."""
    try:
        ForkingPickler.loads(ForkingPickler.dumps(error))
    except Exception:
        return RuntimeError("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return error
