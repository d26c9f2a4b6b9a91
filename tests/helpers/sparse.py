"""Build tiny sparse (SPLADE and inference-free) and routed model folders with the reference library.

Each builder makes a seeded, randomly initialised tiny ``BertForMaskedLM`` (or ``BertModel``) over the
all-MiniLM-L6-v2 WordPiece vocabulary and saves it with the reference library's own ``save()``, so the
folders are exactly what the reference writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

from helpers.models import MINILM_DIR


def _bert_config() -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )


def save_masked_lm(path: Path, seed: int = 0) -> Path:
    """A tiny random ``BertForMaskedLM`` checkpoint with the MiniLM tokenizer."""
    torch.manual_seed(seed)
    transformers.BertForMaskedLM(_bert_config()).save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(str(MINILM_DIR)).save_pretrained(path)
    return path


def save_bert(path: Path, seed: int) -> Path:
    """A tiny random ``BertModel`` checkpoint with the MiniLM tokenizer."""
    torch.manual_seed(seed)
    transformers.BertModel(_bert_config()).save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(str(MINILM_DIR)).save_pretrained(path)
    return path


def build_splade(
    path: Path,
    *,
    pooling: str = "max",
    activation: str = "relu",
    prompts: dict[str, str] | None = None,
    max_active_dims: int | None = None,
) -> Path:
    """A SPLADE model: fill-mask Transformer + SpladePooling, saved by the reference library."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SpladePooling, Transformer

    network = save_masked_lm(path.parent / f"{path.name}-network")
    transformer = Transformer(str(network), transformer_task="fill-mask")
    model = SparseEncoder(
        modules=[transformer, SpladePooling(pooling, activation)],  # type: ignore[arg-type]
        prompts=prompts,
        max_active_dims=max_active_dims,
        device="cpu",
    )
    model.save(str(path))
    return path


def build_legacy_splade(path: Path) -> Path:
    """The older (v4/v5) layout: ``MLMTransformer`` and ``SpladePooling`` from ``sparse_encoder.models``."""
    save_masked_lm(path)
    modules = [
        {
            "idx": 0,
            "name": "0",
            "path": "",
            "type": "sentence_transformers.sparse_encoder.models.MLMTransformer",
        },
        {
            "idx": 1,
            "name": "1",
            "path": "1_SpladePooling",
            "type": "sentence_transformers.sparse_encoder.models.SpladePooling",
        },
    ]
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 128, "do_lower_case": False})
    )
    (path / "1_SpladePooling").mkdir()
    pooling = {"pooling_strategy": "max", "activation_function": "relu", "word_embedding_dimension": 30522}
    (path / "1_SpladePooling" / "config.json").write_text(json.dumps(pooling))
    config = {"model_type": "SparseEncoder", "prompts": {}, "similarity_fn_name": "dot"}
    (path / "config_sentence_transformers.json").write_text(json.dumps(config))
    return path


def build_inference_free(path: Path) -> Path:
    """An inference-free model: a Router whose query route is SparseStaticEmbedding and whose document
    route is a fill-mask Transformer + SpladePooling (log1p_relu), saved by the reference library."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import (
        Router,
        SparseStaticEmbedding,
        SpladePooling,
        Transformer,
    )

    network = save_masked_lm(path.parent / f"{path.name}-network", seed=1)
    transformer = Transformer(str(network), transformer_task="fill-mask")
    torch.manual_seed(2)
    weight = torch.rand(30522) * (torch.rand(30522) > 0.5)
    static = SparseStaticEmbedding(tokenizer=transformer.tokenizer, weight=weight, frozen=True)
    router = Router.for_query_document([static], [transformer, SpladePooling("max", "log1p_relu")])
    model = SparseEncoder(modules=[router], similarity_fn_name="dot", device="cpu")  # type: ignore[list-item]
    model.save(str(path))
    return path


def build_routed_dense(path: Path) -> Path:
    """A dense model with a Router: a different tiny BERT for queries and documents, then mean pooling
    and Normalize, saved by the reference library."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Router, Transformer

    query = Transformer(str(save_bert(path.parent / f"{path.name}-query", seed=3)))
    document = Transformer(str(save_bert(path.parent / f"{path.name}-document", seed=4)))
    router = Router.for_query_document([query], [document])
    model = SentenceTransformer(modules=[router, Pooling(32, "mean"), Normalize()], device="cpu")
    model.save(str(path))
    return path
