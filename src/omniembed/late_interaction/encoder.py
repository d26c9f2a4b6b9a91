"""``MultiVectorEncoder``: late-interaction (ColBERT-style) models giving one vector per token."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from omniembed.formats.hub import HubOptions
from omniembed.inputs.modality import text_batch
from omniembed.late_interaction.config import LateInteractionConfig, read_config
from omniembed.late_interaction.maxsim import TokenMatrices, maxsim, maxsim_pairwise
from omniembed.modules.dense import Dense
from omniembed.modules.module import LoadOptions
from omniembed.modules.normalize import unit_length
from omniembed.modules.transformer import Transformer
from omniembed.runtime.placement import prepare_for_inference

logger = logging.getLogger(__name__)
Task = Literal["query", "document"] | None


class MultiVectorEncoder(nn.Module):
    """Encode each text into a (tokens x dim) matrix and score with MaxSim.

    Reads ColBERT folders in PyLate's layout and the reference library's v6 multi-vector layout:
    a Transformer, a linear projection to a small dimension, query/document prefixes, query
    expansion with ``[MASK]`` tokens where the folder asks for it, a punctuation skiplist on
    documents, and L2-normalised token vectors.

    The Transformer is the only part that sees inputs; an image-capable Transformer (one with a
    ``forward`` that yields ``token_embeddings`` for pixel inputs) can replace it without touching
    the projection, masking or MaxSim.

    Args:
        model_name_or_path: a local folder or a Hugging Face hub id.
        device: ``"cpu"``, ``"cuda"``, ...; defaults to a GPU when there is one.
        cache_folder, revision, local_files_only, token: where and how to find hub models.
        trust_remote_code: allow code shipped with the model to run (off by default).
        model_kwargs, tokenizer_kwargs: passed to ``from_pretrained``.
    """

    _variants: ClassVar[list[type[MultiVectorEncoder]]] = []  # subclasses for other folder layouts

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        MultiVectorEncoder._variants.append(cls)

    @classmethod
    def loads_folder(cls, folder: Path) -> bool:
        """Whether this subclass, rather than ``MultiVectorEncoder`` itself, loads ``folder``."""
        return False

    def __new__(cls, *args: Any, **kwargs: Any) -> MultiVectorEncoder:
        """Return the subclass that loads the folder (``VisionMultiVectorEncoder`` for a transformers
        ``*ForRetrieval`` (ColPali) folder); the folder found here is the one ``__init__`` loads."""
        path = args[0] if args else kwargs.get("model_name_or_path")
        if cls is not MultiVectorEncoder or path is None or not cls._variants:
            return super().__new__(cls)
        folder = HubOptions.pick(kwargs).resolve(path)
        variant = next((variant for variant in cls._variants if variant.loads_folder(folder)), cls)
        instance = super().__new__(variant)
        instance.__dict__["_resolved_folder"] = folder  # read once by __init__, before nn.Module's setup
        return instance

    def _model_folder(self, model_name_or_path: str | os.PathLike[str], hub: HubOptions) -> Path:
        """The folder ``__new__`` resolved for this call, or else the one ``hub`` finds."""
        resolved = self.__dict__.pop("_resolved_folder", None)
        return resolved if isinstance(resolved, Path) else hub.resolve(model_name_or_path)

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: str | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.name_or_path = os.fspath(model_name_or_path)
        hub = HubOptions(
            cache_folder=cache_folder, revision=revision, token=token, local_files_only=local_files_only
        )
        folder = self._model_folder(model_name_or_path, hub)
        options = LoadOptions.from_arguments(trust_remote_code, model_kwargs, tokenizer_kwargs)
        self.config = read_config(folder)
        self.transformer = Transformer.load(self.config.modules[0][1], options)
        self.projections = nn.ModuleList()
        for name, path in self.config.modules[1:]:
            if name == "Dense":
                dense = Dense.load(path, options)
                dense.module_input_name = dense.module_output_name = "token_embeddings"
                self.projections.append(dense)
        _register_prefix_tokens(self.tokenizer, self.config.prompts)
        self._skip_ids = _skiplist_ids(self.tokenizer, self.config.skiplist_words)
        prepare_for_inference(self, device)
        logger.info("loaded multi-vector model from %s", folder)

    @property
    def tokenizer(self) -> Any:
        """The Transformer's tokenizer."""
        return self.transformer.tokenizer

    @property
    def prompts(self) -> dict[str, str]:
        """The ``query`` and ``document`` prefixes put before inputs."""
        return self.config.prompts

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.parameters()).device

    def get_embedding_dimension(self) -> int:
        """Return the width of each token vector."""
        if len(self.projections):
            last = self.projections[-1]
            assert isinstance(last, Dense)
            return last.out_features
        return self.transformer.dimension

    def encode_query(self, inputs: str | list[str], **kwargs: Any) -> Any:
        """``encode`` as queries: the query prefix, query length and expansion."""
        kwargs.setdefault("prompt", self.prompts.get("query"))
        return self.encode(inputs, task="query", **kwargs)

    def encode_document(self, inputs: str | list[str], **kwargs: Any) -> Any:
        """``encode`` as documents: the document prefix and length, skiplist tokens dropped."""
        kwargs.setdefault("prompt", self.prompts.get("document"))
        return self.encode(inputs, task="document", **kwargs)

    def encode(
        self,
        inputs: str | list[str],
        *,
        task: Task = None,
        prompt: str | None = None,
        batch_size: int = 32,
        convert_to_numpy: bool = True,
        show_progress_bar: bool | None = None,
    ) -> Any:
        """Return one (tokens x dim) matrix per input, in input order (one matrix for one string).

        ``task`` picks the length, query expansion and skiplist (``None`` counts as a document with
        the model's full length); ``prompt`` is put before each text. ``encode_query`` and
        ``encode_document`` set both from the model's config.
        """
        texts, single = text_batch(inputs)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if task not in ("query", "document", None):
            raise ValueError(f"task must be 'query', 'document' or None, got {task!r}")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        prompt = prompt or ""
        results: list[Any] = [None] * len(texts)
        for indices, matrices in self._batches(
            [prompt + t for t in texts], task, batch_size, show_progress_bar
        ):
            for index, matrix in zip(indices, matrices, strict=True):
                results[index] = matrix.numpy() if convert_to_numpy else matrix
        return results[0] if single else results

    def similarity(self, queries: TokenMatrices, documents: TokenMatrices) -> Tensor:
        """MaxSim of every query against every document."""
        return maxsim(queries, documents)

    def similarity_pairwise(self, queries: TokenMatrices, documents: TokenMatrices) -> Tensor:
        """MaxSim of ``queries[i]`` against ``documents[i]``."""
        return maxsim_pairwise(queries, documents)

    @torch.inference_mode()
    def _batches(
        self, texts: list[str], task: Task, batch_size: int, progress: bool
    ) -> Iterator[tuple[np.ndarray, list[Tensor]]]:
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for start in tqdm(range(0, len(texts), batch_size), desc="Batches", disable=not progress):
            indices = order[start : start + batch_size]
            features, keep = tokenize(self.tokenizer, self.config, [texts[i] for i in indices], task)
            features = {name: value.to(self.device) for name, value in features.items()}
            embeddings = self.transformer(features)["token_embeddings"]
            for dense in self.projections:
                embeddings = dense({"token_embeddings": embeddings})["token_embeddings"]
            if self.config.normalize:
                embeddings = unit_length(embeddings)
            keep = keep.to(self.device)
            if self._skip_ids is not None and (task or "document") in self.config.skiplist_tasks:
                keep &= ~torch.isin(features["input_ids"], self._skip_ids.to(self.device))
            yield indices, [row[mask].float().cpu() for row, mask in zip(embeddings, keep, strict=True)]


def tokenize(
    tokenizer: Any, config: LateInteractionConfig, texts: list[str], task: Task
) -> tuple[dict[str, Tensor], Tensor]:
    """Tokenize for ``task``; return the model inputs and which positions give output vectors.

    Queries of an expanding model are padded to the expansion width; the padding becomes the
    expansion token, which counts in MaxSim whether or not the encoder attends to it.
    """
    expansion = config.expansion if task == "query" else None
    limit = {"query": config.query_length, "document": config.document_length}.get(task or "")
    padding: bool | str = True
    if expansion is not None:
        if expansion.strategy == "fixed":
            limit, padding = expansion.length, "max_length"
        else:
            limit = max(limit or 0, expansion.length) if limit else None
    batch = tokenizer(
        texts,
        padding=padding,
        truncation=True,
        max_length=limit or tokenizer.model_max_length,
        return_tensors="pt",
    )
    features = {
        name: batch[name] for name in ("input_ids", "attention_mask", "token_type_ids") if name in batch
    }
    keep = features["attention_mask"].bool()
    if expansion is None:
        return features, keep
    width = features["input_ids"].shape[1]
    if width < expansion.length:
        extra = expansion.length - width
        features = {name: nn.functional.pad(value, (0, extra), value=0) for name, value in features.items()}
        keep = features["attention_mask"].bool()
    positions = ~keep & (torch.arange(keep.shape[1]) < expansion.length)
    token_id = (
        tokenizer.convert_tokens_to_ids(expansion.token) if expansion.token else tokenizer.mask_token_id
    )
    if token_id is None:
        token_id = tokenizer.eos_token_id
    if token_id is not None:
        features["input_ids"] = features["input_ids"].masked_fill(positions, int(token_id))
    if expansion.attend:
        features["attention_mask"] = features["attention_mask"].masked_fill(positions, 1)
    return features, keep | positions


def _register_prefix_tokens(tokenizer: Any, prompts: dict[str, str]) -> None:
    """Make a prefix the vocabulary knows (``[unused0]``, ``[Q] ``) tokenize as one piece, as in training."""
    from tokenizers import AddedToken

    known = set(getattr(tokenizer, "added_tokens_encoder", None) or {}) | set(tokenizer.get_vocab())
    register = []
    for value in prompts.values():
        if not value or not value.split():
            continue
        for prefix in (value, value.split(None, 1)[0]):
            if prefix not in known:
                continue
            if tokenizer.tokenize(prefix) != [prefix]:
                register.append(AddedToken(prefix, normalized=False, special=True))
            break
    if register:
        tokenizer.add_special_tokens({"additional_special_tokens": register})


def _skiplist_ids(tokenizer: Any, words: list[str]) -> Tensor | None:
    """Token ids of the skiplist words that are single vocabulary tokens."""
    unk = tokenizer.unk_token_id
    ids = [tokenizer.convert_tokens_to_ids(word) for word in words]
    kept = [
        i
        for i, word in zip(ids, words, strict=True)
        if i is not None and (i != unk or word == tokenizer.unk_token)
    ]
    return torch.tensor(kept, dtype=torch.long) if kept else None
