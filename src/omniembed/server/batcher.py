"""Dynamic batching: concurrent embedding requests merged into one forward pass in a worker thread.

Requests queue up while the model is busy; the worker takes the first one and the others already
queued with the same options (waiting at most ``max_wait`` seconds for more, by default not at
all, since under load the queue fills while a pass runs), stops at the token budget, and runs
``model.encode`` once over all of them (``batch_size`` = the merged count, so one forward pass).
The event loop only awaits futures, so the server keeps answering while the model runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniembed.inputs import policy as input_policy
from omniembed.inputs.policy import InputPolicy
from omniembed.server.metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    inputs: list[Any]
    key: Hashable
    tokens: int
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop


class DynamicBatcher:
    """Merge concurrent ``encode`` calls on one model.

    Args:
        model: a loaded model with ``encode``.
        model_lock: held around every forward pass, shared with other users of the model.
        max_batch_tokens: stop adding requests once their tokens would exceed this (a single larger
            request still runs, alone).
        max_wait: seconds to wait for more requests after the first one arrives (0: take only
            those already queued).
        metrics: where batch sizes and queue depth are recorded.
        policy: the input policy every forward pass runs under (a server's remote policy).
    """

    def __init__(
        self,
        model: Any,
        model_lock: threading.Lock,
        *,
        max_batch_tokens: int = 16384,
        max_wait: float = 0.0,
        metrics: Metrics | None = None,
        policy: InputPolicy = input_policy.LOCAL,
    ) -> None:
        self.model, self.model_lock, self.policy = model, model_lock, policy
        self.max_batch_tokens, self.max_wait, self.metrics = max_batch_tokens, max_wait, metrics
        self.forward_passes = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._held: _Job | None = None
        self._thread: threading.Thread | None = None

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the model."""
        return self._queue.qsize() + (self._held is not None)

    def start(self) -> None:
        """Start the worker thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="omniembed-batcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Finish the queued requests and stop the worker thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    async def encode(self, inputs: list[Any], *, tokens: int, key: Hashable = None) -> np.ndarray:
        """Embed ``inputs`` (a matrix, one row per input) together with whatever else is waiting.

        Args:
            inputs: what ``model.encode`` takes, as a list.
            tokens: the cost of these inputs against the token budget.
            key: requests merge only with others of the same key (for example the prompt name).
        """
        loop = asyncio.get_running_loop()
        job = _Job(list(inputs), key, max(tokens, 1), loop.create_future(), loop)
        self._queue.put(job)
        self._gauge()
        return await job.future

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self.queue_depth)

    def _next(self, timeout: float | None) -> _Job | None:
        if self._held is not None:
            job, self._held = self._held, None
            return job
        return self._queue.get(timeout=timeout)

    def _run(self) -> None:
        while True:
            first = self._next(None)
            if first is None:
                return
            jobs, stopping = self._gather(first)
            self._gauge()
            self._forward(jobs)
            if stopping:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, tokens = [first], first.tokens
        deadline = time.monotonic() + self.max_wait
        while tokens < self.max_batch_tokens:
            try:
                job = self._next(max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            if job.key != first.key or tokens + job.tokens > self.max_batch_tokens:
                self._held = job  # starts the next batch
                break
            jobs.append(job)
            tokens += job.tokens
        return jobs, False

    def _forward(self, jobs: list[_Job]) -> None:
        live = [job for job in jobs if not job.future.cancelled()]
        if not live:
            return
        inputs = [item for job in live for item in job.inputs]
        start = time.perf_counter()
        try:
            matrix = self._encode(inputs, live[0].key)
        except Exception as error:
            if len(live) > 1:  # one bad request must not fail the others: run each alone
                for job in live:
                    self._forward([job])
                return
            _resolve(live[0], error=error)
            return
        if self.metrics is not None:
            self.metrics.batch_inputs.observe(len(inputs))
            self.metrics.batch_requests.observe(len(live))
            self.metrics.forward_seconds.observe(time.perf_counter() - start)
        logger.debug("forward pass: %d requests, %d inputs", len(live), len(inputs))
        offset = 0
        for job in live:
            _resolve(job, result=matrix[offset : offset + len(job.inputs)])
            offset += len(job.inputs)

    def _encode(self, inputs: list[Any], key: Hashable) -> np.ndarray:
        prompt_name = key if isinstance(key, str) else None
        with self.model_lock, input_policy.using(self.policy):
            self.forward_passes += 1
            # a sparse model's rows come dense here: the route turns each into {indices, values}
            dense = {"convert_to_sparse_tensor": False} if getattr(self.model, "is_sparse", False) else {}
            out = self.model.encode(
                inputs, batch_size=len(inputs), prompt_name=prompt_name, show_progress_bar=False, **dense
            )
        return np.asarray(out, dtype=np.float32).reshape(len(inputs), -1)


def _resolve(job: _Job, *, result: np.ndarray | None = None, error: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():  # the client went away
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
        job.loop.call_soon_threadsafe(settle)
