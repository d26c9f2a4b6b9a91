"""``SparseEncoder``: load a SPLADE or inference-free sparse model and turn texts into sparse vectors
over its vocabulary."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from omniembed.formats.hub import HubOptions
from omniembed.modules import LoadOptions, ModelConfig, Module, Transformer, load_modules, save_modules
from omniembed.modules.folder import MODEL_CONFIG_FILE
from omniembed.modules.module import Features, read_json, write_json
from omniembed.modules.router import Router
from omniembed.modules.sparse import MaskedLMTransformer, SparseStaticEmbedding, SpladePooling
from omniembed.runtime.fused_encoder import FusedMaskedLM
from omniembed.runtime.placement import prepare_for_inference
from omniembed.runtime.threads import check_num_threads, torch_threads
from omniembed.runtime.token_batches import token_budget_batches
from omniembed.sparse.scoring import decode_tokens, select_max_active_dims, sparse_similarity

logger = logging.getLogger(__name__)

DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
SPARSE_SIMILARITIES = ("dot", "cosine")


class SparseEncoder(nn.Sequential):
    """A sparse encoder: maps each text to weights over its vocabulary, most of them zero.

    Args:
        model_name_or_path: a local model folder or a Hugging Face hub id; leave out to use ``modules``.
        modules: the pipeline to use instead of loading one.
        device: ``"cpu"``, ``"cuda"``, ...; defaults to a GPU when there is one.
        prompts: named prompts, merged over the ones the model saved.
        default_prompt_name: the prompt ``encode`` uses when given none.
        similarity_fn_name: ``"dot"`` (the default) or ``"cosine"``.
        max_active_dims: keep at most this many non-zero weights per vector (the largest ones).
        cache_folder, revision, local_files_only, token: where to find the model on the hub.
        trust_remote_code: allow code shipped with the model to run (off by default).
        model_kwargs: passed to ``transformers``' ``from_pretrained``.
        tokenizer_kwargs: passed to the tokenizer's ``from_pretrained``.
        num_threads: CPU threads a forward pass may use; ``None`` uses every core.
    """

    is_sparse = True
    """What the server reads to send ``{"indices", "values"}`` instead of dense vectors."""

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        modules: list[Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        max_active_dims: int | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        num_threads: int | None = None,
    ) -> None:
        config, saved = ModelConfig(), {}
        if model_name_or_path is not None:
            folder = HubOptions(
                cache_folder=cache_folder, revision=revision, token=token, local_files_only=local_files_only
            ).resolve(model_name_or_path)
            options = LoadOptions.from_arguments(trust_remote_code, model_kwargs, tokenizer_kwargs)
            modules = load_modules(folder, options, family="sparse")
            config, saved = ModelConfig.read(folder), read_json(folder / MODEL_CONFIG_FILE, missing_ok=True)
        if not modules:
            raise ValueError("give a model name or path, or the modules of a sparse model")
        super().__init__(*modules)
        self.name_or_path = None if model_name_or_path is None else os.fspath(model_name_or_path)
        self.prompts = {**config.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or config.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts "
                f"{sorted(self.prompts)}"
            )
        self.similarity_fn_name = similarity_fn_name or config.similarity_fn_name or "dot"
        self.max_active_dims = _check_max_active_dims(
            max_active_dims if max_active_dims is not None else saved.get("max_active_dims")
        )
        self.num_threads = check_num_threads(num_threads)
        prepare_for_inference(self, device)

    @property
    def similarity_fn_name(self) -> str:
        """``"dot"`` or ``"cosine"``: what ``similarity`` computes."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str) -> None:
        if value not in SPARSE_SIMILARITIES:
            raise ValueError(
                f"similarity_fn_name {value!r} is not supported for sparse vectors; use {SPARSE_SIMILARITIES}"
            )
        self._similarity_fn_name = value

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.parameters()).device

    @property
    def router(self) -> Router | None:
        """The first module when it routes queries and documents apart, else ``None``."""
        first = self[0]
        return first if isinstance(first, Router) else None

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the default route's input module (every route shares the vocabulary)."""
        return self.pipeline(None)[0].tokenizer

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens are truncated (the default route's limit)."""
        first: Any = self.pipeline(None)[0]
        return int(first.max_seq_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        for module in self.modules():
            if isinstance(module, Transformer):
                module.max_seq_length = value

    def get_embedding_dimension(self) -> int:
        """Return the width of the vectors: the vocabulary size."""
        first = self.pipeline(None)[0]
        if isinstance(first, (MaskedLMTransformer, SparseStaticEmbedding)):
            return first.vocab_size
        return len(self.tokenizer)

    get_sentence_embedding_dimension = get_embedding_dimension

    def pipeline(self, task: str | None) -> list[Module]:
        """The modules a task's inputs run through, input module first (a Router picks its route)."""
        modules: list[Module] = list(self)  # type: ignore[arg-type]
        if isinstance(modules[0], Router):
            return modules[0].route(task) + modules[1:]
        return modules

    def encode(
        self,
        inputs: str | list[str],
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_tensor: bool = True,
        convert_to_sparse_tensor: bool = True,
        max_active_dims: int | None = None,
        task: str | None = None,
    ) -> Any:
        """Encode texts into sparse vectors over the vocabulary.

        Args:
            inputs: one text (giving one vector) or a list (giving one row per text, in input order).
            prompt_name: the name of one of ``prompts`` to put before each text.
            prompt: a prompt string, which wins over ``prompt_name`` and the default prompt.
            batch_size: texts per forward pass (packed by tokens, longest first).
            show_progress_bar: show a tqdm bar; defaults to on when logging is at INFO or below.
            convert_to_tensor: return one tensor (the default); otherwise a list of row tensors.
            convert_to_sparse_tensor: return sparse COO tensors (the default); otherwise dense ones.
            max_active_dims: keep at most this many non-zero weights per vector (default: the model's).
            task: the route of a Router model (``"query"``, ``"document"``); ``None`` takes the default.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        single = isinstance(inputs, str)
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        bad = next((text for text in texts if not isinstance(text, str)), None)
        if bad is not None:
            raise TypeError(f"SparseEncoder encodes texts (strings), got {type(bad).__name__}: {bad!r:.80}")
        prompt = self._resolve_prompt(prompt, prompt_name)
        if prompt:
            texts = [prompt + text for text in texts]
        limit = _check_max_active_dims(
            max_active_dims if max_active_dims is not None else self.max_active_dims
        )
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        modules = self.pipeline(task)
        with torch_threads(self.num_threads):
            rows = self._gather(
                modules, texts, batch_size, limit, convert_to_sparse_tensor, show_progress_bar
            )
        result: Any = rows if convert_to_tensor else list(rows)
        return result[0] if single else result

    def encode_query(self, inputs: str | list[str], **kwargs: Any) -> Any:
        """``encode`` on the ``"query"`` route with the ``query`` prompt (unless a prompt is given)."""
        if kwargs.get("prompt") is None and kwargs.get("prompt_name") is None and "query" in self.prompts:
            kwargs["prompt_name"] = "query"
        kwargs.setdefault("task", "query")
        return self.encode(inputs, **kwargs)

    def encode_document(self, inputs: str | list[str], **kwargs: Any) -> Any:
        """``encode`` on the ``"document"`` route with the ``document``, ``passage`` or ``corpus`` prompt
        (the first there is, unless a prompt is given)."""
        if kwargs.get("prompt") is None and kwargs.get("prompt_name") is None:
            kwargs["prompt_name"] = next(
                (name for name in DOCUMENT_PROMPT_NAMES if name in self.prompts), None
            )
        kwargs.setdefault("task", "document")
        return self.encode(inputs, **kwargs)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        """Score every vector in ``a`` against every one in ``b`` (dense or sparse tensors)."""
        return sparse_similarity(a, b, self.similarity_fn_name)

    def similarity_pairwise(self, a: Tensor, b: Tensor) -> Tensor:
        """Score ``a[i]`` against ``b[i]`` for each row ``i``."""
        return sparse_similarity(a, b, self.similarity_fn_name, pairwise=True)

    def decode(self, embeddings: Tensor, top_k: int | None = None) -> list[Any]:
        """The ``(token, weight)`` pairs of a vector, heaviest first (a list of them per row of a matrix).

        Args:
            embeddings: one vector or a matrix of them, sparse or dense.
            top_k: keep only this many pairs per vector.
        """
        return decode_tokens(embeddings, self.tokenizer, top_k)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model folder, in the format the reference library reads too."""
        folder = Path(path)
        save_modules(list(self), folder)  # type: ignore[arg-type]
        config = ModelConfig(prompts=self.prompts, default_prompt_name=self.default_prompt_name)
        config.similarity_fn_name = self.similarity_fn_name
        config.write(folder)
        data = read_json(folder / MODEL_CONFIG_FILE)
        data["model_type"] = "SparseEncoder"
        if self.max_active_dims is not None:
            data["max_active_dims"] = self.max_active_dims
        write_json(folder / MODEL_CONFIG_FILE, data)

    save_pretrained = save

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise ValueError(f"prompt_name {name!r} is not one of the model's prompts {sorted(self.prompts)}")
        return self.prompts[name]

    def _gather(
        self,
        modules: list[Module],
        texts: list[str],
        batch_size: int,
        limit: int | None,
        sparse: bool,
        progress: bool,
    ) -> Tensor:
        """Run every batch, keep its rows (sparse if asked) and put them back in input order."""
        width = self.get_embedding_dimension()
        order, parts = [], []
        with tqdm(total=len(texts), desc="Batches", unit="input", disable=not progress) as bar:
            for indices, features in self._batches(modules[0], texts, batch_size):
                with torch.inference_mode():
                    features = _forward(modules, features)
                    rows = select_max_active_dims(features["sentence_embedding"].float(), limit).cpu()
                # made outside inference mode, so that users may coalesce and index them
                order.append(indices)
                parts.append(rows.to_sparse() if sparse else rows.clone())
                bar.update(len(indices))
        if not parts:
            empty = torch.zeros((0, width))
            return empty.to_sparse() if sparse else empty
        inverse = torch.from_numpy(np.argsort(np.concatenate(order)))
        gathered = torch.cat(parts).index_select(0, inverse)
        return gathered.coalesce() if sparse else gathered

    @torch.inference_mode()
    def _batches(
        self, first: Module, texts: list[str], batch_size: int
    ) -> Iterator[tuple[np.ndarray, Features]]:
        """Tokenized batches for the route's input module, on the model's device."""
        device = self.device
        if isinstance(first, SparseStaticEmbedding):
            for start in range(0, len(texts), batch_size):
                indices = np.arange(start, min(start + batch_size, len(texts)))
                features = first.tokenize(texts[start : start + batch_size])
                yield indices, {name: value.to(device) for name, value in features.items()}
            return
        if not isinstance(first, Transformer):
            raise ValueError(
                f"a sparse route must start with a transformer or SparseStaticEmbedding, not {first!r}"
            )
        truncated = [0]
        type_ids = "token_type_ids" in first.model_inputs and (
            "token_type_ids" in getattr(first.tokenizer, "model_input_names", ())
        )
        for batch in token_budget_batches(
            first.tokenizer,
            texts,
            batch_size=batch_size,
            max_length=first.max_seq_length,
            type_ids=type_ids,
            truncated=truncated,
        ):
            yield batch.indices, {name: value.to(device) for name, value in batch.features.items()}
        if truncated[0]:
            logger.warning(
                "%d of %d inputs were longer than max_seq_length=%d tokens and were truncated",
                truncated[0],
                len(texts),
                first.max_seq_length,
            )


def _forward(modules: list[Module], features: Features) -> Features:
    """Run a route; a SPLADE network and its pooling run as one, chunk by chunk, where they can (see
    ``FusedMaskedLM.pooled``)."""
    first, rest = modules[0], modules[1:]
    fused = getattr(first, "fast_forward", None)
    if isinstance(fused, FusedMaskedLM) and rest and isinstance(rest[0], SpladePooling):
        inputs = {name: features[name] for name in first.model_inputs if name in features}  # type: ignore[union-attr]
        pooled = fused.pooled(inputs, rest[0].reduce_rows)
        if pooled is not None:
            features["sentence_embedding"] = rest[0].finish(pooled)
            modules = rest[1:]
    for module in modules:
        features = module(features)
    return features


def _check_max_active_dims(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_active_dims must be a positive integer or None, got {value!r}")
    return value
