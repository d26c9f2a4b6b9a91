"""``POST /v1/embeddings`` (OpenAI-compatible) and ``POST /v1/rerank`` (Cohere/TEI-style)."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from omniembed.errors import InvalidInputError
from omniembed.inputs import data_urls
from omniembed.inputs.data_urls import is_data_url
from omniembed.inputs.images import load_image
from omniembed.server.errors import LimitExceededError, NotServedError
from omniembed.server.state import ServerState, get_state

router = APIRouter(tags=["embeddings"])
IMAGE_TOKENS = 256  # what one image costs against the batch token budget


class EmbeddingRequest(BaseModel):
    """The OpenAI embeddings request, plus ``modality`` and ``prompt_name``."""

    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    modality: Literal["text", "image"] | None = Field(
        default=None, description="force every input to be read as text or as an image (data URL)"
    )
    prompt_name: str | None = Field(default=None, description="one of the model's prompts, e.g. 'query'")


class RerankRequest(BaseModel):
    """A rerank request as Cohere-style clients send it."""

    query: str
    documents: list[str | dict[str, str]]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    model: str | None = None


async def _inputs(state: ServerState, request: EmbeddingRequest) -> tuple[list[Any], int, int]:
    """The model inputs, the tokens they count for usage, and their cost for the batcher."""
    raw = request.input
    if isinstance(raw, str):
        raw = [raw]
    if raw and not all(isinstance(item, str) for item in raw):
        raise InvalidInputError("token-id inputs are not supported; send the texts themselves")
    texts: list[str] = [str(item) for item in raw]
    limits = state.settings
    if not texts:
        raise InvalidInputError("input is empty; send a string or a non-empty list of strings")
    if len(texts) > limits.max_inputs:
        raise LimitExceededError(f"{len(texts)} inputs in one request; this server takes {limits.max_inputs}")
    model = state.require_model()
    images = [
        request.modality == "image" or (request.modality is None and is_data_url(text)) for text in texts
    ]
    if any(images) and "image" not in getattr(model, "modalities", ["text"]):
        raise InvalidInputError(
            f"input at index {images.index(True)} is an image; the served model embeds {model.modalities}"
        )
    named = {f"input at index {index}": text for index, text in enumerate(texts) if not images[index]}
    counts = await state.count_tokens(named)
    inputs: list[Any] = list(texts)
    pictures = [index for index, image in enumerate(images) if image]
    if pictures:  # decoded off the event loop, under the request's pixel budget
        decoded = await state.run_remote(lambda: [_decode_image(texts[index], index) for index in pictures])
        for index, picture in zip(pictures, decoded, strict=True):
            inputs[index] = picture
    usage = sum(counts.values())
    return inputs, usage, usage + IMAGE_TOKENS * len(pictures)


def _decode_image(text: str, index: int) -> Any:
    return load_image(data_urls.decode(text, f"input at index {index}"), index=index)


def _shorten(matrix: np.ndarray, dimensions: int | None) -> np.ndarray:
    if dimensions is None:
        return matrix
    if dimensions > matrix.shape[1]:
        raise InvalidInputError(f"dimensions={dimensions} is more than the model's {matrix.shape[1]}")
    short = matrix[:, :dimensions]
    norms = np.linalg.norm(short, axis=1, keepdims=True)
    return np.asarray(short / np.where(norms == 0, 1, norms), dtype=np.float32)


@router.post("/v1/embeddings", summary="Embed texts or images (OpenAI-compatible)")
async def embeddings(
    request: EmbeddingRequest, state: Annotated[ServerState, Depends(get_state)]
) -> dict[str, Any]:
    """Embed the inputs; with ``dimensions`` the vectors are cut and re-normalised, as OpenAI does.

    A sparse model's embedding is ``{"indices": [...], "values": [...]}``: the token ids with a
    non-zero weight, increasing, and their weights.
    """
    sparse = bool(getattr(state.model, "is_sparse", False))
    if sparse and request.dimensions is not None:
        raise InvalidInputError("dimensions does not apply to a sparse model's vectors; leave it out")
    if sparse and request.encoding_format != "float":
        raise InvalidInputError(
            "the served model is sparse: its vectors come as {indices, values}; use encoding_format='float'"
        )
    inputs, usage, cost = await _inputs(state, request)
    prompts = state.model.prompts
    if request.prompt_name is not None and request.prompt_name not in prompts:
        name = request.prompt_name
        raise InvalidInputError(f"prompt_name {name!r} is not one of the model's prompts {sorted(prompts)}")
    assert state.batcher is not None
    encoded = await state.batcher.encode(inputs, tokens=cost, key=request.prompt_name)
    matrix = _shorten(encoded, request.dimensions)
    data = []
    for index, row in enumerate(matrix):
        vector: Any
        if sparse:
            (indices,) = np.nonzero(row)
            vector = {"indices": indices.tolist(), "values": row[indices].tolist()}
        elif request.encoding_format == "base64":
            vector = base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
        else:
            vector = row.tolist()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {
        "object": "list",
        "data": data,
        "model": state.settings.model_name,
        "usage": {"prompt_tokens": usage, "total_tokens": usage},
    }


async def _rerank_texts(state: ServerState, request: RerankRequest) -> list[str]:
    """The documents' texts, once the query and each document pass the character and token caps."""
    texts = []
    for index, document in enumerate(request.documents):
        text = document if isinstance(document, str) else document.get("text")
        if text is None:
            raise InvalidInputError(
                f"document at index {index} has no 'text'; send a string or {{\"text\": ...}}"
            )
        texts.append(text)
    # Counted on the tokenizing thread, so a long document never holds the model lock to be refused.
    documents = {f"document at index {index}": text for index, text in enumerate(texts)}
    await state.count_tokens({"query": request.query, **documents}, reranker=True)
    return texts


@router.post("/v1/rerank", summary="Score documents against a query with the served reranker")
async def rerank(request: RerankRequest, state: Annotated[ServerState, Depends(get_state)]) -> dict[str, Any]:
    """Return the documents' indices and relevance scores, best first (top ``top_n``)."""
    if state.reranker is None:
        raise NotServedError("this server has no reranker; start it with --reranker NAME_OR_PATH")
    count, most = len(request.documents), state.settings.max_inputs
    if count > most:
        raise LimitExceededError(f"{count} documents in one request; this server takes {most}")
    texts = await _rerank_texts(state, request)
    if not texts:
        return {"results": [], "model": state.settings.model_name}

    def run() -> list[dict[str, Any]]:
        with state.model_lock:
            return list(state.reranker.rank(request.query, texts, top_k=request.top_n))

    ranked = await run_in_threadpool(run)
    results = []
    for item in ranked:
        entry: dict[str, Any] = {"index": int(item["corpus_id"]), "relevance_score": float(item["score"])}
        if request.return_documents:
            entry["document"] = {"text": texts[int(item["corpus_id"])]}
        results.append(entry)
    return {"results": results, "model": state.settings.model_name}
