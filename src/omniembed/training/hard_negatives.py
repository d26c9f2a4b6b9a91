"""``mine_hard_negatives``: add to (anchor, positive) rows the corpus texts the model ranks high for
the anchor that are not its positives, for in-batch-negative and reranker losses."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from omniembed.retrieval.search import semantic_search

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer

OutputFormat = Literal["triplet", "n-tuple", "labeled-pair", "labeled-list"]
EXCLUDED = -float("inf")


@dataclass
class Mined:
    """The unique queries, the corpus, each query's positive ids, and the chosen negatives."""

    queries: list[str]
    corpus: list[str]
    positive_ids: list[list[int]]
    positive_scores: Tensor
    """One score per (query, positive), queries in order, each query's positives in order."""
    negative_ids: Tensor
    negative_scores: Tensor
    """(queries, num_negatives); an excluded slot scores ``-inf``."""


def mine_hard_negatives(
    dataset: Any,
    model: SentenceTransformer,
    *,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: list[str] | None = None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: Literal["top", "random"] = "top",
    query_prompt: str | None = None,
    corpus_prompt: str | None = None,
    output_format: OutputFormat = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    use_ann: bool = False,
    seed: int | None = None,
) -> Any:
    """Return a ``datasets.Dataset`` of the rows with hard negatives mined from the corpus.

    Each unique anchor is embedded with ``encode_query`` and the corpus (``corpus`` plus every
    positive) with ``encode_document``; candidates are the nearest corpus texts by exact search
    (``omniembed.retrieval.semantic_search``) or, with ``use_ann``, a faiss HNSW graph. The anchor
    itself and its positives never count. Filters drop candidates scoring above ``max_score`` or
    below ``min_score``, within ``absolute_margin`` of the anchor's lowest positive score
    (``negative + margin > positive``), or above ``positive - |positive| * relative_margin``. Of
    the candidates left, ranks ``range_min`` to ``range_max`` (0-based) are kept, then the best
    ``num_negatives`` (``sampling_strategy="top"``) or a random choice of them.

    Args:
        dataset: a ``datasets.Dataset`` with an anchor and a positive column.
        model: the embedding model that ranks the candidates.
        anchor_column_name, positive_column_name: default: the first and second columns.
        corpus: more candidate texts (the positives always are).
        range_min, range_max: the ranks kept; ``range_max`` defaults to ``range_min + num_negatives
            + most positives per anchor``, ten times the negatives when a filter is set.
        num_negatives: negatives per anchor.
        output_format: ``"triplet"`` (anchor, positive, negative: a row per negative),
            ``"n-tuple"`` (anchor, positive, negative_1..n: rows with fewer negatives are dropped),
            ``"labeled-pair"`` (anchor, text, label 1 or 0) or ``"labeled-list"`` (anchor, a list of
            the positive then the negatives, and their labels).
        output_scores: add the similarity scores (as ``scores``, or ``score`` for labeled pairs).
        batch_size: texts per encode batch.
        use_ann: search with a faiss HNSW graph (``pip install 'omniembed[store]'``), for large corpora.
        seed: seeds ``sampling_strategy="random"``.
    """
    from datasets import Dataset

    anchor, positive = _columns(dataset, anchor_column_name, positive_column_name)
    rows_per_anchor = max(Counter(dataset[anchor]).values()) if len(dataset) else 0
    filtered = any(value is not None for value in (absolute_margin, relative_margin, max_score))
    range_max = _check_settings(
        len(dataset),
        range_min,
        range_max,
        num_negatives,
        rows_per_anchor,
        filtered,
        sampling_strategy,
        output_format,
    )
    mined = _mine(
        [str(text) for text in dataset[anchor]], [str(text) for text in dataset[positive]], corpus, model,
        range_min, range_max, num_negatives, (max_score, min_score, absolute_margin, relative_margin),
        sampling_strategy, (query_prompt, corpus_prompt), batch_size, use_ann, seed,
    )  # fmt: skip
    return Dataset.from_dict(_rows(mined, anchor, positive, output_format, output_scores))


def _columns(dataset: Any, anchor: str | None, positive: str | None) -> tuple[str, str]:
    names = list(getattr(dataset, "column_names", None) or [])
    if len(names) < 2 and not (anchor and positive):
        raise ValueError(
            f"mine_hard_negatives needs an anchor and a positive column, the dataset has {names}"
        )
    anchor = anchor or names[0]
    positive = positive or names[1]
    for name in (anchor, positive):
        if name not in names:
            raise ValueError(f"column {name!r} is not in the dataset (columns {names}); name an existing one")
    return anchor, positive


def _check_settings(
    rows: int,
    range_min: int,
    range_max: int | None,
    num_negatives: int,
    rows_per_anchor: int,
    filtered: bool,
    sampling_strategy: str,
    output_format: str,
) -> int:
    """Raise on settings that cannot work; return ``range_max`` with its default filled in."""
    if rows == 0:
        raise ValueError("the dataset is empty; give it (anchor, positive) rows")
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be at least 1, got {num_negatives}")
    if sampling_strategy not in ("top", "random"):
        raise ValueError(f"sampling_strategy must be 'top' or 'random', got {sampling_strategy!r}")
    if output_format not in ("triplet", "n-tuple", "labeled-pair", "labeled-list"):
        raise ValueError(
            f"output_format {output_format!r} is not known; "
            "use 'triplet', 'n-tuple', 'labeled-pair' or 'labeled-list'"
        )
    if range_max is None:
        range_max = range_min + num_negatives * (10 if filtered else 1) + rows_per_anchor
    if range_min < 0 or range_min >= range_max:
        raise ValueError(f"need 0 <= range_min < range_max, got range_min={range_min}, range_max={range_max}")
    if num_negatives > range_max - range_min:
        raise ValueError(
            f"cannot choose {num_negatives} negatives from ranks {range_min} to {range_max}; "
            "lower num_negatives or range_min, or raise range_max"
        )
    return range_max


def _mine(
    anchors: list[str],
    positives: list[str],
    extra: list[str] | None,
    model: SentenceTransformer,
    range_min: int,
    range_max: int,
    num_negatives: int,
    filters: tuple[float | None, float | None, float | None, float | None],
    sampling_strategy: str,
    prompts: tuple[str | None, str | None],
    batch_size: int,
    use_ann: bool,
    seed: int | None,
) -> Mined:
    corpus = list(dict.fromkeys([*(extra or []), *positives]))
    corpus_ids = {text: index for index, text in enumerate(corpus)}
    queries = list(dict.fromkeys(anchors))
    query_ids = {text: index for index, text in enumerate(queries)}
    positive_ids: list[list[int]] = [[] for _ in queries]
    for text, positive in zip(anchors, positives, strict=True):
        ids = positive_ids[query_ids[text]]
        if corpus_ids[positive] not in ids:
            ids.append(corpus_ids[positive])
    query_vectors = model.encode_query(
        queries, prompt=prompts[0], batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True
    ).cpu()
    corpus_vectors = model.encode_document(
        corpus, prompt=prompts[1], batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True
    ).cpu()
    count = range_max + max(len(ids) for ids in positive_ids) + 1
    scores, candidate_ids = _candidates(model, query_vectors, corpus_vectors, count, use_ann)
    flat = [(row, index) for row, indices in enumerate(positive_ids) for index in indices]
    positive_scores = model.similarity_pairwise(
        query_vectors[[row for row, _ in flat]], corpus_vectors[[index for _, index in flat]]
    ).float()
    own = torch.tensor([corpus_ids.get(query, -1) for query in queries])
    scores[(candidate_ids == -1) | (candidate_ids == own[:, None])] = EXCLUDED
    for row, indices in enumerate(positive_ids):
        scores[row, torch.isin(candidate_ids[row], torch.tensor(indices))] = EXCLUDED
    lowest = torch.stack(
        [chunk.min() for chunk in torch.split(positive_scores, [len(i) for i in positive_ids])]
    )
    _filter(scores, lowest, *filters)
    top, places = torch.topk(scores, k=min(range_max, scores.shape[1]), dim=1)
    chosen = torch.gather(candidate_ids, 1, places)[:, range_min:]
    top = top[:, range_min:]
    if sampling_strategy == "random":
        chosen, top = _sample(chosen, top, num_negatives, random.Random(seed))
    return Mined(
        queries, corpus, positive_ids, positive_scores, chosen[:, :num_negatives], top[:, :num_negatives]
    )


def _candidates(
    model: SentenceTransformer, queries: Tensor, corpus: Tensor, count: int, use_ann: bool
) -> tuple[Tensor, Tensor]:
    """The ``count`` best corpus ids and scores per query (``-1`` and ``-inf`` pad a short corpus)."""
    k = min(count, len(corpus))
    if use_ann:
        scores, ids = _hnsw_search(queries, corpus, k)
    else:
        hits = semantic_search(queries, corpus, top_k=k, score_function=model.similarity)
        scores = torch.tensor([[hit["score"] for hit in row] for row in hits], dtype=torch.float32)
        ids = torch.tensor([[hit["corpus_id"] for hit in row] for row in hits], dtype=torch.long)
    missing = count - scores.shape[1]
    if missing > 0:
        scores = torch.cat([scores, scores.new_full((len(scores), missing), EXCLUDED)], dim=1)
        ids = torch.cat([ids, ids.new_full((len(ids), missing), -1)], dim=1)
    return scores, ids


def _hnsw_search(queries: Tensor, corpus: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Inner-product search in a faiss HNSW graph over the (normalized) corpus vectors."""
    from omniembed.errors import import_extra

    faiss = import_extra("faiss", "use_ann=True needs faiss: pip install 'omniembed[store]'")
    graph = faiss.IndexHNSWFlat(corpus.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efSearch = max(64, 2 * k)
    graph.add(np.ascontiguousarray(corpus.float().numpy()))
    scores, ids = graph.search(np.ascontiguousarray(queries.float().numpy()), k)
    found = torch.from_numpy(scores).float()
    ids_tensor = torch.from_numpy(ids).long()
    found[ids_tensor == -1] = EXCLUDED
    return found, ids_tensor


def _filter(
    scores: Tensor,
    lowest_positive: Tensor,
    max_score: float | None,
    min_score: float | None,
    absolute_margin: float | None,
    relative_margin: float | None,
) -> None:
    """Exclude, in place, candidates too close to the positives or outside the score bounds."""
    bound = lowest_positive[:, None]
    if absolute_margin is not None:
        scores[scores + absolute_margin > bound] = EXCLUDED
    if relative_margin is not None:
        scores[scores > bound - bound.abs() * relative_margin] = EXCLUDED
    if max_score is not None:
        scores[scores > max_score] = EXCLUDED
    if min_score is not None:
        scores[(scores < min_score) & (scores != EXCLUDED)] = EXCLUDED


def _sample(ids: Tensor, scores: Tensor, count: int, generator: random.Random) -> tuple[Tensor, Tensor]:
    """Pick ``count`` of each row's candidates at random (from those not excluded), best first."""
    picked_ids, picked_scores = [], []
    for row_ids, row_scores in zip(ids, scores, strict=True):
        options = max(int((row_scores != EXCLUDED).sum()), count)
        places = torch.tensor(generator.sample(range(options), k=count))
        order = torch.argsort(row_scores[places], descending=True, stable=True)
        picked_ids.append(row_ids[places][order])
        picked_scores.append(row_scores[places][order])
    return torch.stack(picked_ids), torch.stack(picked_scores)


def _rows(
    mined: Mined, anchor: str, positive: str, output_format: str, output_scores: bool
) -> dict[str, list[Any]]:
    """The output dataset's columns."""
    pairs = [(row, index) for row, indices in enumerate(mined.positive_ids) for index in indices]
    kept = [
        [(int(index), float(score)) for index, score in zip(ids, scores, strict=True) if score != EXCLUDED]
        for ids, scores in zip(mined.negative_ids.tolist(), mined.negative_scores.tolist(), strict=True)
    ]
    texts, queries, positive_scores = mined.corpus, mined.queries, mined.positive_scores.tolist()
    if output_format == "labeled-pair":
        return _labeled_pairs(mined, kept, anchor, positive, output_scores)
    data: dict[str, list[Any]] = {anchor: [], positive: []}
    if output_format == "triplet":
        data["negative"] = []
    scores: list[Any] = []
    width = mined.negative_ids.shape[1]
    for (row, index), score in zip(pairs, positive_scores, strict=True):
        negatives = kept[row]
        if output_format == "n-tuple" and len(negatives) < width:
            continue
        if output_format == "triplet":
            for negative, negative_score in negatives:
                data[anchor].append(queries[row])
                data[positive].append(texts[index])
                data["negative"].append(texts[negative])
                scores.append([score, negative_score])
        elif output_format == "n-tuple":
            data[anchor].append(queries[row])
            data[positive].append(texts[index])
            for slot, (negative, _) in enumerate(negatives, start=1):
                data.setdefault(f"negative_{slot}", []).append(texts[negative])
            scores.append([score, *(s for _, s in negatives)])
        elif negatives:  # labeled-list
            data[anchor].append(queries[row])
            data[positive].append([texts[index], *(texts[negative] for negative, _ in negatives)])
            scores.append([score, *(s for _, s in negatives)])
    if output_scores:
        data["scores"] = scores
    elif output_format == "labeled-list":
        data["labels"] = [[1] + [0] * (len(row) - 1) for row in scores]
    return data


def _labeled_pairs(
    mined: Mined, kept: list[list[tuple[int, float]]], anchor: str, positive: str, output_scores: bool
) -> dict[str, list[Any]]:
    """Rows of (anchor, text, label): each anchor's positives (label 1), then its negatives (0)."""
    data: dict[str, list[Any]] = {anchor: [], positive: [], "score" if output_scores else "label": []}
    target = data["score" if output_scores else "label"]
    scores = iter(mined.positive_scores.tolist())
    for row, query in enumerate(mined.queries):
        for index in mined.positive_ids[row]:
            data[anchor].append(query)
            data[positive].append(mined.corpus[index])
            target.append(next(scores) if output_scores else 1)
        for negative, score in kept[row]:
            data[anchor].append(query)
            data[positive].append(mined.corpus[negative])
            target.append(score if output_scores else 0)
    return data
