"""``CrossEncoder``: score (query, document) pairs jointly, and rank documents for a query."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from omniembed.errors import InvalidInputError
from omniembed.formats.hub import HubOptions
from omniembed.modules.module import LoadOptions, read_json
from omniembed.modules.scorers import (
    ClassifierScorer,
    Pair,
    PromptTemplate,
    YesNoScorer,
    load_backbone,
    load_tokenizer,
    read_folder,
)
from omniembed.runtime.placement import prepare_for_inference

logger = logging.getLogger(__name__)

Activation = Callable[[Tensor], Tensor]
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "Sigmoid": nn.Sigmoid,
    "Identity": nn.Identity,
    "Tanh": nn.Tanh,
    "ReLU": nn.ReLU,
}
"""Activation class names a folder may ask for (as ``torch.nn...Name``); nothing else is imported."""


class CrossEncoder(nn.Module):
    """A reranker: reads a query and a document together and returns how well they match.

    Loads the reference library's cross-encoder folders (a ``...ForSequenceClassification`` model
    with one or more labels and the activation it saved) and causal-LM rerankers of the
    Qwen3-Reranker kind (score from the "yes" and "no" logits at the last position, left padding).

    Args:
        model_name_or_path: a local folder or a Hugging Face hub id.
        device: ``"cpu"``, ``"cuda"``, ...; defaults to a GPU when there is one.
        max_length: truncate pairs to this many tokens (default: the folder's limit, capped by the
            model's position table).
        activation_fn: applied to the logits in ``predict``; default: the folder's choice, else
            sigmoid for one label and identity for several.
        prompt_template: for causal-LM rerankers: ``"auto"`` uses the Qwen3-Reranker prompt when
            the tokenizer has a ChatML chat template (as Qwen3-Reranker's has) and plain pair
            tokenization otherwise; ``"qwen3"`` or a :class:`PromptTemplate` force a template;
            ``None`` forces pair tokenization.
        cache_folder, revision, local_files_only, token: where and how to find hub models.
        trust_remote_code: allow code shipped with the model to run (off by default).
        model_kwargs: passed to ``from_pretrained`` (``{"use_safetensors": False}`` allows pickle
            weights); ``tokenizer_kwargs`` and ``config_kwargs`` likewise.

    >>> CrossEncoder("/no/such/reranker", local_files_only=True)
    Traceback (most recent call last):
    ...
    omniembed.errors.ModelNotFoundError: model '/no/such/reranker' not found: ...
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: str | None = None,
        max_length: int | None = None,
        num_labels: int | None = None,
        activation_fn: Activation | None = None,
        prompt_template: Literal["auto", "qwen3"] | PromptTemplate | None = "auto",
        cache_folder: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        folder = HubOptions(
            cache_folder=cache_folder, revision=revision, token=token, local_files_only=local_files_only
        ).resolve(model_name_or_path)
        options = LoadOptions.from_arguments(trust_remote_code, model_kwargs, tokenizer_kwargs)
        config_kwargs = dict(config_kwargs or {})
        if num_labels is not None:
            config_kwargs["num_labels"] = num_labels
        info = read_folder(folder)
        model = load_backbone(folder, info, options, config_kwargs)
        tokenizer = load_tokenizer(folder, info, options, max_length, model)
        self.scorer: ClassifierScorer | YesNoScorer
        if info.task == "text-generation":
            self.scorer = _yes_no_scorer(model, tokenizer, info.logit_score, prompt_template)
        else:
            self.scorer = ClassifierScorer(model, tokenizer)
        self.activation_fn: Activation = activation_fn or folder_activation(folder, self.num_labels)
        self.name_or_path = str(model_name_or_path)
        self.model_card: str | None = None
        """Markdown written as README.md by ``save`` (training fills it in)."""
        prepare_for_inference(self, device)
        logger.info("loaded reranker from %s", folder)

    @property
    def num_labels(self) -> int:
        """How many scores ``predict`` gives per pair."""
        return self.scorer.num_labels

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self.scorer.tokenizer

    @property
    def max_length(self) -> int:
        """Pairs longer than this many tokens are truncated."""
        return int(self.tokenizer.model_max_length)

    @max_length.setter
    def max_length(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_length must be a positive number of tokens, got {value}")
        self.tokenizer.model_max_length = value

    max_seq_length = max_length

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model folder in the reference library's layout (it loads it too)."""
        from omniembed.rerank.saving import save_cross_encoder

        save_cross_encoder(self, path)

    save_pretrained = save

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.parameters()).device

    def predict(
        self,
        pairs: Sequence[Sequence[str]] | Sequence[str],
        *,
        batch_size: int = 32,
        activation_fn: Activation | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        show_progress_bar: bool | None = None,
        prompt: str | None = None,
    ) -> Any:
        """Score each (query, document) pair.

        Args:
            pairs: a list of pairs, or one pair (which gives one score).
            batch_size: pairs per forward pass (pairs are sorted by length first).
            activation_fn: applied to the logits; defaults to the model's ``activation_fn``.
            apply_softmax: for several labels, turn each row into probabilities.
            convert_to_numpy: return a numpy array (else a list of tensors).
            convert_to_tensor: return one tensor.
            show_progress_bar: show a tqdm bar; defaults to on when logging is at INFO or below.
            prompt: the instruction for causal-LM rerankers with a prompt template.

        Returns:
            Shape (pairs,) for one label, (pairs, labels) otherwise, in input order.

        Raises:
            InvalidInputError: an item is not a pair of strings; the message names its index.
        """
        batch, single = pair_batch(pairs)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        scores = self._scores(batch, batch_size, activation_fn or self.activation_fn, apply_softmax,
                              show_progress_bar, prompt)  # fmt: skip
        if convert_to_tensor:
            result: Any = scores
        elif convert_to_numpy:
            result = scores.float().numpy()
        else:
            result = list(scores)
        return result[0] if single else result

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        *,
        batch_size: int = 32,
        activation_fn: Activation | None = None,
        show_progress_bar: bool | None = None,
        prompt: str | None = None,
    ) -> list[dict[str, Any]]:
        """Score every document against ``query`` and return them best first.

        An empty ``documents`` list gives ``[]``; an empty string is scored like any document.

        Returns:
            ``[{"corpus_id": index, "score": float, "text": document (with return_documents)}]``,
            at most ``top_k`` of them.
        """
        if self.num_labels != 1:
            raise ValueError(
                f"rank needs a model with one label, this one has {self.num_labels}; "
                "call predict with pairs and pick the label you need"
            )
        if not isinstance(query, str):
            raise InvalidInputError(f"query must be a string, got {type(query).__name__} ({query!r:.60})")
        if isinstance(documents, str):
            raise InvalidInputError("documents must be a list of strings, got one string; wrap it in a list")
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k must be a non-negative integer or None, got {top_k!r}")
        documents = list(documents)
        scores = self.predict(
            [(query, document) for document in documents],
            batch_size=batch_size,
            activation_fn=activation_fn,
            show_progress_bar=show_progress_bar,
            prompt=prompt,
        )
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:top_k]
        results = []
        for index in order.tolist():
            row: dict[str, Any] = {"corpus_id": index, "score": float(scores[index])}
            if return_documents:
                row["text"] = documents[index]
            results.append(row)
        return results

    @torch.inference_mode()
    def _scores(
        self,
        pairs: list[Pair],
        batch_size: int,
        activation: Activation,
        apply_softmax: bool,
        progress: bool,
        prompt: str | None,
    ) -> Tensor:
        if not pairs:
            shape = (0,) if self.num_labels == 1 else (0, self.num_labels)
            return torch.zeros(shape, dtype=torch.float32)
        order = np.argsort([-(len(query) + len(document)) for query, document in pairs], kind="stable")
        parts, truncated = [], 0
        for start in tqdm(range(0, len(pairs), batch_size), desc="Batches", disable=not progress):
            features, cut = self.scorer.tokenize(
                [pairs[i] for i in order[start : start + batch_size]], prompt
            )
            truncated += cut
            logits = self.scorer({name: value.to(self.device) for name, value in features.items()})
            scores = activation(logits.float())
            if self.num_labels == 1:
                scores = scores.squeeze(-1)
            elif apply_softmax:
                scores = torch.softmax(scores, dim=1)
            parts.append(scores.cpu())
        if truncated:
            logger.warning(
                "%d of %d pairs were longer than max_length=%d tokens and were truncated",
                truncated, len(pairs), self.max_length,
            )  # fmt: skip
        return torch.cat(parts)[torch.from_numpy(np.argsort(order))]


def pair_batch(pairs: Any) -> tuple[list[Pair], bool]:
    """Return the pairs as a list of (str, str) tuples and whether one pair was given.

    Raises:
        InvalidInputError: an item is not a two-element sequence of strings.

    >>> pair_batch(("q", "d"))
    ([('q', 'd')], True)
    >>> pair_batch([("q", "d"), ("q",)])
    Traceback (most recent call last):
    ...
    omniembed.errors.InvalidInputError: pair at index 1 is ('q',); each item ...
    """
    if isinstance(pairs, np.ndarray):
        pairs = pairs.tolist()
    if isinstance(pairs, (str, bytes, dict)) or not isinstance(pairs, Sequence):
        raise InvalidInputError(
            f"predict takes a list of (query, document) pairs, got {type(pairs).__name__}; "
            "pass [('query', 'document'), ...]"
        )
    single = len(pairs) == 2 and all(isinstance(item, str) for item in pairs)
    items = [pairs] if single else list(pairs)
    for index, item in enumerate(items):
        if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 2:
            raise InvalidInputError(
                f"pair at index {index} is {_short(item)}; each item must be a (query, document) "
                "pair of two strings"
            )
        if not all(isinstance(text, str) for text in item):
            raise InvalidInputError(
                f"pair at index {index} is {_short(item)}; both elements must be strings "
                "(convert them with str() or drop the pair)"
            )
    return [(str(item[0]), str(item[1])) for item in items], single


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def folder_activation(folder: Path, num_labels: int) -> Activation:
    """Return the activation a cross-encoder folder saved (any release's key), or the default.

    Folder choices outside :data:`ACTIVATIONS` are logged and replaced by the default, as the
    reference library does for paths it does not trust.
    """
    st_config = read_json(folder / "config_sentence_transformers.json", missing_ok=True)
    hf_config = read_json(folder / "config.json", missing_ok=True)
    candidates = [
        st_config.get("activation_fn"),
        (hf_config.get("sentence_transformers") or {}).get("activation_fn"),
        hf_config.get("sbert_ce_default_activation_function"),
    ]
    for path in candidates:
        if not path:
            continue
        namespace, _, name = str(path).rpartition(".")
        if namespace.startswith("torch") and name in ACTIVATIONS:
            return ACTIVATIONS[name]()
        logger.warning("activation %r in %s is not supported; using the default", path, folder)
        break
    return nn.Sigmoid() if num_labels == 1 else nn.Identity()


def _yes_no_scorer(
    model: Any,
    tokenizer: Any,
    logit_score: dict[str, Any] | None,
    prompt_template: Literal["auto", "qwen3"] | PromptTemplate | None,
) -> YesNoScorer:
    from omniembed.errors import ModelFormatError

    if logit_score is not None:
        true_id, false_id = logit_score.get("true_token_id"), logit_score.get("false_token_id")
    else:
        vocab = tokenizer.get_vocab()
        true_id, false_id = vocab.get("yes"), vocab.get("no")
    if not isinstance(true_id, int) or not (false_id is None or isinstance(false_id, int)):
        raise ModelFormatError(
            "this causal LM's tokenizer has no 'yes' and 'no' tokens to score with; it is not a reranker "
            "of the Qwen3-Reranker kind"
        )
    template: PromptTemplate | None
    if prompt_template == "auto":
        chat = getattr(tokenizer, "chat_template", None) or ""
        template = PromptTemplate() if "<|im_start|>" in str(chat) else None
    elif prompt_template == "qwen3":
        template = PromptTemplate()
    else:
        template = prompt_template
    return YesNoScorer(model, tokenizer, true_id, false_id, template)
