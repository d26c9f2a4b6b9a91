"""The corpora of benchmarks/corpus.py and encode_speed.py's --corpus and CPU description."""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def scripts() -> tuple[ModuleType, ModuleType]:
    """``corpus`` and ``encode_speed`` as modules (importing them runs nothing)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("corpus"), importlib.import_module("encode_speed")
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def tokenizer(minilm_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


def test_long_corpus_is_the_longest_cranfield_documents(
    scripts: tuple[ModuleType, ModuleType], tokenizer: Any
) -> None:
    corpus, _ = scripts
    texts = corpus.build_corpus("long", tokenizer, limit=20)
    lengths = corpus.token_lengths(texts, tokenizer)
    every = sorted(corpus.token_lengths(corpus.cranfield_documents(), tokenizer), reverse=True)
    assert len(texts) == 20
    assert sorted(lengths, reverse=True) == every[:20]
    assert min(lengths) >= corpus.LONG_MIN_TOKENS
    assert lengths != sorted(lengths, reverse=True)  # shuffled, not handed over longest first


def test_long_corpus_holds_only_documents_past_the_minimum(
    scripts: tuple[ModuleType, ModuleType], tokenizer: Any
) -> None:
    corpus, _ = scripts
    texts = corpus.long_corpus(tokenizer, min_tokens=600)
    lengths = corpus.token_lengths(texts, tokenizer)
    assert 0 < len(texts) < 100
    assert min(lengths) >= 600


def test_short_and_mixed_corpora(scripts: tuple[ModuleType, ModuleType], tokenizer: Any) -> None:
    corpus, _ = scripts
    short = corpus.build_corpus("short", tokenizer, limit=300)
    assert len(short) == 300
    assert statistics.fmean(corpus.token_lengths(short, tokenizer)) < 25
    assert corpus.build_corpus("mixed", tokenizer, limit=50) == corpus.mixed_corpus(50)
    with pytest.raises(ValueError, match="corpus 'huge' is not one of"):
        corpus.build_corpus("huge", tokenizer)


def test_corpus_option_takes_several_corpora_each_once(scripts: tuple[ModuleType, ModuleType]) -> None:
    _, encode_speed = scripts
    assert encode_speed.parse_args([]).corpus == ["mixed"]
    assert encode_speed.parse_args(["--corpus", "short,mixed,long"]).corpus == ["short", "mixed", "long"]
    for bad in ("short,short", "tiny", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="give one or more of short, mixed, long"):
            encode_speed.corpus_names(bad)


def test_cpu_line_names_the_fast_path_flags(scripts: tuple[ModuleType, ModuleType]) -> None:
    _, encode_speed = scripts
    line = encode_speed.cpu_flag_line({"avx512f", "avx512_bf16", "sse2"})
    assert line == (
        "- CPU flags: avx512f avx512_bf16; not: avx2 avx512_vnni avx512_fp16 avx_vnni amx_tile "
        "amx_bf16 amx_int8"
    )
    model, flags = encode_speed.cpu_description()
    assert model
    if Path("/proc/cpuinfo").is_file():
        assert flags
