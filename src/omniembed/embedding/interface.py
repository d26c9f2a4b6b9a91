"""The interface every embedding model offers, so that callers (vectorizer, server) can take any of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor

    from omniembed.embedding.similarity import ArrayLike
    from omniembed.inputs.modality import Modality


@runtime_checkable
class EmbeddingModel(Protocol):
    """What ``SentenceTransformer`` and ``PairedEncoder`` have in common."""

    similarity_fn_name: str
    allow_urls: bool

    @property
    def modalities(self) -> list[Modality]:
        """The kinds of input the model embeds."""
        ...

    def supports(self, modality: Modality) -> bool:
        """Return whether the model embeds inputs of this modality."""
        ...

    def get_sentence_embedding_dimension(self) -> int:
        """Return the width of the embeddings ``encode`` returns."""
        ...

    def encode(self, inputs: Any, **kwargs: Any) -> Any:
        """Embed one input or a list of inputs."""
        ...

    def encode_query(self, inputs: Any, **kwargs: Any) -> Any:
        """Embed queries (with the model's query prompt)."""
        ...

    def encode_document(self, inputs: Any, **kwargs: Any) -> Any:
        """Embed documents (with the model's document prompt)."""
        ...

    def similarity(self, a: ArrayLike, b: ArrayLike) -> Tensor:
        """Score every embedding in ``a`` against every one in ``b``."""
        ...
