"""dtype="int8" with calibration_texts=: static int8 in OpenVINO, calibrated once and cached."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omniembed import MissingExtraError, SentenceTransformer
from omniembed.runtime import openvino as openvino_network
from omniembed.runtime.openvino_attention import LONG_INPUT_TOKENS, lighten_attention

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


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_long_inputs_run_with_lighter_attention_and_keep_their_numbers_in_any_batch(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path, arch: str
) -> None:
    folder = tiny_model("bert", pooling="mean", arch=arch)
    passages = [" ".join(sts_sentences[i : i + 4]) for i in range(0, 120, 4)]
    model = calibrated(folder, tmp_path, passages + sts_sentences[:32])
    network = model._network
    assert isinstance(network, openvino_network.OpenVinoNetwork)
    assert network.compiled_long is not None
    lengths = [len(model.tokenizer(text)["input_ids"]) for text in (passages[0], sts_sentences[0])]
    assert lengths[0] >= LONG_INPUT_TOKENS > lengths[1]
    alone = [model.encode(text, output_value="token_embeddings") for text in (passages[0], sts_sentences[0])]
    alone_pooled = [model.encode(text) for text in (passages[0], sts_sentences[0])]
    seen: dict[str, list[tuple[int, ...]]] = {"long": [], "calibrated": []}
    network.compiled_long = Recorded(network.compiled_long, seen["long"])
    network.compiled = Recorded(network.compiled, seen["calibrated"])
    # One batch across the threshold: each input runs in its own model, cut to its own length.
    together = model.encode([passages[0], sts_sentences[0]], output_value="token_embeddings")
    assert seen == {"long": [(1, lengths[0])], "calibrated": [(1, lengths[1])]}
    for mine, single in zip(together, alone, strict=True):
        assert mine.shape == single.shape
        assert cosines(mine.numpy(), single.numpy()).min() >= 0.99999
    exact = SentenceTransformer(folder, device="cpu").encode(passages[:20])
    assert cosines(model.encode(passages[:20]), exact).min() >= 0.98
    copy = pickle.loads(pickle.dumps(model))  # as a pool worker gets it: compiled again, both models
    assert cosines(copy.encode([passages[0], sts_sentences[0]]), np.stack(alone_pooled)).min() >= 0.99999
    assert copy._network.compiled_long is not None


class Recorded:
    """A compiled OpenVINO model that notes the ``input_ids`` shape of each request it makes."""

    def __init__(self, compiled: Any, shapes: list[tuple[int, ...]]) -> None:
        self.compiled, self.shapes, self.outputs = compiled, shapes, compiled.outputs

    def create_infer_request(self) -> Any:
        request, shapes = self.compiled.create_infer_request(), self.shapes

        class Request:
            def infer(self, inputs: dict[str, Any]) -> Any:
                shapes.append(tuple(inputs["input_ids"].shape))
                return request.infer(inputs)

        return Request()


def test_lighten_attention_drops_the_guards_and_shrinks_the_mask_once(
    tiny_model: Callable[..., Path], sts_sentences: list[str], tmp_path: Path
) -> None:
    import openvino

    calibrated(tiny_model("bert"), tmp_path, sts_sentences[:32])
    core = openvino.Core()
    model = core.read_model(str(next(tmp_path.rglob("model.int8-static.*.xml"))))
    before = [op.get_type_name() for op in model.get_ordered_ops()]
    assert lighten_attention(model, openvino)
    kinds = [op.get_type_name() for op in model.get_ordered_ops()]
    assert before.count("IsNaN") == kinds.count("Softmax") > 0
    assert "IsNaN" not in kinds
    assert kinds.count("FakeQuantize") == before.count("FakeQuantize")  # NNCF's quantizers stay
    key_mask = next(op for op in model.get_ordered_ops() if op.get_type_name() == "Select")
    assert str(key_mask.get_output_partial_shape(0)) == "[?,1,1,?]"
    assert not lighten_attention(model, openvino)  # nothing left to rewrite
