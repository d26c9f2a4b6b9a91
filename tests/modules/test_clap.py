"""A tiny random CLAP (text + audio) gives the reference library's vectors on texts and generated audio."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
from sentence_transformers import SentenceTransformer as Reference

from omniembed import SentenceTransformer

from helpers import audio as af
from helpers.numbers import assert_same, cosines

RATE = af.CLAP_RATE
RESAMPLED_COSINE = (0.9999, 0.99)
"""Floors for 16 kHz audio (resampled to 48 kHz by us) against the 48 kHz original, measured on the tiny
CLAP: the sweep (200 Hz to 4 kHz, all below the 8 kHz that 16 kHz keeps) gives 0.9999999; the noise
burst, whose content above 8 kHz the 16 kHz version lacks, gives 0.9946."""


def clips() -> list[np.ndarray]:
    return [
        af.sine_sweep(2.0, RATE),
        af.noise_burst(0.5, RATE, seed=1),
        af.sine_sweep(3.5, RATE, 3000.0, 300.0),
        af.noise_burst(1.2, RATE, seed=2),
    ]


@pytest.fixture(scope="module")
def pair(tiny_clap: Callable[..., Path]) -> tuple[SentenceTransformer, Reference]:
    folder = tiny_clap("plain")
    return SentenceTransformer(folder, device="cpu"), Reference(str(folder), device="cpu")


@pytest.mark.slow
def test_long_audio_can_be_chunked_and_pooled(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, theirs = pair
    window = af.CLAP_SECONDS * RATE
    long = af.sine_sweep(9.0, RATE)  # windows of 4 s, 4 s and a 1 s tail (kept: at least a quarter window)
    short = af.noise_burst(1.0, RATE)
    ours.transformer.long_audio = "chunk"
    try:
        got = ours.encode([{"array": long, "sampling_rate": RATE}, {"array": short, "sampling_rate": RATE}])
    finally:
        ours.transformer.long_audio = "clip"
    pieces = [long[:window], long[window : 2 * window], long[2 * window :], short]
    parts = theirs.encode([{"array": piece, "sampling_rate": RATE} for piece in pieces])
    assert_same(got, np.stack([parts[:3].mean(axis=0), parts[3]]))


@pytest.mark.parametrize("layout", ["plain", "v6"])
def test_clap_matches_reference_on_texts_and_audio(
    tiny_clap: Callable[..., Path], sts_sentences: list[str], layout: str
) -> None:
    folder = tiny_clap(layout)
    ours = SentenceTransformer(folder, device="cpu")
    theirs = Reference(str(folder), device="cpu")
    assert ours.modalities == ["text", "audio"] == theirs.modalities
    assert ours.get_sentence_embedding_dimension() == af.CLAP_DIM
    texts = sts_sentences[:100]
    assert_same(ours.encode(texts), theirs.encode(texts))
    audio = [{"array": clip, "sampling_rate": RATE} for clip in clips()]
    assert_same(ours.encode(audio, batch_size=3), theirs.encode(audio, batch_size=3))
    wrapped = [{"audio": item} for item in audio]
    assert_same(ours.encode(wrapped), theirs.encode(audio))


def test_bare_arrays_are_read_at_the_models_rate(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, theirs = pair
    sweep = af.sine_sweep(1.0, RATE)
    import torch

    expected = theirs.encode([{"array": sweep, "sampling_rate": RATE}])
    assert_same(ours.encode([sweep, torch.from_numpy(sweep)]), np.vstack([expected, expected]))


def test_resampled_audio_is_close_to_the_original(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, theirs = pair
    originals = [af.sine_sweep(2.0, RATE), af.noise_burst(1.0, RATE, seed=3)]
    lower = [soxr.resample(clip, RATE, 16000).astype(np.float32) for clip in originals]
    ours_16k = ours.encode([{"array": clip, "sampling_rate": 16000} for clip in lower])
    # Exactly what the reference gives on the same soxr resampling ...
    upsampled = [soxr.resample(clip, 16000, RATE, quality="HQ") for clip in lower]
    assert_same(ours_16k, theirs.encode([{"array": clip, "sampling_rate": RATE} for clip in upsampled]))
    # ... and close to the 48 kHz original (closest where its content lies below 8 kHz).
    ours_48k = ours.encode([{"array": clip, "sampling_rate": RATE} for clip in originals])
    assert (cosines(ours_16k, ours_48k) >= RESAMPLED_COSINE).all()


def test_channels_are_mixed_to_mono(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, _ = pair
    left, right = af.sine_sweep(1.0, RATE), af.noise_burst(1.0, RATE)
    mono = ours.encode({"array": (left + right) / 2, "sampling_rate": RATE})
    first = ours.encode({"array": np.stack([left, right]), "sampling_rate": RATE})
    last = ours.encode({"array": np.stack([left, right], axis=1), "sampling_rate": RATE})
    np.testing.assert_allclose(first, mono, atol=1e-6)
    np.testing.assert_allclose(last, mono, atol=1e-6)


def test_long_audio_is_clipped_to_the_models_window(pair: tuple[SentenceTransformer, Reference]) -> None:
    ours, theirs = pair
    long = af.sine_sweep(9.0, RATE)
    head = long[: af.CLAP_SECONDS * RATE]
    first = ours.encode({"array": long, "sampling_rate": RATE})
    again = ours.encode({"array": long, "sampling_rate": RATE})
    np.testing.assert_array_equal(first, again)  # no random crop
    assert_same(first[None], theirs.encode([{"array": head, "sampling_rate": RATE}]))
    ours.transformer.max_audio_seconds = 1.0
    try:
        shorter = ours.encode({"array": long, "sampling_rate": RATE})
    finally:
        ours.transformer.max_audio_seconds = float(af.CLAP_SECONDS)
    assert_same(shorter[None], theirs.encode([{"array": long[:RATE], "sampling_rate": RATE}]))


@pytest.mark.parametrize(
    ("suffix", "subtype", "floor"),
    [
        (".wav", "FLOAT", None),
        (".flac", "PCM_24", None),
        (".ogg", "VORBIS", 0.9),
        (".mp3", "MPEG_LAYER_III", 0.9),
    ],
)
def test_audio_files_decode(
    pair: tuple[SentenceTransformer, Reference],
    tmp_path: Path,
    suffix: str,
    subtype: str,
    floor: float | None,
) -> None:
    ours, theirs = pair
    sweep = af.sine_sweep(1.5, RATE)
    path = tmp_path / f"sweep{suffix}"
    soundfile.write(path, sweep, RATE, subtype=subtype)
    from_path, from_str = ours.encode([path, str(path)])
    np.testing.assert_array_equal(from_path, from_str)
    decoded, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE
    assert_same(from_path[None], theirs.encode([{"array": decoded, "sampling_rate": RATE}]))
    if floor is not None:  # lossy codecs stay near the original
        assert cosines(from_path[None], ours.encode([sweep])).min() >= floor


def test_spoken_digits(pair: tuple[SentenceTransformer, Reference], tmp_path: Path) -> None:
    path = af.spoken_digits("31415", tmp_path)
    if path is None:
        pytest.skip("espeak-ng is not installed")
    ours, theirs = pair
    decoded, rate = soundfile.read(path, dtype="float32")
    resampled = soxr.resample(decoded, rate, RATE, quality="HQ")
    expected = theirs.encode([{"array": resampled[: af.CLAP_SECONDS * RATE], "sampling_rate": RATE}])
    assert_same(ours.encode([path]), expected)


def test_saved_clap_loads_in_both_libraries(
    pair: tuple[SentenceTransformer, Reference], tmp_path: Path
) -> None:
    ours, theirs = pair
    ours.save(tmp_path / "saved")
    again = SentenceTransformer(tmp_path / "saved", device="cpu")
    reloaded = Reference(str(tmp_path / "saved"), device="cpu")
    audio = [{"array": clip, "sampling_rate": RATE} for clip in clips()[:2]]
    expected = theirs.encode(audio)
    assert_same(again.encode(audio), expected)
    assert_same(reloaded.encode(audio), expected)
    assert_same(again.encode(["a dog barks"]), theirs.encode(["a dog barks"]))
