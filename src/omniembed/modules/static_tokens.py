"""Token ids for static models, each distinct word tokenized once.

With no network to run, a static model's time goes to its tokenizer. For BERT-style tokenizers
(``BertNormalizer``, a pre-tokenizer that splits on whitespace, ``WordPiece``) the tokens of a text are
the tokens of its whitespace-separated words one after another, since every step before WordPiece
acts on one character at a time and whitespace is dropped. ``WordCache`` keeps each word's ids, so a
word met again costs a dictionary lookup. It takes only texts of printable ASCII, tabs and newlines,
where Python's ``str.split`` and the tokenizer agree on what whitespace is (the tokenizer drops
control characters that Python would split on); other texts go to the tokenizer whole. The ids are
the tokenizer's own, truncated the same way (a test compares them on real text).
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

import numpy as np

_NOT_PLAIN = re.compile(r"[^\x20-\x7e\t\n\r]")
MAX_CACHED_WORDS = 500_000
"""Words kept before the cache starts again empty (a few tens of MB)."""


class WordCache:
    """Tokenize texts word by word with a cache; build it with ``for_tokenizer``."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._words = copy.deepcopy(tokenizer)
        self._words.no_truncation()
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def for_tokenizer(cls, tokenizer: Any) -> WordCache | None:
        """Return a cache for a tokenizer whose text tokens are its words' tokens, else ``None``."""
        from tokenizers import models, normalizers, pre_tokenizers

        splits_on_space = isinstance(
            tokenizer.pre_tokenizer, (pre_tokenizers.BertPreTokenizer, pre_tokenizers.WhitespaceSplit)
        )
        spaced_added = any(
            any(char.isspace() for char in token.content)
            for token in tokenizer.get_added_tokens_decoder().values()
        )
        fits = (
            isinstance(tokenizer.normalizer, normalizers.BertNormalizer)
            and splits_on_space
            and isinstance(tokenizer.model, models.WordPiece)
            and not spaced_added
        )
        return cls(tokenizer) if fits else None

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return the flat token ids of ``texts`` and each text's number of ids."""
        split = [None if _NOT_PLAIN.search(text) else text.split() for text in texts]
        self._learn({word for words in split if words is not None for word in words})
        others = [text for text, words in zip(texts, split, strict=True) if words is None]
        whole = iter(self.tokenizer.encode_batch_fast(others, add_special_tokens=False) if others else ())
        lookup = self._cache.__getitem__
        rows = [
            next(whole).ids if words is None else list(itertools.chain.from_iterable(map(lookup, words)))
            for words in split
        ]
        truncation = self.tokenizer.truncation
        if truncation:
            limit = int(truncation["max_length"])
            keep_end = truncation.get("direction") == "left"
            rows = [row[-limit:] if keep_end and len(row) > limit else row[:limit] for row in rows]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        ids = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        return ids, lengths

    def _learn(self, words: set[str]) -> None:
        missing = [word for word in words if word not in self._cache]
        if not missing:
            return
        if len(self._cache) + len(missing) > MAX_CACHED_WORDS:
            self._cache.clear()
        encodings = self._words.encode_batch_fast(missing, add_special_tokens=False)
        self._cache.update(zip(missing, (encoding.ids for encoding in encodings), strict=True))
