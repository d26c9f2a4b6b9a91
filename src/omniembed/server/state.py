"""What one app holds: the model, its batcher, the database and the opened collections."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from omniembed.errors import CollectionNotFoundError
from omniembed.inputs import policy as input_policy
from omniembed.inputs.modality import check_text
from omniembed.inputs.policy import InputPolicy
from omniembed.server.batcher import DynamicBatcher
from omniembed.server.errors import LimitExceededError, NotServedError
from omniembed.server.metrics import Metrics
from omniembed.server.settings import ServerSettings

T = TypeVar("T")


@dataclass
class ServerState:
    """Per-app state, reached through ``request.app.state.omniembed`` (never a module global)."""

    settings: ServerSettings
    metrics: Metrics
    model: Any = None
    db: Any = None
    reranker: Any = None
    model_lock: threading.Lock = field(default_factory=threading.Lock)
    batcher: DynamicBatcher | None = None
    collections: dict[str, Any] = field(default_factory=dict)
    policy: InputPolicy = field(init=False)
    _counter: Any = None
    _rerank_counter: Any = None
    _tokenizing: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="omniembed-tokens")
    )

    def __post_init__(self) -> None:
        self.policy = self.settings.input_policy()
        if self.model is not None:
            self.batcher = DynamicBatcher(
                self.model,
                self.model_lock,
                max_batch_tokens=self.settings.max_batch_tokens,
                max_wait=self.settings.max_wait_ms / 1000,
                metrics=self.metrics,
                policy=self.policy,
            )
        # Private tokenizer copies: fast tokenizers are not safe to share across threads.
        self._counter = _private_tokenizer(self.model)
        self._rerank_counter = _private_tokenizer(self.reranker)

    def start(self) -> None:
        """Start the batcher thread."""
        if self.batcher is not None:
            self.batcher.start()

    def stop(self) -> None:
        """Stop the batcher and the tokenizing thread."""
        if self.batcher is not None:
            self.batcher.stop()
        self._tokenizing.shutdown(wait=False, cancel_futures=True)

    async def count_tokens(self, inputs: dict[str, str], *, reranker: bool = False) -> dict[str, int]:
        """Token counts (with special tokens) of named texts, for the model or the reranker.

        Each text is checked against the character cap first and the token cap as soon as it is
        counted (413 naming it). Counting runs on the tokenizing thread, one slice at a time, so
        another request's texts get the thread in between and a refused request stops early.
        """
        for name, text in inputs.items():
            self.check_chars(text, name)
        counter = self._rerank_counter if reranker else self._counter
        counts: dict[str, int] = {}
        for names in _slices(inputs, TOKENIZE_SLICE_CHARS):
            texts = [inputs[name] for name in names]
            if counter is None:
                found = [len(text.split()) for text in texts]
            else:

                def count(texts: list[str] = texts) -> list[int]:
                    return [len(ids) for ids in counter(texts, add_special_tokens=True)["input_ids"]]

                found = await asyncio.get_running_loop().run_in_executor(self._tokenizing, count)
            for name, tokens in zip(names, found, strict=True):
                self._check_tokens(tokens, name)
                counts[name] = tokens
        return counts

    def check_chars(self, text: str, what: str) -> None:
        """Refuse a text over the character cap (413), before anything tokenizes it, and one that is
        not valid Unicode (400: a lone surrogate)."""
        check_text(text, what)
        limit = self.settings.input_char_limit
        if len(text) > limit:
            raise LimitExceededError(
                f"{what} has {len(text)} characters; this server takes {limit} (--max-input-chars)"
            )

    def _check_tokens(self, tokens: int, what: str) -> None:
        limit = self.settings.max_tokens_per_input
        if tokens > limit:
            raise LimitExceededError(
                f"{what} has {tokens} tokens; this server takes {limit} (--max-tokens-per-input)"
            )

    async def run_remote(
        self, work: Callable[[], T], *, lock: bool = False, policy: input_policy.InputPolicy | None = None
    ) -> T:
        """Run ``work`` in a worker thread under the remote input policy (``policy`` if given, with a
        fresh per-request budget), holding the model lock when ``lock`` is set."""

        def run() -> T:
            chosen = policy or self.policy
            with input_policy.using(chosen), self.model_lock if lock else contextlib.nullcontext():
                return work()

        return await run_in_threadpool(run)

    def require_model(self) -> Any:
        """The served model, or a 404 error when the server runs without one."""
        if self.model is None or self.batcher is None:
            raise NotServedError("this server has no embedding model; start it with --model")
        return self.model

    def require_db(self) -> Any:
        """The served database, or a 404 error when there is none."""
        if self.db is None:
            raise NotServedError("this server has no database; start it with --db FOLDER")
        return self.db

    def collection(self, name: str) -> Any:
        """Open a collection once, giving it the served model where the collection names that model.

        A collection deleted since it was opened is forgotten here and is a 404, like one never made.
        """
        db = self.require_db()
        config = db.backend.configs().get(name)
        if config is None:
            self.collections.pop(name, None)
            raise CollectionNotFoundError(f"no collection named {name!r}")
        if name not in self.collections:
            served = getattr(self.model, "name_or_path", None)
            given = {}
            if self.model is not None:
                for vector_name, vector in config.vectors.items():
                    if vector.vectorizer is not None and vector.vectorizer.get("model") in (served, None):
                        given[vector_name] = self.model
            self.collections[name] = db.collections.get(name, vectorizers=given or None)
        return self.collections[name]


TOKENIZE_SLICE_CHARS = 100_000
"""Characters tokenized in one go: bounds how long another request waits for the tokenizing thread
(the time one slice takes: BENCHMARKS.md, "Figures behind the runtime choices")."""


def _private_tokenizer(model: Any) -> Any:
    tokenizer = getattr(model, "tokenizer", None)
    return copy.deepcopy(tokenizer) if tokenizer is not None else None


def _slices(inputs: dict[str, str], chars: int) -> Iterator[list[str]]:
    """Names of consecutive texts, about ``chars`` characters a slice (a longer text is alone)."""
    names: list[str] = []
    size = 0
    for name, text in inputs.items():
        if names and size + len(text) > chars:
            yield names
            names, size = [], 0
        names.append(name)
        size += len(text)
    if names:
        yield names


def get_state(request: Request) -> ServerState:
    """The app's state, for endpoint dependencies."""
    state = request.app.state.omniembed
    assert isinstance(state, ServerState)
    return state
