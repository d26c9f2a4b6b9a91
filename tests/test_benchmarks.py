"""The benchmark scripts' own logic: the corpora, encode_speed.py's options and CPU description, and
gpu_check.py run small on the CPU (it builds its model, checks parity and reports speed)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SRC = Path(__file__).resolve().parents[1] / "src"


def import_script(name: str) -> ModuleType:
    """A script of benchmarks/ as a module (importing one runs nothing)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def scripts() -> tuple[ModuleType, ModuleType]:
    """``corpus`` and ``encode_speed``."""
    return import_script("corpus"), import_script("encode_speed")


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    return import_script("gpu_check")


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


def test_calibration_passages_come_from_sts_b_train_only_and_span_the_lengths(
    scripts: tuple[ModuleType, ModuleType], tokenizer: Any
) -> None:
    corpus, _ = scripts
    passages = corpus.calibration_passages(200)
    assert passages == corpus.calibration_passages(200)  # the same texts each run: one cached model
    train = set(corpus.sts_sentences(files=("sts-train.csv",)))
    judged = set(corpus.sts_sentences(files=("sts-dev.csv",))) - train
    assert not any(sentence in passage for passage in passages[:50] for sentence in list(judged)[:200])
    lengths = corpus.token_lengths(passages, tokenizer)
    assert min(lengths) < 32
    assert max(lengths) > 256


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


# --- gpu_check.py ----------------------------------------------------------------------------


def test_the_check_runs_on_the_cpu_and_passes(tmp_path: Path) -> None:
    folder, report = tmp_path / "model", tmp_path / "report.json"
    command = [sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--texts", "8"]
    command += ["--batch-sizes", "4", "--dtypes", "float32,bfloat16", "--folder", str(folder)]
    command += ["--json", str(report)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(SRC)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "parity: passed" in done.stdout
    assert "reference: sentence-transformers" in done.stdout
    for name in ("modules.json", "tokenizer.json", "config.json", "1_Pooling/config.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (6, 384, 30522)
    results = {result["dtype"]: result for result in json.loads(report.read_text())["results"]}
    assert results["float32"]["ours_min_cos"] >= 0.99999
    assert 0.999 <= results["bfloat16"]["ours_min_cos"] < 1.0  # bf16 rounds, so not exactly 1
    for result in results.values():
        assert [speed["batch_size"] for speed in result["speed"]] == [4]
        assert all(speed["ours"] > 0 and speed["ref"] > 0 for speed in result["speed"])


def test_without_sentence_transformers_it_compares_with_plain_transformers(
    gpu_check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omniembed import SentenceTransformer

    folder = gpu_check.build_model_folder(tmp_path)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails, as when missing
    reference, name = gpu_check.load_reference(folder, "cpu")
    assert isinstance(reference, gpu_check.PlainReference)
    assert name.startswith("plain transformers mean pooling (sentence-transformers: ModuleNotFoundError")
    texts = gpu_check.generated_texts(6, long_share=0.34)
    ours = SentenceTransformer(folder, device="cpu")
    expected = gpu_check.encode(reference, texts, batch_size=4)
    got = gpu_check.encode(ours, texts, batch_size=4)
    assert got.shape == expected.shape == (6, 384)
    assert gpu_check.row_cosines(got, expected).min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, rtol=1e-5)


def test_generated_texts_mix_short_sentences_and_documents_past_the_limit(
    gpu_check: ModuleType, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    gpu_check.build_tokenizer(gpu_check.generated_vocabulary(), tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    texts = gpu_check.generated_texts(50, long_share=0.2)
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    assert min(lengths) < 40
    assert max(lengths) > gpu_check.MAX_SEQ_LENGTH
    assert tokenizer.unk_token_id not in {token for ids in tokenizer(texts)["input_ids"] for token in ids}


def test_a_parity_failure_exits_nonzero(gpu_check: ModuleType) -> None:
    passed = {"dtype": "float32", "passed": True}
    assert gpu_check.exit_status([passed]) == 0
    assert gpu_check.exit_status([passed, {"dtype": "float16", "passed": False}]) == 1


def test_dtypes_must_include_float32(gpu_check: ModuleType) -> None:
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--device", "cpu", "--dtypes", "bfloat16"])
    assert gpu_check.parse_args(["--device", "cpu"]).dtypes == ["float32", "bfloat16"]


# --- profile_encode.py -------------------------------------------------------------------------


def test_profile_groups_operators_by_what_they_do() -> None:
    profile = import_script("profile_encode")
    assert profile.group_of("mkldnn::_linear_pointwise").startswith("linear layers")
    assert profile.group_of("aten::_scaled_dot_product_flash_attention_for_cpu").startswith("attention")
    assert profile.group_of("aten::bmm").startswith("attention")
    assert profile.group_of("aten::native_layer_norm") == "layer norm"
    assert profile.group_of("aten::add_") == "residual adds"
    assert profile.group_of("aten::something_new") == "other operators"


def test_profile_counts_the_padding_of_token_budget_batches() -> None:
    profile = import_script("profile_encode")
    assert "(0.0% padding)" in profile.padding_lines([256] * 16, batch_size=32)[0]
    # 100 and 95 share a batch (2 × 100 rows, rounded up to 208), 60 < 0.9 × 100 runs alone.
    line = profile.padding_lines([100, 95, 60], batch_size=32)[0]
    assert line.startswith("- padding: 268 token rows computed for 255 real tokens (4.9% padding)")
    assert line.endswith("attention scores 23,600 for 22,625 needed (4.1% padding)")
