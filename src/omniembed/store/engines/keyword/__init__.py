"""BM25 keyword search over a collection's text properties.

Text becomes terms in :mod:`.analysis` (tokenization, stop words, stemming), postings live in
:mod:`.postings` and :mod:`.field`, the arithmetic in :mod:`.scoring`, the index in :mod:`.index`
and its files in :mod:`.persist`.
"""

from omniembed.store.engines.keyword.analysis import (
    TOKENIZATIONS,
    Analyzer,
    stemmer_languages,
    stopword_languages,
    text_of,
    tokenize,
)
from omniembed.store.engines.keyword.index import KeywordIndex

__all__ = [
    "TOKENIZATIONS",
    "Analyzer",
    "KeywordIndex",
    "stemmer_languages",
    "stopword_languages",
    "text_of",
    "tokenize",
]
