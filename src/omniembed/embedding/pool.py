"""Encode with several worker processes, one per device, and put the results back in input order.

The parent cuts the inputs into chunks and keeps a few chunks per worker in flight on a shared task
queue, so a fast worker takes more of them. Each worker holds its own copy of the model (the weights
of a CPU model are shared through shared memory, not copied) and runs the same ``encode`` as the
parent, so every option gives the same numbers as in-process encoding. Quantizing to a ``precision``
happens in the parent, over all the embeddings at once, because ``int8``/``uint8`` take their ranges
from the whole set.

Workers are spawned (never forked: a forked child would inherit torch's thread pools and any CUDA
state of the parent), and each one limits torch (and ONNX Runtime) to its share of the cores, so N
workers on N cores do not fight over them.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from omniembed.embedding.pool_worker import EncodeJob, LogRecord, encode_in_process, from_wire, log_once, work
from omniembed.errors import PoolWorkerError

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""How often a waiting parent checks that every worker is still alive."""

STOP_SECONDS = 5.0
"""How long ``stop`` waits for workers to finish their current chunk before terminating them."""

IN_FLIGHT_PER_WORKER = 2
"""Chunks queued per worker: enough to keep each one busy, few enough to stop quickly on an error."""

MAX_CHUNK = 5000
"""The largest default chunk, as in the reference library."""


def check_chunk_size(chunk_size: int | None) -> None:
    """Raise ``ValueError`` unless ``chunk_size`` is ``None`` or a positive integer.

    >>> check_chunk_size(0)
    Traceback (most recent call last):
    ...
    ValueError: chunk_size must be a positive integer (inputs per chunk sent to a worker) or None, got 0
    """
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            "chunk_size must be a positive integer (inputs per chunk sent to a worker) or None, "
            f"got {chunk_size!r}"
        )


def default_chunk_size(count: int, workers: int) -> int:
    """About ten chunks per worker (a slow chunk then delays little), at most ``MAX_CHUNK`` inputs.

    >>> default_chunk_size(1000, 2)
    50
    """
    return max(1, min(math.ceil(count / workers / 10), MAX_CHUNK))


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_devices() -> list[str]:
    """Every GPU when there are any, else one CPU worker per core (at most 4)."""
    if torch.cuda.is_available():
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return ["cpu"] * min(4, usable_cores())


def check_devices(devices: Any, model: SentenceTransformer) -> list[str]:
    """Return the worker devices as strings, or raise ``ValueError`` naming the one that cannot work."""
    from omniembed.runtime.backends import check_runtime

    if not isinstance(devices, (list, tuple)) or not devices:
        raise ValueError(
            f"give the worker devices as a non-empty list such as ['cpu', 'cpu'] or ['cuda:0', 'cuda:1'], "
            f"got {devices!r}"
        )
    checked = []
    for position, entry in enumerate(devices):
        try:
            device = torch.device(entry)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device {entry!r} (position {position} of {list(devices)!r}) is not a torch device; "
                "use 'cpu', 'cuda' or 'cuda:N'"
            ) from None
        if device.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if (device.index or 0) >= count:
                raise ValueError(f"device {entry!r} is not available: this machine has {count} CUDA GPU(s)")
        check_runtime(model.runtime, device)
        checked.append(str(device))
    return checked


class EncodePool:
    """Worker processes that encode chunks of inputs for one model; start it with
    ``model.start_multi_process_pool()`` and pass it to ``model.encode(..., pool=pool)``.

    The workers hold a copy of the model as it was when the pool started. Stop the pool with
    ``model.stop_multi_process_pool(pool)``, ``pool.stop()``, or by using it in a ``with`` block.

    Attributes:
        devices: one device per worker, such as ``["cpu", "cpu"]``.
        processes: the worker processes.
        threads: CPU threads each worker lets a forward pass use.
    """

    def __init__(self, model: SentenceTransformer, devices: Sequence[str]) -> None:
        self.devices = list(devices)
        self.threads = model.num_threads or max(1, usable_cores() // len(self.devices))
        if model.device.type != "cpu":
            logger.info("moving the model to the CPU to hand it to the pool workers")
            model.to("cpu")
        model.share_memory()
        context = torch.multiprocessing.get_context("spawn")
        self._tasks: Any = context.Queue()
        self._results: Any = context.Queue()
        self._model = weakref.ref(model)
        self._lock = threading.Lock()
        self._calls = itertools.count()
        self._stopped = False
        setup = context.Queue()
        self.processes: list[Any] = [
            context.Process(
                target=work,
                args=(index, device, self.threads, setup, self._tasks, self._results),
                name=f"omniembed-pool-{index}",
                daemon=True,
            )
            for index, device in enumerate(self.devices)
        ]
        for process in self.processes:
            process.start()
        self._finalizer = weakref.finalize(self, _shutdown, self.processes, self._tasks, self._results)
        self._hand_over(model, setup)
        logger.info("started %d pool workers on %s", len(self.processes), ", ".join(self.devices))

    def _hand_over(self, model: SentenceTransformer, setup: Any) -> None:
        """Send each worker the model and wait until every one has loaded it.

        The model goes over a queue rather than as a ``Process`` argument: an argument is written
        to each child's pipe in turn while the parent waits, so the workers would load one by one.
        """
        try:
            for _ in self.processes:
                setup.put(_pickled(model))  # each copy holds one-time handles to the shared weights
            ready = 0
            while ready < len(self.processes):
                ready += self._next_result()[0] is None
        except BaseException:
            for _ in self.processes:
                setup.put(None)
            self.stop()
            raise
        finally:
            setup.close()

    def __enter__(self) -> EncodePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __getitem__(self, key: str) -> Any:
        """The reference library's pool is a dict; keep its keys readable for code written for it."""
        return {"input": self._tasks, "output": self._results, "processes": self.processes}[key]

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"EncodePool(devices={self.devices!r}, threads={self.threads}, {state})"

    @property
    def stopped(self) -> bool:
        """Whether the pool was stopped (or broke when a worker died)."""
        return self._stopped

    def owned_by(self, model: SentenceTransformer) -> bool:
        """Whether ``model`` started this pool."""
        return self._model() is model

    def stop(self) -> None:
        """Ask the workers to exit, terminate those that do not within ``STOP_SECONDS``, and wait."""
        self._stopped = True
        self._finalizer()

    def map(
        self, chunks: Sequence[list[Any]], positions: Sequence[Any], job: EncodeJob, progress: bool
    ) -> tuple[list[Any], list[LogRecord]]:
        """Encode every chunk on the workers; return the outputs in chunk order and what they logged.

        ``positions`` (where each chunk's inputs are in the caller's list) name the inputs in the
        note added to a worker's error.
        """
        with self._lock:  # two threads sharing a pool must not take each other's results
            self._check_running()
            call = next(self._calls)
            outputs: list[Any] = [None] * len(chunks)
            records: list[LogRecord] = []
            waiting = iter(range(len(chunks)))
            failure: tuple[int, Exception] | None = None
            in_flight = 0
            for chunk_id in itertools.islice(waiting, IN_FLIGHT_PER_WORKER * len(self.processes)):
                self._tasks.put((call, chunk_id, chunks[chunk_id], job))
                in_flight += 1
            with tqdm(total=len(chunks), desc="Chunks", unit="chunk", disable=not progress) as bar:
                while in_flight:
                    result_call, chunk_id, ok, payload = self._next_result()
                    if result_call != call:  # left over from a call that was interrupted
                        continue
                    in_flight -= 1
                    if not ok:
                        failure = failure or (chunk_id, payload)
                        continue
                    outputs[chunk_id] = from_wire(payload[0])
                    records += payload[1]
                    bar.update(1)
                    sent = None if failure is not None else next(waiting, None)
                    if sent is not None:
                        self._tasks.put((call, sent, chunks[sent], job))
                        in_flight += 1
        if failure is not None:
            raise _worker_error(failure[1], positions[failure[0]])
        return outputs, records

    def _check_running(self) -> None:
        if self._stopped:
            raise ValueError("this pool was stopped; start a new one with model.start_multi_process_pool()")
        self._check_alive()

    def _check_alive(self) -> None:
        dead = [(index, p) for index, p in enumerate(self.processes) if not p.is_alive()]
        if dead:
            details = ", ".join(
                f"worker {index} on {self.devices[index]!r} (pid {p.pid}, exit code {p.exitcode})"
                for index, p in dead
            )
            self.stop()
            raise PoolWorkerError(
                f"{details} died; the pool was stopped. Start a new one with model.start_multi_process_pool()"
            )

    def _next_result(self) -> tuple[int | None, int, bool, Any]:
        """Wait for a worker's result, checking between polls that no worker died."""
        while True:
            try:
                result: tuple[int | None, int, bool, Any] = self._results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._check_alive()
                continue
            if result[0] is None and not result[2]:  # a worker that could not start
                index, error = result[1], result[3]
                self.stop()
                raise PoolWorkerError(
                    f"pool worker {index} on {self.devices[index]!r} could not start: {error}"
                ) from error
            return result


def encode_with_pool(
    model: SentenceTransformer,
    items: list[Any],
    job: EncodeJob,
    *,
    pool: EncodePool | None,
    devices: Any,
    chunk_size: int | None,
    progress: bool,
) -> Any:
    """Encode ``items`` on ``pool``, or on a pool started on ``devices`` for this call only.

    Returns one float tensor in input order for sentence embeddings, else the per-input list.
    ``chunk_size`` was checked by ``encode`` (``check_chunk_size``).
    """
    if pool is not None:
        if devices is not None:
            raise ValueError(f"give either pool or device, not both (got device={devices!r})")
        if not isinstance(pool, EncodePool):
            raise ValueError(
                f"pool must come from model.start_multi_process_pool(), got a {type(pool).__name__}"
            )
        if not pool.owned_by(model):
            raise ValueError(
                "this pool was started by another model; start one with this model's "
                "start_multi_process_pool()"
            )
        return _gather(pool, items, job, chunk_size, progress, model)
    devices = check_devices(devices, model)
    if not items:
        return _gather(None, items, job, chunk_size, progress, model)
    with EncodePool(model, devices) as temporary:
        return _gather(temporary, items, job, chunk_size, progress, model)


def _gather(
    pool: EncodePool | None,
    items: list[Any],
    job: EncodeJob,
    chunk_size: int | None,
    progress: bool,
    model: SentenceTransformer,
) -> Any:
    if not items:  # nothing to send: the in-process path gives the empty result its shape
        return encode_in_process(model, items, job)
    assert pool is not None
    # Chunks of similar lengths pack into batches with little padding (a chunk of mixed lengths
    # took twice as long to encode here), and the longest chunks go out first, which balances
    # the workers; the results are put back in input order below.
    order = np.argsort([-len(item) if isinstance(item, str) else 0 for item in items], kind="stable")
    if chunk_size is None:
        size = default_chunk_size(len(items), len(pool.processes))
        # Whole batches per chunk: left-padded models then get the batches they get in-process.
        size = math.ceil(size / job.batch_size) * job.batch_size
    else:
        size = chunk_size
    positions = [order[start : start + size] for start in range(0, len(items), size)]
    chunks = [[items[index] for index in chunk] for chunk in positions]
    outputs, records = pool.map(chunks, positions, job, progress)
    log_once(records, texts=sum(isinstance(item, str) for item in items))
    inverse = torch.from_numpy(np.argsort(order))
    if job.output_value == "sentence_embedding":
        return torch.cat(outputs)[inverse]
    rows = [row for output in outputs for row in output]
    return [rows[index] for index in inverse.tolist()]


def start_pool(model: SentenceTransformer, target_devices: Sequence[str] | None) -> EncodePool:
    """Check ``target_devices`` (default: ``default_devices()``) and start a pool on them."""
    devices = check_devices(default_devices() if target_devices is None else target_devices, model)
    return EncodePool(model, devices)


def _pickled(model: SentenceTransformer) -> bytes:
    try:
        return bytes(ForkingPickler.dumps(model))
    except Exception as error:
        raise ValueError(
            f"this model cannot be sent to worker processes ({type(error).__name__}: {error}); "
            "encode without a pool"
        ) from error


def _worker_error(error: Exception, positions: Sequence[int]) -> Exception:
    """Say which inputs the worker was encoding when ``error`` happened."""
    listed = ", ".join(str(int(index)) for index in sorted(positions)[:10])
    more = f" and {len(positions) - 10} more" if len(positions) > 10 else ""
    note = f"raised by a pool worker while encoding the inputs at positions {listed}{more}"
    add_note: Callable[[str], None] | None = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(note)
    return error


def _shutdown(processes: list[Any], tasks: Any, results: Any) -> None:
    """Stop the workers: a ``None`` task each, then terminate whoever is still running after a while."""
    for process in processes:
        if process.is_alive():
            tasks.put(None)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(timeout=STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
        process.close()
    for channel in (tasks, results):
        channel.cancel_join_thread()
        channel.close()
