"""Audio decoding: mono-mixing, resampling, clipping, integer PCM, and clear errors on bad audio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from omniembed import SentenceTransformer
from omniembed.errors import InvalidAudioError, InvalidInputError, UnsupportedModalityError
from omniembed.inputs.audio import load_audio
from omniembed.inputs.modality import detect_modality

from helpers import audio as af

RATE = 16000


def test_load_audio_mixes_resamples_and_clips() -> None:
    stereo = np.stack([np.ones(RATE, np.float32), np.zeros(RATE, np.float32)])
    mono = load_audio({"array": stereo, "sampling_rate": RATE}, index=0, sampling_rate=RATE)
    assert mono.dtype == np.float32
    assert mono.shape == (RATE,)
    np.testing.assert_allclose(mono, 0.5)
    sweep = af.sine_sweep(2.0, 48000)
    out = load_audio({"array": sweep, "sampling_rate": 48000}, index=0, sampling_rate=RATE, max_seconds=1.5)
    assert out.shape == (24000,)
    pcm = (sweep * 32768).astype(np.int16)
    as_float = load_audio({"array": pcm, "sampling_rate": 48000}, index=0, sampling_rate=48000)
    np.testing.assert_allclose(as_float, sweep, atol=1 / 16384)


def test_audio_files_and_dicts_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    soundfile.write(path, af.sine_sweep(0.2, RATE), RATE)
    supported: list[object] = ["text", "audio"]
    assert detect_modality(str(path), 0, supported) == "audio"  # type: ignore[arg-type]
    assert detect_modality(path, 0, supported) == "audio"  # type: ignore[arg-type]
    assert detect_modality({"array": [0.1], "sampling_rate": 8000}, 0, supported) == "audio"  # type: ignore[arg-type]
    assert detect_modality("a song called x.wav", 0, supported) == "text"  # type: ignore[arg-type]
    assert detect_modality(str(path), 0, ["text"]) == "text"


@pytest.fixture(scope="module")
def clap(tiny_clap: Callable[..., Path]) -> SentenceTransformer:
    return SentenceTransformer(tiny_clap("plain"), device="cpu")


def test_bad_audio_inputs_name_the_input(clap: SentenceTransformer, tmp_path: Path) -> None:
    good = {"array": af.sine_sweep(0.5, RATE), "sampling_rate": RATE}
    truncated = tmp_path / "cut.wav"
    soundfile.write(truncated, af.sine_sweep(1.0, RATE), RATE)
    truncated.write_bytes(truncated.read_bytes()[:30])
    cases: list[tuple[object, type[Exception], str]] = [
        (truncated, InvalidAudioError, "corrupt, truncated"),
        (str(tmp_path / "missing.wav"), InvalidAudioError, "does not exist"),
        ({"array": np.zeros(0, np.float32), "sampling_rate": RATE}, InvalidAudioError, "no samples"),
        (np.zeros(0, np.float32), InvalidAudioError, "no samples"),
        ({"array": good["array"], "sampling_rate": "16000"}, InvalidAudioError, "positive integer"),
        ({"array": good["array"], "sampling_rate": 0}, InvalidAudioError, "positive integer"),
        ({"array": good["array"], "sampling_rate": 16000.0}, InvalidAudioError, "positive integer"),
        ({"array": np.full(10, np.nan, np.float32), "sampling_rate": RATE}, InvalidAudioError, "NaN"),
        ({"array": np.zeros((40, 40), np.float32), "sampling_rate": RATE}, InvalidAudioError, "channel"),
        ({"array": "loud", "sampling_rate": RATE}, InvalidInputError, "numpy array"),
    ]
    for bad, error, text in cases:
        with pytest.raises(error, match=text) as raised:
            clap.encode([good, bad])
        assert "index 1" in str(raised.value), str(raised.value)


def test_text_models_refuse_audio(minilm: SentenceTransformer) -> None:
    with pytest.raises(UnsupportedModalityError, match="index 0 is audio"):
        minilm.encode([{"array": np.zeros(10, np.float32), "sampling_rate": RATE}])


# Blocks soundfile the way an environment without the ``audio`` extra behaves.
SCRIPT = """
import json, sys
sys.modules["soundfile"] = None
import numpy as np
from omniembed import MissingExtraError, SentenceTransformer

model = SentenceTransformer(sys.argv[1], device="cpu")
results = {"text_shape": list(model.encode(["a dog barks"]).shape)}
try:
    model.encode({"array": np.zeros(4800, np.float32), "sampling_rate": 48000})
except MissingExtraError as error:
    results["error"] = str(error)
    results["is_import_error"] = isinstance(error, ImportError)
print(json.dumps(results))
"""


@pytest.mark.slow
def test_without_soundfile_text_works_and_audio_names_the_extra(tiny_clap: Callable[..., Path]) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", SCRIPT, str(tiny_clap("plain"))]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=True)
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results["text_shape"] == [1, af.CLAP_DIM]
    assert "pip install 'omniembed[audio]'" in results["error"]
    assert results["is_import_error"] is True
