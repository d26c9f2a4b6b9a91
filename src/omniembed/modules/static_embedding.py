"""A static token-embedding model: the mean of a learned vector per token, with no network to run."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from omniembed.errors import ModelFormatError
from omniembed.modules.module import Features, LoadOptions, Module, read_json
from omniembed.modules.static_tokens import WordCache

if TYPE_CHECKING:
    from tokenizers import Tokenizer

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
NO_LIMIT = 1_000_000
"""``max_seq_length`` of a static model whose tokenizer does not truncate (a lookup has no position limit)."""

# model2vec folders name their table "embeddings", optionally with a row per token id ("mapping") and a
# scale per token id ("weights"); the reference library's StaticEmbedding names it "embedding.weight".
_MODEL2VEC_KEYS = {"embeddings", "mapping", "weights"}


class StaticEmbedding(Module):
    """Embed text as the mean of one vector per token (an ``EmbeddingBag``), as static models do.

    The tokenizer runs without its special tokens, as the reference library's ``StaticEmbedding`` and
    model2vec do; an input with no tokens gets a zero vector.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``, or a fast ``transformers`` tokenizer (its backend is
            copied, so the original keeps its padding and truncation).
        embedding_weights: one row per token id, ``(vocabulary, dimension)``.
        embedding_dim: with no weights, the width of a random table.

    >>> from tokenizers import Tokenizer, models
    >>> tokenizer = Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a"))
    >>> module = StaticEmbedding(tokenizer, embedding_dim=4)
    >>> module.embed(["a b", ""]).shape
    torch.Size([2, 4])
    """

    reference_type = "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding"
    modalities: ClassVar[list[Any]] = ["text"]
    chat_inputs: ClassVar[bool] = False

    def __init__(
        self,
        tokenizer: Any,
        embedding_weights: np.ndarray | Tensor | None = None,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.tokenizer: Tokenizer = _backend_tokenizer(tokenizer)
        self.tokenizer.no_padding()
        self._word_cache = WordCache.for_tokenizer(self.tokenizer)
        self._transformers_tokenizer: Any = None
        vocabulary = self.tokenizer.get_vocab_size(with_added_tokens=True)
        if vocabulary < 1:
            raise ValueError("the tokenizer has an empty vocabulary; a static model needs one row per token")
        if embedding_weights is not None:
            weights = torch.as_tensor(embedding_weights).to(torch.float32)
            _check_table(weights, vocabulary, "embedding_weights")
            self.embedding = nn.EmbeddingBag.from_pretrained(weights, freeze=False, mode="mean")
        elif embedding_dim is not None and embedding_dim > 0:
            self.embedding = nn.EmbeddingBag(vocabulary, embedding_dim, mode="mean")
        else:
            raise ValueError(f"give embedding_weights, or a positive embedding_dim (got {embedding_dim!r})")

    @property
    def dimension(self) -> int:
        """Width of the embeddings."""
        return int(self.embedding.embedding_dim)

    @property
    def max_seq_length(self) -> int:
        """Tokens kept per input: the tokenizer's truncation length, or ``NO_LIMIT`` where it has none."""
        truncation = self.tokenizer.truncation
        return int(truncation["max_length"]) if truncation else NO_LIMIT

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_seq_length must be a positive number of tokens, got {value}")
        self.tokenizer.enable_truncation(value)

    @property
    def transformers_tokenizer(self) -> Any:
        """A copy of the tokenizer as a ``transformers`` fast tokenizer, for code that counts or cuts
        tokens the ``transformers`` way (the store's chunking, the server's usage counts)."""
        if self._transformers_tokenizer is None:
            from transformers import PreTrainedTokenizerFast

            backend = copy.deepcopy(self.tokenizer)
            self._transformers_tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)  # type: ignore[no-untyped-call]
        self._transformers_tokenizer.model_max_length = self.max_seq_length
        return self._transformers_tokenizer

    def tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Return every text's token ids in one flat tensor and where each text starts in it."""
        if self._word_cache is not None:
            ids, lengths = self._word_cache.tokenize(texts)
        else:
            encodings = self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
            lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
            ids = np.fromiter(
                itertools.chain.from_iterable(e.ids for e in encodings),
                dtype=np.int64,
                count=int(lengths.sum()),
            )
        offsets = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        return torch.from_numpy(ids), torch.from_numpy(offsets)

    def embed(self, texts: list[str]) -> Tensor:
        """Return the mean token vector of each text (zeros for a text with no tokens)."""
        ids, offsets = self.tokenize(texts)
        device = self.embedding.weight.device
        return self.embedding(ids.to(device), offsets.to(device))  # type: ignore[no-any-return]

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding`` from flat ``input_ids`` and their ``offsets`` (see ``tokenize``)."""
        features["sentence_embedding"] = self.embedding(features["input_ids"], features["offsets"])
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the shape of the table (the folder itself holds no config file)."""
        return {"num_embeddings": int(self.embedding.num_embeddings), "embedding_dim": self.dimension}

    def save(self, folder: Path) -> None:
        """Write ``model.safetensors`` (``embedding.weight``) and ``tokenizer.json`` as the reference does."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {"embedding.weight": self.embedding.weight.detach().cpu().contiguous()}, folder / WEIGHTS_FILE
        )
        self.tokenizer.save(str(folder / TOKENIZER_FILE))

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> StaticEmbedding:
        """Read a folder of the reference library's ``StaticEmbedding`` or of model2vec."""
        return cls(_read_tokenizer(folder), embedding_weights=_read_table(folder))

    @classmethod
    def from_distillation(
        cls,
        teacher: Any,
        *,
        pca_dims: int | None = 256,
        sif_coefficient: float | None = 1e-4,
        batch_size: int = 1024,
        show_progress_bar: bool = True,
    ) -> StaticEmbedding:
        """Distil a static table from a text bi-encoder (a ``SentenceTransformer``).

        Each vocabulary token is embedded alone through the teacher, the table is reduced with PCA and
        each row weighted by its token's estimated frequency (``omniembed.modules.static_distill``
        says how). The student keeps the teacher's tokenizer, without truncation.

        Args:
            teacher: a pipeline of modules starting with a text ``Transformer``.
            pca_dims: principal components to keep (``None``: no PCA, the teacher's width).
            sif_coefficient: the SIF weighting's ``a`` (``None``: no weighting).
            batch_size: vocabulary tokens per forward pass of the teacher.
            show_progress_bar: show a bar for the vocabulary pass.
        """
        from omniembed.modules.static_distill import distil_table

        modules = list(teacher)
        table = distil_table(modules, pca_dims, sif_coefficient, batch_size, show_progress_bar)
        module = cls(modules[0].tokenizer, embedding_weights=table)
        module.tokenizer.no_truncation()
        return module

    @staticmethod
    def holds_model(folder: Path) -> bool:
        """Whether ``folder`` holds a model2vec table (named ``embeddings``) and its ``tokenizer.json``."""
        names = _tensor_names(folder / WEIGHTS_FILE)
        return (folder / TOKENIZER_FILE).is_file() and "embeddings" in names and names <= _MODEL2VEC_KEYS

    @staticmethod
    def normalizes(folder: Path) -> bool:
        """Whether a model2vec folder's ``config.json`` asks for unit-length embeddings."""
        return bool(read_json(folder / "config.json", missing_ok=True).get("normalize", False))


def _backend_tokenizer(tokenizer: Any) -> Tokenizer:
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if isinstance(backend, Tokenizer):
        return copy.deepcopy(backend)
    raise TypeError(
        f"a static model needs a fast tokenizer (tokenizers.Tokenizer or a transformers fast tokenizer), "
        f"got {type(tokenizer).__name__}"
    )


def _check_table(weights: Tensor, vocabulary: int, source: str) -> None:
    if weights.dim() != 2 or weights.shape[1] < 1:
        raise ModelFormatError(
            f"{source} should be a (tokens, dimension) matrix, got shape {tuple(weights.shape)}"
        )
    if weights.shape[0] < vocabulary:
        raise ModelFormatError(
            f"{source} has {weights.shape[0]} rows but the tokenizer has {vocabulary} tokens; "
            "the table needs a row per token id (use the tokenizer the table was made with)"
        )


def _read_tokenizer(folder: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    path = folder / TOKENIZER_FILE
    if not path.is_file():
        raise ModelFormatError(f"model file {path} is missing; a static model needs its tokenizer.json")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises plain Exception for a malformed file
        raise ModelFormatError(f"could not read the tokenizer {path}: {error}") from error


def _tensor_names(path: Path) -> set[str]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return set()
    try:
        with safe_open(str(path), framework="pt") as handle:
            return set(handle.keys())
    except (SafetensorError, OSError):
        return set()


def _read_table(folder: Path) -> Tensor:
    """Return one row per token id, folding model2vec's ``mapping`` and ``weights`` in where present."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ModelFormatError(f"model file {path} is missing; a static model needs its embedding table")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ModelFormatError(f"weights file {path} is corrupt: {error}") from error
    if "embedding.weight" in tensors:
        return tensors["embedding.weight"]
    if "embeddings" not in tensors:
        raise ModelFormatError(
            f"{path} holds {sorted(tensors)}; a static model's table is 'embedding.weight' or 'embeddings'"
        )
    table = tensors["embeddings"].to(torch.float32)
    if "mapping" in tensors:
        mapping = tensors["mapping"].to(torch.long)
        if mapping.numel() and (mapping.min() < 0 or mapping.max() >= table.shape[0]):
            raise ModelFormatError(
                f"{path}: 'mapping' points outside the {table.shape[0]} rows of 'embeddings'"
            )
        table = table[mapping]
    if "weights" in tensors:
        scale = tensors["weights"].to(torch.float32)
        if scale.shape != (table.shape[0],):
            raise ModelFormatError(
                f"{path}: 'weights' has shape {tuple(scale.shape)}, expected one per token ({table.shape[0]})"
            )
        table = table * scale[:, None]
    return table.contiguous()
