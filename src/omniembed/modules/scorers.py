"""The networks behind a ``CrossEncoder``: a sequence-classification head, or a causal LM judged by yes/no.

Both take a batch of (query, document) text pairs and return raw scores of shape (batch, labels);
the activation is applied by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from omniembed.errors import ModelFormatError
from omniembed.formats.modules_json import MODULES_FILE, ModuleEntry, read_modules_json
from omniembed.modules.module import LoadOptions, pickle_refused, read_json
from omniembed.modules.transformer import _load_tokenizer, _safe_folder_option

QWEN3_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
QWEN3_PREFIX = f"<|im_start|>system\n{QWEN3_SYSTEM}<|im_end|>\n<|im_start|>user\n"
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_CONTENT = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
Pair = tuple[str, str]


@dataclass(frozen=True)
class PromptTemplate:
    """How a causal-LM reranker sees a pair: ``prefix + content.format(...) + suffix``.

    The prefix and suffix are never truncated, so the last position is always where the model
    answers "yes" or "no".
    """

    prefix: str = QWEN3_PREFIX
    content: str = QWEN3_CONTENT
    suffix: str = QWEN3_SUFFIX
    instruction: str = QWEN3_INSTRUCTION


class ClassifierScorer(nn.Module):
    """A ``...ForSequenceClassification`` model reading each pair as one two-segment input."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.fast_forward: Callable[[dict[str, Tensor]], Tensor | None] | None = None
        """A faster way to get the logits that the runtime may install; ``None`` from it means
        this call takes the transformers forward pass."""

    @property
    def num_labels(self) -> int:
        """How many scores the head gives per pair."""
        return int(self.model.config.num_labels)

    def tokenize(self, pairs: list[Pair], instruction: str | None) -> tuple[dict[str, Tensor], int]:
        """Tokenize the pairs together (longest segment cut first); return inputs and the truncated count."""
        del instruction  # classifiers have no instruction slot
        batch = self.tokenizer(
            [pair[0] for pair in pairs],
            [pair[1] for pair in pairs],
            padding=True,
            truncation="longest_first",
            max_length=self.tokenizer.model_max_length,
            return_tensors="pt",
        )
        truncated = sum(1 for encoding in batch.encodings or () if encoding.overflowing)
        return dict(batch), truncated

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        """Return the head's logits, shape (batch, num_labels)."""
        if self.fast_forward is not None:
            logits = self.fast_forward(features)
            if logits is not None:
                return logits
        return self.model(**features, return_dict=True).logits  # type: ignore[no-any-return]


class YesNoScorer(nn.Module):
    """A causal LM scored by ``logit("yes") - logit("no")`` at the last position (left padding).

    The sigmoid of that difference is the probability of "yes" in a softmax over the two tokens,
    the score Qwen3-Reranker defines.

    Args:
        model: a ``...ForCausalLM`` model.
        tokenizer: its tokenizer.
        true_token_id: the id of "yes"; ``false_token_id`` the id of "no" (or None to use the
            "yes" logit alone).
        template: the prompt around each pair; None tokenizes the pair as two segments, as the
            reference library does for a causal LM without a chat template.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        true_token_id: int,
        false_token_id: int | None,
        template: PromptTemplate | None,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.true_token_id = true_token_id
        self.false_token_id = false_token_id
        self.template = template
        tokenizer.padding_side = "left"

    num_labels = 1

    def tokenize(self, pairs: list[Pair], instruction: str | None) -> tuple[dict[str, Tensor], int]:
        """Build left-padded inputs ending in the template suffix; return them and the truncated count."""
        limit = int(self.tokenizer.model_max_length)
        if self.template is None:
            batch = self.tokenizer(
                [pair[0] for pair in pairs],
                [pair[1] for pair in pairs],
                padding=True,
                truncation="longest_first",
                max_length=limit,
                return_tensors="pt",
            )
            truncated = sum(1 for encoding in batch.encodings or () if encoding.overflowing)
            return dict(batch), truncated
        template = self.template
        encode = self.tokenizer.encode
        prefix = encode(template.prefix, add_special_tokens=False)
        suffix = encode(template.suffix, add_special_tokens=False)
        room = limit - len(prefix) - len(suffix)
        if room < 1:
            raise ValueError(f"max_length={limit} leaves no room for a pair after the prompt template")
        contents = [
            template.content.format(instruction=instruction or template.instruction, query=q, document=d)
            for q, d in pairs
        ]
        ids = [encode(text, add_special_tokens=False) for text in contents]
        truncated = sum(1 for row in ids if len(row) > room)
        rows = [prefix + row[:room] + suffix for row in ids]
        return _left_pad(rows, int(self.tokenizer.pad_token_id or 0)), truncated

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        """Return ``logit(yes) - logit(no)`` at the last position, shape (batch, 1)."""
        output = self.model(**features, use_cache=False, logits_to_keep=1, return_dict=True)
        logits = output.logits[:, -1]
        scores = logits[:, self.true_token_id]
        if self.false_token_id is not None:
            scores = scores - logits[:, self.false_token_id]
        return scores.unsqueeze(1)  # type: ignore[no-any-return]


def _left_pad(rows: list[list[int]], pad_id: int) -> dict[str, Tensor]:
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if row:
            input_ids[index, width - len(row) :] = torch.tensor(row)
            attention_mask[index, width - len(row) :] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@dataclass(frozen=True)
class FolderInfo:
    """What a reranker folder says about itself."""

    task: str  # "sequence-classification" or "text-generation"
    max_seq_length: int | None
    model_kwargs: dict[str, Any]
    tokenizer_kwargs: dict[str, Any]
    logit_score: dict[str, Any] | None


_TASKS = ("sequence-classification", "text-generation")
_ALLOWED_TYPES = {"Transformer", "LogitScore"}


def read_folder(folder: Path) -> FolderInfo:
    """Work out which kind of reranker a folder holds, refusing folders without a scoring head.

    Raises:
        ModelFormatError: no ``config.json``, an unsupported module, or a model with no
            classification head (such as an embedding model).
    """
    hf_config = read_json(folder / "config.json")
    architectures = hf_config.get("architectures") or []
    entries = _module_entries(folder)
    sbert = _sbert_config(folder)
    task = sbert.get("transformer_task")
    if task is None:
        arch = str(architectures[0]) if architectures else ""
        if arch.endswith("ForCausalLM"):
            task = "text-generation"
        elif arch.endswith("ForSequenceClassification"):
            task = "sequence-classification"
    if task not in _TASKS:
        found = f"architecture {architectures[0]!r}" if architectures else "no architecture"
        raise ModelFormatError(
            f"{folder} has no classification head ({found}, task {task!r}); a CrossEncoder needs a "
            "...ForSequenceClassification model or a ...ForCausalLM reranker. Load embedding models "
            "with SentenceTransformer instead"
        )
    logit_score = None
    for entry in entries[1:]:
        logit_score = read_json(entry.folder / "config.json")
    kwargs = {
        key: {k: v for k, v in (sbert.get(key) or {}).items() if _safe_folder_option(k, v)}
        for key in ("model_kwargs", "tokenizer_kwargs")
    }
    return FolderInfo(
        task=str(task),
        max_seq_length=sbert.get("max_seq_length"),
        model_kwargs=kwargs["model_kwargs"],
        tokenizer_kwargs=kwargs["tokenizer_kwargs"],
        logit_score=logit_score,
    )


def _module_entries(folder: Path) -> list[ModuleEntry]:
    entries = read_modules_json(folder)
    if entries is None:
        return []
    names = [entry.class_name for entry in entries]
    if "Pooling" in names:
        raise ModelFormatError(
            f"{folder} has no classification head: its modules {names} make an embedding model; "
            "load it with SentenceTransformer, or pass a cross-encoder folder"
        )
    if names[0] != "Transformer" or any(name not in _ALLOWED_TYPES for name in names):
        raise ModelFormatError(
            f"{folder / MODULES_FILE}: modules {names} are not a reranker we can load; supported: a "
            "Transformer, optionally followed by LogitScore (nothing named in a model folder is imported)"
        )
    return entries


def _sbert_config(folder: Path) -> dict[str, Any]:
    config = read_json(folder / "sentence_bert_config.json", missing_ok=True)
    for old, new in (("model_args", "model_kwargs"), ("tokenizer_args", "tokenizer_kwargs")):
        if old in config:
            config[new] = config.pop(old)
    config.setdefault("processor_kwargs", None)
    if config["processor_kwargs"]:
        config["tokenizer_kwargs"] = config.pop("processor_kwargs")
    return config


def load_backbone(folder: Path, info: FolderInfo, options: LoadOptions, config_kwargs: dict[str, Any]) -> Any:
    """Load the ``transformers`` model for ``info.task`` (safetensors only unless pickle is allowed)."""
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    pickled = folder / "pytorch_model.bin"
    if not options.allow_pickle and pickled.is_file() and not list(folder.glob("*.safetensors")):
        raise pickle_refused(pickled)
    kwargs = {**info.model_kwargs, **options.model_kwargs}
    kwargs["use_safetensors"] = None if options.allow_pickle else True
    auto = AutoModelForCausalLM if info.task == "text-generation" else AutoModelForSequenceClassification
    try:
        hf_config = AutoConfig.from_pretrained(
            folder, trust_remote_code=options.trust_remote_code, **config_kwargs
        )
        return auto.from_pretrained(
            folder, config=hf_config, trust_remote_code=options.trust_remote_code, **kwargs
        )
    except SafetensorError as error:
        raise ModelFormatError(f"weights in {folder} are corrupt: {error}") from error
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"could not load the reranker in {folder}: {error}") from error


def load_tokenizer(
    folder: Path, info: FolderInfo, options: LoadOptions, max_length: int | None, model: Any
) -> Any:
    """Load the tokenizer and set its length limit as the reference library does."""
    explicit = {**info.tokenizer_kwargs, **options.tokenizer_kwargs}
    if max_length is not None:
        explicit["model_max_length"] = max_length
    tokenizer = _load_tokenizer(folder, options, {"tokenizer_kwargs": explicit})
    if "model_max_length" in explicit:
        return tokenizer
    if info.max_seq_length:
        tokenizer.model_max_length = int(info.max_seq_length)
        return tokenizer
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        tokenizer.model_max_length = min(int(tokenizer.model_max_length), positions)
    return tokenizer
