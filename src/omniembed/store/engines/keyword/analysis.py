"""How text becomes BM25 terms: a tokenization, then stop words dropped, then Snowball stemming.

Tokenizations (Weaviate's names):

- ``word``: runs of letters and digits, lowercased (``"Mach-2 flow"`` gives ``mach``, ``2``, ``flow``);
- ``lowercase``: split on whitespace, lowercased (punctuation stays part of the token);
- ``whitespace``: split on whitespace, case kept;
- ``field``: the whole trimmed value is one token (each element of a ``text[]`` value is one).

Stop words are compared in lowercase and stemming (PyStemmer's Snowball algorithms) runs after them;
neither applies to ``field`` tokens, which name things whole. Stop-word lists ship in ``stopwords/``
(their sources and licences in ``stopwords/NOTICE.md``); nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

TOKENIZATIONS = ("word", "lowercase", "whitespace", "field")
_WORD = re.compile(r"[^\W_]+")
_MEMO_WORDS = 1_000_000  # stems remembered per analyzer before the memo starts over


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase words (the ``word`` tokenization).

    >>> tokenize("Boundary-layer flow, at Mach 2!")
    ['boundary', 'layer', 'flow', 'at', 'mach', '2']
    """
    return _WORD.findall(text.lower())


def text_of(value: Any) -> str:
    """Join a text or text-array property value into one string."""
    return " ".join(value) if isinstance(value, list) else str(value)


def split(text: str, tokenization: str) -> list[str]:
    """Split one string by ``tokenization`` (one of :data:`TOKENIZATIONS`).

    >>> split("  Mach-2 Flow ", "lowercase"), split("  Mach-2 Flow ", "field")
    (['mach-2', 'flow'], ['Mach-2 Flow'])
    """
    if tokenization == "word":
        return _WORD.findall(text.lower())
    if tokenization == "lowercase":
        return text.lower().split()
    if tokenization == "whitespace":
        return text.split()
    if tokenization == "field":
        text = text.strip()
        return [text] if text else []
    raise ValueError(check_tokenization(tokenization))


def check_tokenization(tokenization: object) -> str:
    """Return ``tokenization`` if it is known, else raise ``ValueError`` listing the known ones."""
    if tokenization not in TOKENIZATIONS:
        raise ValueError(f"tokenization {tokenization!r} is not known; use one of {', '.join(TOKENIZATIONS)}")
    return str(tokenization)


def stemmer_languages() -> list[str]:
    """The languages PyStemmer's Snowball stemmers cover."""
    return sorted(_stemmer_module().algorithms())


def stopword_languages() -> list[str]:
    """The languages whose stop-word lists ship with omniembed."""
    folder = resources.files(__package__).joinpath("stopwords")
    return sorted(item.name[:-4] for item in folder.iterdir() if item.name.endswith(".txt"))


def check_stemmer(language: object) -> str | None:
    """Return ``language`` if a Snowball stemmer exists for it (``None``: no stemming)."""
    if language is None:
        return None
    known = stemmer_languages()
    if language not in known:
        raise ValueError(f"stemmer language {language!r} is not known; use None or one of {', '.join(known)}")
    return str(language)


def check_stopwords(stopwords: object) -> str | tuple[str, ...] | None:
    """Return a shipped language name, a tuple of words, or ``None`` (no stop words)."""
    if stopwords is None:
        return None
    if isinstance(stopwords, str):
        known = stopword_languages()
        if stopwords not in known:
            raise ValueError(
                f"stop-word language {stopwords!r} is not known; use None, a list of words, "
                f"or one of {', '.join(known)}"
            )
        return stopwords
    if isinstance(stopwords, Iterable) and all(isinstance(word, str) for word in stopwords):
        return tuple(sorted({word.lower() for word in stopwords}))
    raise TypeError(f"stopwords must be a language name, a list of words or None, got {stopwords!r:.60}")


@cache
def stopword_list(language: str) -> frozenset[str]:
    """The shipped stop words of ``language``, lowercase."""
    check_stopwords(language)
    text = resources.files(__package__).joinpath("stopwords", f"{language}.txt").read_text("utf-8")
    return frozenset(word for word in text.split("\n") if word)


def _stemmer_module() -> Any:
    try:
        import Stemmer
    except ImportError:  # pragma: no cover - a core dependency
        from omniembed.errors import MissingExtraError

        raise MissingExtraError("stemming needs PyStemmer: pip install PyStemmer") from None
    return Stemmer


class Analyzer:
    """Turns a property value (text or a list of texts) into terms, the same way for documents and queries.

    >>> Analyzer("word", stemmer="english", stopwords="english")("The flows over plates")
    ['flow', 'plate']
    """

    def __init__(
        self,
        tokenization: str = "word",
        stemmer: str | None = None,
        stopwords: str | Sequence[str] | None = None,
    ) -> None:
        self.tokenization = check_tokenization(tokenization)
        whole = tokenization == "field"
        self.stemmer_language = None if whole else check_stemmer(stemmer)
        chosen = None if whole else check_stopwords(stopwords)
        self.stopwords: frozenset[str] = (
            stopword_list(chosen) if isinstance(chosen, str) else frozenset(chosen or ())
        )
        self._stem = (
            _stemmer_module().Stemmer(self.stemmer_language).stemWords if self.stemmer_language else None
        )
        self._memo: dict[str, str] = {}
        self._fold = tokenization == "whitespace"  # only there can a token hold capitals

    def fingerprint(self) -> dict[str, Any]:
        """What decides the terms; a saved index is reused only under the same fingerprint."""
        return {
            "tokenization": self.tokenization,
            "stemmer": self.stemmer_language,
            "stopwords": sorted(self.stopwords),
        }

    def __call__(self, value: Any) -> list[str]:
        """Return the terms of a text, or of each text of a list in turn."""
        if isinstance(value, list):
            return [term for item in value for term in self.terms(str(item))]
        return self.terms(str(value))

    def tokens(self, value: Any) -> list[str]:
        """Split a value (text or list of texts) by the tokenization alone; :meth:`term_map` finishes."""
        if isinstance(value, list):
            return [token for item in value for token in split(str(item), self.tokenization)]
        if self.tokenization == "word":
            return _WORD.findall(str(value).lower())
        return split(str(value), self.tokenization)

    def term_map(self, tokens: list[str]) -> list[str | None]:
        """The term of each of ``tokens`` (distinct ones), ``None`` for a stop word.

        >>> Analyzer("word", stemmer="english", stopwords="english").term_map(["the", "flows"])
        [None, 'flow']
        """
        stop = self.stopwords
        if stop:
            kept = (
                [t for t in tokens if t.lower() not in stop]
                if self._fold
                else [t for t in tokens if t not in stop]
            )
        else:
            kept = tokens
        terms = dict(zip(kept, self._stemmed(kept) if self._stem is not None else kept, strict=True))
        return [terms.get(token) for token in tokens]

    def terms(self, text: str) -> list[str]:
        """Return the terms of one string."""
        tokens = split(text, self.tokenization)
        if self.stopwords:
            stop = self.stopwords
            tokens = (
                [t for t in tokens if t.lower() not in stop]
                if self._fold
                else [t for t in tokens if t not in stop]
            )
        return self._stemmed(tokens) if self._stem is not None else tokens

    def _stemmed(self, tokens: list[str]) -> list[str]:
        """Stem through a memo of seen words: a dict lookup costs far less than the stemmer."""
        memo, stem = self._memo, self._stem
        assert stem is not None
        try:
            return [memo[token] for token in tokens]
        except KeyError:
            if len(memo) > _MEMO_WORDS:
                memo.clear()
            new = list({token for token in tokens if token not in memo})
            memo.update(zip(new, stem(new), strict=True))
            return [memo.get(token) or stem([token])[0] for token in tokens]
