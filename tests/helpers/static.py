"""Tiny static token-embedding model folders: the reference library's StaticEmbedding, and model2vec's.

model2vec is not installed, so its folders are written by hand following its documented layout:
``model.safetensors`` with an ``embeddings`` table (optionally ``mapping``: a row of ``embeddings``
per token id, and ``weights``: a scale per token id), ``tokenizer.json`` and a ``config.json`` with
``"model_type": "model2vec"`` and ``normalize``; newer releases also write a ``modules.json`` naming
``sentence_transformers.models.StaticEmbedding`` at path ``"."`` (and ``1_Normalize``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from helpers.models import MINILM_DIR

VOCABULARY = 30522
"""Tokens of the all-MiniLM-L6-v2 WordPiece tokenizer the tiny folders use."""

ODD_TEXTS = [
    "",
    "   ",
    "[CLS] hello [SEP] [MASK]",
    "Café naïve — “quoted” 北京 emoji 🙂",
    "tabs\tand\nnew\rlines",
    "control\x0bchar\x1cs and\x00nul",
    "x" * 300,
    " ".join(["boundary layer"] * 200),
]
"""Texts that reach the corners of tokenization: empty, special tokens, non-ASCII, control
characters, an over-long word and a text past the 128-token truncation of the MiniLM tokenizer."""


def build_reference_static(path: Path, *, dim: int = 32, normalize: bool = True, seed: int = 0) -> Path:
    """Save a random StaticEmbedding model with the reference library (MiniLM's tokenizer)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    static = StaticEmbedding(AutoTokenizer.from_pretrained(str(MINILM_DIR)), embedding_dim=dim)
    modules = [static, Normalize()] if normalize else [static]
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    return path


def build_model2vec(
    path: Path,
    *,
    dim: int = 16,
    normalize: bool = True,
    modules_json: bool = False,
    quantized: bool = False,
    seed: int = 0,
) -> Path:
    """Write a model2vec-layout folder by hand (see the module docstring).

    Args:
        path: the folder (created).
        dim: width of the table.
        normalize: the ``normalize`` flag of ``config.json`` (and a Normalize entry in modules.json).
        modules_json: write the ``modules.json`` newer model2vec releases add.
        quantized: a vocabulary-quantized table: fewer rows than tokens, with ``mapping`` and ``weights``.
        seed: numpy seed of the table.
    """
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    if quantized:
        tensors = {
            "embeddings": rng.normal(size=(512, dim)).astype(np.float16),
            "mapping": rng.integers(0, 512, size=VOCABULARY).astype(np.int64),
            "weights": rng.uniform(0.1, 2.0, size=VOCABULARY).astype(np.float32),
        }
    else:
        tensors = {"embeddings": rng.normal(size=(VOCABULARY, dim)).astype(np.float32)}
    save_file(tensors, str(path / "model.safetensors"))
    shutil.copy(MINILM_DIR / "tokenizer.json", path / "tokenizer.json")
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": "sentence-transformers/all-MiniLM-L6-v2",
        "apply_pca": dim,
        "apply_zipf": True,
        "hidden_dim": dim,
        "seq_length": 1000000,
        "normalize": normalize,
    }
    (path / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
    if modules_json:
        entries = [
            {"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}
        ]
        if normalize:
            entries.append(
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                }
            )
        (path / "modules.json").write_text(json.dumps(entries, indent=4), encoding="utf-8")
    return path


def sts_dev_pairs() -> tuple[list[str], list[str], np.ndarray]:
    """STS-B dev sentence pairs and their gold scores."""
    import csv

    from helpers.models import STS_DIR

    first, second, gold = [], [], []
    with (STS_DIR / "sts-dev.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                first.append(row[5])
                second.append(row[6])
                gold.append(float(row[4]))
    return first, second, np.asarray(gold)
