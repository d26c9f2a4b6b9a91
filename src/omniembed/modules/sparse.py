"""The modules of sparse (SPLADE-style) models: a masked-language-model network, SPLADE pooling of its
logits over the vocabulary, and the static per-token weights of inference-free query encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from omniembed.errors import ModelFormatError
from omniembed.modules.module import Features, LoadOptions, Module, load_weights, read_json, write_json
from omniembed.modules.transformer import Transformer, _load_tokenizer

SpladeStrategy = Literal["max", "sum"]
SpladeActivation = Literal["relu", "log1p_relu"]
SPLADE_STRATEGIES: tuple[str, ...] = get_args(SpladeStrategy)
SPLADE_ACTIVATIONS: tuple[str, ...] = get_args(SpladeActivation)


class MaskedLMTransformer(Transformer):
    """A ``...ForMaskedLM`` network whose vocabulary logits become ``token_embeddings``.

    The reference library saves it as a ``Transformer`` with ``transformer_task="fill-mask"`` (older
    releases as ``MLMTransformer``); ``SpladePooling`` turns the logits into one sparse vector.
    """

    task = "fill-mask"

    @property
    def vocab_size(self) -> int:
        """Width of the logits: one column per vocabulary entry."""
        return int(self.auto_model.config.get_text_config().vocab_size)

    def forward(self, features: Features) -> Features:
        """Run the network and store its logits as ``token_embeddings``."""
        inputs = {name: features[name] for name in self.model_inputs if name in features}
        if self.fast_forward is not None:
            logits = self.fast_forward(inputs)
            if logits is not None:
                features["token_embeddings"] = logits
                return features
        features["token_embeddings"] = self.auto_model(**inputs, return_dict=True).logits
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the config in the reference library's fill-mask shape."""
        return {
            **super().get_config_dict(),
            "transformer_task": "fill-mask",
            "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
        }


class SpladePooling(Module):
    """Pool vocabulary logits into one sparse vector: ``log1p(relu(logit))`` (twice ``log1p`` for
    ``log1p_relu``), then the max or the sum over the input's tokens.

    Args:
        pooling_strategy: ``"max"`` or ``"sum"`` over tokens.
        activation_function: ``"relu"`` or ``"log1p_relu"``.
        embedding_dimension: the vocabulary size, where known.
    """

    config_keys = ("pooling_strategy", "activation_function", "embedding_dimension")
    reference_type = "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling"

    def __init__(
        self,
        pooling_strategy: SpladeStrategy = "max",
        activation_function: SpladeActivation = "relu",
        embedding_dimension: int | None = None,
    ) -> None:
        super().__init__()
        if pooling_strategy not in SPLADE_STRATEGIES:
            raise ModelFormatError(
                f"SPLADE pooling_strategy {pooling_strategy!r} is not supported; "
                f"use one of {SPLADE_STRATEGIES}"
            )
        if activation_function not in SPLADE_ACTIVATIONS:
            raise ModelFormatError(
                f"SPLADE activation_function {activation_function!r} is not supported; "
                f"use one of {SPLADE_ACTIVATIONS}"
            )
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.embedding_dimension = embedding_dimension

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding``, one row of vocabulary weights per input."""
        logits: Tensor = features["token_embeddings"]
        mask = features["attention_mask"].unsqueeze(-1).bool()
        if self.pooling_strategy == "max":
            # log1p and relu never decrease, so they commute with the max: applying them to the
            # pooled row instead of every token's logits gives the same numbers for a fraction of
            # the work. A padded token would count as 0, which relu gives anyway.
            pooled = logits.masked_fill(~mask, 0.0).amax(dim=1)
            embeddings = self._activate(pooled)
        else:
            embeddings = self._activate(logits.masked_fill(~mask, 0.0)).sum(dim=1)
        if self.embedding_dimension is None:
            self.embedding_dimension = int(embeddings.shape[1])
        features["sentence_embedding"] = embeddings
        return features

    def reduce_rows(self, logits: Tensor) -> Tensor:
        """Pool the logits of one input's own tokens (no padding), ``(tokens, vocab)``; ``finish``
        the stacked results to get the vectors."""
        if self.pooling_strategy == "max":
            return logits.amax(dim=0)
        return self._activate(logits).sum(dim=0)

    def finish(self, reduced: Tensor) -> Tensor:
        """The vectors from stacked ``reduce_rows`` results (the max strategy activates after pooling)."""
        return self._activate(reduced) if self.pooling_strategy == "max" else reduced

    def _activate(self, values: Tensor) -> Tensor:
        values = torch.log1p(torch.relu(values))
        return torch.log1p(values) if self.activation_function == "log1p_relu" else values

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> SpladePooling:
        """Read ``config.json`` (``word_embedding_dimension`` is the older name of the dimension)."""
        config = read_json(folder / cls.config_file_name)
        return cls(
            pooling_strategy=config.get("pooling_strategy", "max"),
            activation_function=config.get("activation_function", "relu"),
            embedding_dimension=config.get("embedding_dimension", config.get("word_embedding_dimension")),
        )


class SparseStaticEmbedding(Module):
    """An inference-free encoder: one learned weight per vocabulary entry, given to each token that
    occurs in the input (once, however often it occurs).

    Args:
        tokenizer: a fast tokenizer; inputs are tokenized without special tokens.
        weight: one weight per vocabulary entry.
        frozen: saved for the reference library, which trains only unfrozen weights.
    """

    config_keys = ("frozen",)
    reference_type = (
        "sentence_transformers.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding"
    )

    def __init__(self, tokenizer: Any, weight: Tensor, frozen: bool = False) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.frozen = frozen

    @property
    def vocab_size(self) -> int:
        """Width of the vectors it makes."""
        return int(self.weight.shape[0])

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens are truncated."""
        return int(self.tokenizer.model_max_length)

    def tokenize(self, texts: list[str]) -> Features:
        """Token ids and mask of a batch, without special tokens (as the reference library does)."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, return_tensors="pt", add_special_tokens=False
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding``: each present token's weight, zero elsewhere."""
        input_ids: Tensor = features["input_ids"]
        present = torch.zeros(
            len(input_ids), self.vocab_size, dtype=self.weight.dtype, device=input_ids.device
        )
        present.scatter_(1, input_ids, features["attention_mask"].to(self.weight.dtype))
        features["sentence_embedding"] = present * self.weight
        return features

    def save(self, folder: Path) -> None:
        """Write the tokenizer, ``model.safetensors`` and ``config.json``."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        save_file({"weight": self.weight.detach().contiguous().cpu()}, str(folder / "model.safetensors"))
        write_json(folder / self.config_file_name, self.get_config_dict())

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> SparseStaticEmbedding:
        """Load the tokenizer and weights of a folder the reference library saved."""
        config = read_json(folder / cls.config_file_name, missing_ok=True)
        if "path" in config:
            raise ModelFormatError(
                f"{folder / cls.config_file_name} names an IDF file ({config['path']!r}); only weights saved "
                "in model.safetensors are read: load and save the model with the reference library first"
            )
        tokenizer = _load_tokenizer(folder, options, {"tokenizer_kwargs": {}})
        module = cls(
            tokenizer, torch.zeros(len(tokenizer.get_vocab())), frozen=bool(config.get("frozen", False))
        )
        load_weights(module, folder, options)
        return module


class SparseAutoEncoder(Module):
    """Stands for the reference library's ``SparseAutoEncoder`` (CSR models), which omniembed does not
    run yet: loading one says so."""

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> SparseAutoEncoder:
        """Refuse the module with an error that says what does load."""
        raise ModelFormatError(
            f"{folder}: SparseAutoEncoder (CSR) models are not supported yet; SparseEncoder loads SPLADE "
            "models (MLM transformer + SpladePooling) and inference-free ones (SparseStaticEmbedding)"
        )


SPARSE_ONLY: tuple[type[Module], ...] = (SpladePooling, SparseStaticEmbedding, SparseAutoEncoder)
"""Modules that make sparse vectors: a dense encoder refuses a folder that has one."""
