"""dtype="int8" with calibration_texts=: static int8 in OpenVINO, calibrated once and cached."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from omniembed import MissingExtraError, SentenceTransformer
from omniembed.runtime import openvino as openvino_network

from helpers.numbers import cosines

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def calibrated(folder: Path, cache: Path, texts: list[str], **options: object) -> SentenceTransformer:
    return SentenceTransformer(
        folder,
        device="cpu",
        dtype="int8",
        calibration_texts=texts,
        runtime_cache_folder=cache,
        **options,  # type: ignore[arg-type]
    )


def test_static_int8_stays_close_and_is_calibrated_once(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path
) -> None:
    folder = tiny_model("bert", pooling="mean", normalize=True)
    texts, calibration = sts_sentences[:100], sts_sentences[200:264]
    exact = SentenceTransformer(folder, device="cpu").encode(texts)
    fast = calibrated(folder, tmp_path, calibration)
    assert fast.runtime.resolved_backend() == "openvino"
    embeddings = fast.encode(texts)
    assert cosines(embeddings, exact).min() >= 0.98
    quantized = list(tmp_path.rglob("model.int8-static.*.xml"))
    assert len(quantized) == 1
    assert quantized[0].with_suffix(".bin").is_file()
    assert b"FakeQuantize" in quantized[0].read_bytes()  # activations carry fixed scales
    assert b'type="IsNaN"' in quantized[0].read_bytes()  # calibrated on the export as it is
    made = quantized[0].stat().st_mtime_ns
    again = calibrated(folder, tmp_path, calibration, backend="openvino")
    assert quantized[0].stat().st_mtime_ns == made  # read back, not calibrated again
    assert cosines(again.encode(texts), embeddings).min() >= 0.99999
    calibrated(folder, tmp_path, sts_sentences[300:364])  # other texts: another model beside it
    assert len(list(tmp_path.rglob("model.int8-static.*.xml"))) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "float32"}, "calibration_texts= fits the scales of static int8; give dtype='int8'"),
        ({"backend": "torch"}, "static int8 .calibration_texts=. runs in OpenVINO, not backend='torch'"),
        ({"backend": "onnx"}, "static int8 .calibration_texts=. runs in OpenVINO, not backend='onnx'"),
        ({"calibration_texts": ["a few words"] * 3}, "calibration_texts has 3 texts; give at least 16"),
        ({"calibration_texts": "one text"}, "calibration_texts is a list of texts"),
        ({"calibration_texts": ["fine"] * 20 + [""]}, r"calibration_texts\[20\] is ''"),
        ({"calibration_texts": ["fine"] * 20 + [None]}, r"calibration_texts\[20\] is None"),
    ],
)
def test_bad_calibration_options(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path, options: dict, message: str
) -> None:
    arguments = {"dtype": "int8", "calibration_texts": sts_sentences[:32], **options}
    with pytest.raises(ValueError, match=message):
        SentenceTransformer(tiny_model("bert"), device="cpu", runtime_cache_folder=tmp_path, **arguments)
    assert not list(tmp_path.rglob("*.onnx"))  # refused before anything was exported


def test_missing_nncf_names_the_extra(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(MissingExtraError, match=r"NNCF and OpenVINO: pip install 'omniembed\[openvino\]'"):
        calibrated(tiny_model("bert"), tmp_path, sts_sentences[:32])
    assert not list(tmp_path.rglob("*.onnx"))  # nothing exported before the error


def test_inputs_much_longer_than_the_calibration_texts_are_warned_about_once(
    tiny_model: Callable[..., Path],
    sts_sentences: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def warnings() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == openvino_network.__name__]

    folder = tiny_model("bert")
    short = [text for text in sts_sentences if len(text.split()) <= 5][:32]
    long = " ".join(sts_sentences[:20])  # cut at the model's 64 tokens, still over twice as long
    model = calibrated(folder, tmp_path, short)
    model.encode(short)
    assert not warnings()
    model.encode([long, short[0]])
    model.encode(long)
    assert len(warnings()) == 1
    assert "an input of 64 tokens is over 2 times the longest calibration text" in warnings()[0]
    caplog.clear()
    calibrated(folder, tmp_path, [long] * 16 + short).encode(long)
    assert not warnings()
