"""Tokenizations, stemming and stop words, their options in the schema and in stored configs."""

from __future__ import annotations

import pytest

from omniembed.store.config import CollectionConfig
from omniembed.store.engines.keyword import Analyzer, KeywordIndex
from omniembed.store.schema import BM25Config, Property, Schema

PLAIN = BM25Config(stemmer=None, stopwords=None)


@pytest.mark.parametrize(
    ("tokenization", "expected"),
    [
        ("word", ["mach", "2", "flow", "rate", "at", "the", "wall"]),
        ("lowercase", ["mach-2", "flow_rate,", "at", "the", "wall"]),
        ("whitespace", ["Mach-2", "flow_rate,", "at", "THE", "wall"]),
        ("field", ["Mach-2  flow_rate, at THE wall"]),
    ],
)
def test_each_tokenization(tokenization: str, expected: list[str]) -> None:
    assert Analyzer(tokenization)("  Mach-2  flow_rate, at THE wall ") == expected


def test_field_tokenization_keeps_each_array_element_whole() -> None:
    assert Analyzer("field")(["New York", " Paris ", ""]) == ["New York", "Paris"]
    assert Analyzer("word")(["New York", "Paris"]) == ["new", "york", "paris"]


def test_stemming_and_stop_words() -> None:
    assert Analyzer("word", stemmer="english")("flows flowing plates") == ["flow", "flow", "plate"]
    assert Analyzer("word", stopwords="english")("the flow of a plate") == ["flow", "plate"]
    assert Analyzer("whitespace", stopwords="english")("The Flow") == ["Flow"]  # compared in lowercase
    assert Analyzer("word", stopwords=["Flow"])("the flow") == ["the"]
    assert Analyzer("word", stemmer="german", stopwords="german")("die Häuser") == ["haus"]
    assert Analyzer("field", stemmer="english", stopwords="english")("The Flows") == ["The Flows"]


def test_a_query_is_analysed_per_property_as_its_values_were() -> None:
    index = KeywordIndex(["title", "code"], BM25Config(), {"code": "field"})
    index.add(1, {"title": "Flowing plates", "code": "AB-12 x"})
    index.add(2, {"title": "A shock", "code": "ab-12"})
    assert index.search("plate flows", {"title": 1.0}, 5)[0].tolist() == [1]
    assert index.search("the", {"title": 1.0}, 5)[0].tolist() == []  # a stop word
    assert index.search("AB-12 x", {"code": 1.0}, 5)[0].tolist() == [1]
    assert index.search("ab-12", {"code": 1.0}, 5)[0].tolist() == [2]


def test_bad_options_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="tokenization 'words' is not known; use one of word, lowercase"):
        Property("text", tokenization="words")
    with pytest.raises(ValueError, match="text and text"):
        Property("int", tokenization="word")
    with pytest.raises(
        ValueError, match=r"stemmer language 'klingon' is not known; use None or one of .*english"
    ):
        BM25Config(stemmer="klingon")
    with pytest.raises(ValueError, match=r"stop-word language 'klingon'.*german"):
        BM25Config(stopwords="klingon")
    with pytest.raises(TypeError, match="stopwords must be"):
        BM25Config(stopwords=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a text property"):
        Schema({"year": "int"}, {"year": "word"})


def test_property_options_reach_the_schema_and_the_stored_config() -> None:
    schema = Schema({"title": "text", "code": Property("text", tokenization="field"), "year": "int"})
    assert schema.properties == {"title": "text", "code": "text", "year": "int"}
    assert schema.tokenization_of("code") == "field"
    assert schema.tokenization_of("title") == "word"
    config = CollectionConfig("docs", schema, bm25=BM25Config(stopwords=["a", "The"]))
    stored = config.to_json()
    assert stored["tokenization"] == {"title": "word", "code": "field"}
    assert stored["bm25"] == {"k1": 1.2, "b": 0.75, "stemmer": "english", "stopwords": ["a", "the"]}
    assert CollectionConfig.from_json(stored) == config


def test_a_config_stored_before_these_options_reads_as_it_was_indexed() -> None:
    old = {
        "name": "docs",
        "properties": {"title": "text"},
        "vectors": {},
        "bm25": {"k1": 1.2, "b": 0.75},
        "index": {"flat_threshold": 10000, "m": 16, "ef_construction": 200, "ef": 96},
    }
    config = CollectionConfig.from_json(old)
    assert config.bm25 == PLAIN
    assert config.schema.tokenization_of("title") == "word"
    index = KeywordIndex(config.schema.text_properties, config.bm25, config.schema.tokenization)
    index.add(1, {"title": "The flows"})
    assert index.search("flows", {"title": 1.0}, 5)[0].tolist() == [1]
    assert index.search("flow", {"title": 1.0}, 5)[0].tolist() == []  # no stemming, as before
    assert index.search("the", {"title": 1.0}, 5)[0].tolist() == [1]  # no stop words, as before


def test_new_collections_stem_and_drop_english_stop_words() -> None:
    assert BM25Config() == BM25Config(1.2, 0.75, "english", "english")
