"""Audio properties vectorized by a tiny random CLAP, and video properties by a tiny random CLIP."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

import omniembed as oe

from helpers import audio as af
from helpers.audio import write_video

RATE = af.CLAP_RATE


def unit(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector / np.linalg.norm(vector))


def clips() -> list[np.ndarray]:
    return [af.sine_sweep(1.0 + i / 4, RATE, 200.0 * (i + 1), 3000.0) for i in range(3)] + [
        af.noise_burst(0.8, RATE, seed=i) for i in range(3)
    ]


@pytest.fixture
def sounds(tiny_clap, tmp_path):  # type: ignore[no-untyped-def]
    model = oe.SentenceTransformer(tiny_clap("plain"), device="cpu")
    db = oe.connect()
    collection = db.collections.create(
        "Sound", {"title": "text", "clip": "audio"}, {"clap": oe.Vectorizer(model, ["title", "clip"])}
    )
    files = []
    for i, clip in enumerate(clips()):
        files.append(tmp_path / f"clip{i}.flac")
        soundfile.write(files[-1], clip, RATE, subtype="PCM_24")
    objects: list[dict[str, object]] = [{"clip": path} for path in files[:4]]
    objects.append({"clip": {"array": clips()[4], "sampling_rate": RATE}})
    objects.append({"title": "rain on a roof", "clip": files[5].read_bytes()})
    result = collection.data.insert_many(objects)
    assert not result.errors
    yield model, collection, result.uuids, files
    db.close()


def test_audio_objects_get_the_models_audio_vector(sounds) -> None:  # type: ignore[no-untyped-def]
    model, collection, uuids, files = sounds
    stored = collection.data.get_by_id(uuids[2], include_vector=True)
    np.testing.assert_allclose(stored.vectors["clap"], unit(model.encode(files[2])), atol=1e-5)
    from_array = collection.data.get_by_id(uuids[4], include_vector=True)
    expected = model.encode({"array": clips()[4], "sampling_rate": RATE})
    np.testing.assert_allclose(from_array.vectors["clap"], unit(expected), atol=1e-5)
    stored_wav = base64.b64decode(from_array.properties["clip"])
    waveform, rate = soundfile.read(io.BytesIO(stored_wav), dtype="float32")
    assert rate == RATE
    np.testing.assert_array_equal(waveform, clips()[4])  # kept as float WAV, losslessly


def test_text_and_audio_objects_get_the_mean_of_both_sides(sounds) -> None:  # type: ignore[no-untyped-def]
    model, collection, uuids, files = sounds
    stored = collection.data.get_by_id(uuids[5], include_vector=True)
    text, audio = model.encode(["rain on a roof", files[5]])
    np.testing.assert_allclose(stored.vectors["clap"], unit(unit(text) + unit(audio)), atol=1e-5)


def test_near_audio_finds_the_same_clip(sounds) -> None:  # type: ignore[no-untyped-def]
    _, collection, uuids, files = sounds
    for query in (files[1], str(files[1]), files[1].read_bytes()):
        result = collection.query.near_audio(query, limit=3)
        assert result[0].uuid == uuids[1]
        assert result[0].distance == pytest.approx(0.0, abs=1e-5)
    decoded, _ = soundfile.read(files[3], dtype="float32")
    result = collection.query.near_audio({"array": decoded, "sampling_rate": RATE}, limit=2)
    assert result[0].uuid == uuids[3]


def test_near_text_ranks_sounds_by_the_text_tower(sounds) -> None:  # type: ignore[no-untyped-def]
    model, collection, _, _ = sounds
    result = collection.query.near_text("a dog barking", limit=6)
    query = unit(model.encode_query("a dog barking"))
    stored = collection.query.fetch_objects(include_vector=True)
    expected = sorted(stored, key=lambda obj: -float(obj.vectors["clap"] @ query))
    assert result.uuids == [obj.uuid for obj in expected]


def test_media_properties_refuse_bad_values_and_filters(sounds) -> None:  # type: ignore[no-untyped-def]
    _, collection, _, _ = sounds
    with pytest.raises(ValueError, match="neither base64 nor a data URL"):
        collection.data.insert({"clip": "not audio!"})
    with pytest.raises(ValueError, match="positive integer"):
        collection.data.insert({"clip": {"array": clips()[0], "sampling_rate": "48k"}})
    with pytest.raises(ValueError, match="cannot be filtered"):
        collection.query.fetch_objects(filters=oe.Filter.by_property("clip").equal("x"))


def test_video_objects_and_near_video_with_clip(tiny_clip, cifar, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    model = oe.SentenceTransformer(tiny_clip("plain"), device="cpu")
    frames = []
    for path, _ in cifar[:24]:
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB")))
    videos = [write_video(tmp_path / f"v{i}.mp4", np.stack(frames[i * 6 : i * 6 + 6])) for i in range(4)]
    with oe.connect() as db:
        collection = db.collections.create(
            "Film", {"film": "video", "title": "text"}, {"clip": oe.Vectorizer(model, ["film"])}
        )
        uuids = collection.data.insert_many([{"film": path, "title": path.name} for path in videos]).uuids
        stored = collection.data.get_by_id(uuids[2], include_vector=True)
        np.testing.assert_allclose(stored.vectors["clip"], model.encode([videos[2]])[0], atol=1e-5)
        result = collection.query.near_video(videos[2], limit=2)
        assert result[0].uuid == uuids[2]
        assert result[0].distance == pytest.approx(0.0, abs=1e-5)
