"""Attacks through what remote callers send: paths, URLs, decompression bombs, exotic formats, bad text.

The rule under test: over HTTP, remote input is data, never a reference. Every route that takes media
or text adds its case here.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import omniembed as oe
from omniembed.errors import InvalidAudioError
from omniembed.inputs.policy import InputPolicy, using
from omniembed.server import ServerSettings, create_app
from omniembed.store.backend import StoredObject

from helpers.audio import sine_sweep, write_video
from helpers.server import serve

pytestmark = pytest.mark.server


def png(width: int, height: int, colour: int = 90) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (colour, 20, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    real = png(1, 1)
    header = struct.pack(">II", width, height) + real[24:29]
    chunk = b"IHDR" + header
    return real[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + real[33:]


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode()


class Recorder:
    """A loopback HTTP server that answers ``/cat.png`` and counts every request it gets."""

    def __init__(self, payload: bytes) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.paths.append(self.path)
                if self.path != "/cat.png":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder(png(32, 32))
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def clip(tiny_clip: Callable[..., Path]) -> Any:
    return oe.SentenceTransformer(tiny_clip("plain"), device="cpu")


def make_collections(db: Any, clip: Any) -> None:
    db.collections.create(
        "Media",
        {"caption": "text", "picture": "image", "clip": "audio", "movie": "video"},
        {"default": oe.SelfProvided(3)},
    )
    db.collections.create("Captions", {"caption": "text"}, oe.Vectorizer(clip, properties=["caption"]))
    db.collections.create("Pictures", {"picture": "image"}, oe.Vectorizer(clip, properties=["picture"]))
    db.collections.create("Movies", {"movie": "video"}, oe.Vectorizer(clip, properties=["movie"]))


@pytest.fixture(scope="module")
def served(clip: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Any]]:
    """A server with the default settings: no files, no URLs, default decoding limits."""
    db = oe.connect(tmp_path_factory.mktemp("attacks") / "db")
    make_collections(db, clip)
    with serve(create_app(model=clip, db=db)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, db
    db.close()


@pytest.fixture(scope="module")
def opted_in(
    clip: Any, recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, Path]]:
    """A server whose operator allowed one folder and the recorder's host, with small limits."""
    root = tmp_path_factory.mktemp("allowed")
    (root / "red.png").write_bytes(png(8, 8, 250))
    (root / "escape.png").symlink_to("/etc/passwd")
    db = oe.connect(tmp_path_factory.mktemp("opted") / "db")
    make_collections(db, clip)
    settings = ServerSettings(
        allow_local_files=str(root),
        allow_url_hosts=("127.0.0.1",),
        max_request_pixels=3 * 32 * 32,
        max_video_frames=3,
    )
    app = create_app(model=clip, db=db, settings=settings)
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, root
    db.close()


def send(client: httpx.Client, method: str, path: str, payload: Any) -> httpx.Response:
    """A JSON request written with ASCII escapes, so strings can carry what UTF-8 cannot (``\\ud800``)."""
    return client.request(
        method, path, content=json.dumps(payload), headers={"content-type": "application/json"}
    )


def insert(client: httpx.Client, collection: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    response = send(client, "POST", f"/v1/collections/{collection}/objects", {"objects": objects})
    assert response.status_code == 200, response.text
    return dict(response.json())


def media_object(**properties: Any) -> dict[str, Any]:
    return {"properties": properties, "vectors": {"default": [1.0, 0.0, 0.0]}}


def test_media_properties_never_read_server_files(served: tuple[httpx.Client, Any]) -> None:
    client, db = served
    database_file = Path(db.backend.folder) / "omniembed.sqlite"
    stolen = ["/etc/passwd", str(database_file), "file:///etc/passwd"]
    objects = [media_object(**{kind: path}) for kind in ("picture", "clip", "movie") for path in stolen]
    objects.append(media_object(picture=data_url(png(4, 4)), caption="kept"))
    result = insert(client, "Media", objects)
    assert list(result["uuids"]) == [str(len(objects) - 1)]
    assert sorted(result["errors"], key=int) == [str(i) for i in range(len(objects) - 1)]
    assert all("reads no files" in message for message in result["errors"].values())
    uuid = result["uuids"][str(len(objects) - 1)]
    for method in ("patch", "put"):
        response = client.request(
            method, f"/v1/collections/Media/objects/{uuid}", json={"properties": {"clip": "/etc/passwd"}}
        )
        assert response.status_code == 400, response.text
    listed = client.get("/v1/collections/Media/objects").text
    assert "root:" not in listed
    assert base64.b64encode(b"root:").decode()[:6] not in listed


def test_strings_are_text_never_paths_or_urls(
    served: tuple[httpx.Client, Any], clip: Any, recorder: Recorder, cifar: list[tuple[Path, str]]
) -> None:
    client, _ = served
    texts = [f"{recorder.url}/cat.png", str(cifar[0][0]), "/no/such/folder/missing.png"]
    answer = client.post("/v1/embeddings", json={"input": texts})
    assert answer.status_code == 200, answer.text
    got = np.array([row["embedding"] for row in answer.json()["data"]])
    expected = clip.encode([{"text": text} for text in texts])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    result = insert(client, "Captions", [{"properties": {"caption": text}} for text in texts])
    assert len(result["uuids"]) == 3, result
    for kind in ("near_text", "hybrid"):
        for text in texts:
            response = client.post("/v1/collections/Captions/query", json={"type": kind, "query": text})
            assert response.status_code == 200, response.text
    assert recorder.paths == []


def test_files_and_hosts_only_where_the_operator_allowed(
    opted_in: tuple[httpx.Client, Path], clip: Any, recorder: Recorder
) -> None:
    client, root = opted_in
    inside, outside = str(root / "red.png"), ["/etc/passwd", str(root / "escape.png"), str(root / "gone.png")]
    result = insert(client, "Media", [media_object(picture=path) for path in [inside, *outside]])
    assert list(result["uuids"]) == ["0"]
    answers = {result["errors"][str(i + 1)].replace(path, "PATH") for i, path in enumerate(outside)}
    assert len(answers) == 1, "the errors must not tell which paths exist"
    stored = client.get(f"/v1/collections/Media/objects/{result['uuids']['0']}").json()
    assert base64.b64decode(stored["properties"]["picture"]) == (root / "red.png").read_bytes()

    before = len(recorder.paths)
    fetched = client.post("/v1/embeddings", json={"input": f"{recorder.url}/cat.png"})
    assert fetched.status_code == 200, fetched.text
    assert recorder.paths[before:] == ["/cat.png"]
    from PIL import Image

    expected = clip.encode(Image.open(io.BytesIO(png(32, 32))))
    np.testing.assert_allclose(fetched.json()["data"][0]["embedding"], expected, atol=1e-5)
    refused_port = f"http://127.0.0.1:{recorder.server.server_address[1] + 1}/x.png"
    urls = (f"{recorder.url}/404.png", refused_port)
    captions = insert(client, "Captions", [{"properties": {"caption": url}} for url in urls])
    assert len(set(captions["errors"].values())) == 1, "the errors must not tell what the host answered"
    assert "404" not in str(captions)
    assert "refused" not in str(captions).lower()
    other_host = client.post("/v1/embeddings", json={"input": f"http://localhost:1/{'x' * 3}.png"})
    assert other_host.status_code == 200, "a host that is not allowed leaves the string as text"


def test_decompression_bombs_are_refused_before_decoding(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    for width, height in ((9000, 9000), (60000, 60000)):
        bomb = data_url(png_claiming(width, height))
        response = client.post("/v1/embeddings", json={"input": [bomb], "modality": "image"})
        assert response.status_code == 400, response.text
        assert "pixels" in response.json()["error"]["message"]
        query = client.post("/v1/collections/Pictures/query", json={"type": "near_image", "image": bomb})
        assert query.status_code == 400, query.text
        good = data_url(png(8, 8))
        result = insert(
            client, "Pictures", [{"properties": {"picture": bomb}}, {"properties": {"picture": good}}]
        )
        assert list(result["uuids"]) == ["1"]
        assert "pixels" in result["errors"]["0"]


def test_pixels_per_request_are_budgeted(opted_in: tuple[httpx.Client, Path]) -> None:
    client, _ = opted_in
    image = data_url(png(32, 32))
    assert client.post("/v1/embeddings", json={"input": [image] * 3}).status_code == 200
    response = client.post("/v1/embeddings", json={"input": [image] * 4})
    assert response.status_code == 400
    assert "per request" in response.text


def test_only_common_image_formats_reach_a_decoder(served: tuple[httpx.Client, Any]) -> None:
    from PIL import Image

    client, _ = served
    ppm = io.BytesIO()
    Image.new("RGB", (4, 4)).save(ppm, format="PPM")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\nshowpage\n"
    for payload in (ppm.getvalue(), eps):
        response = client.post("/v1/embeddings", json={"input": [data_url(payload)], "modality": "image"})
        assert response.status_code == 400, response.text
        assert "not an image format" in response.text
        assert "BytesIO" not in response.text


def test_videos_are_containers_with_bounded_frames(
    opted_in: tuple[httpx.Client, Path], tmp_path: Path
) -> None:
    client, _ = opted_in
    frames = np.random.default_rng(0).integers(0, 255, size=(6, 16, 16, 3), dtype=np.uint8)
    short = write_video(tmp_path / "short.mp4", frames[:2]).read_bytes()
    long = write_video(tmp_path / "long.mp4", frames).read_bytes()
    playlist = b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    objects = [{"properties": {"movie": data_url(data, "video/mp4")}} for data in (short, long, playlist)]
    result = insert(client, "Movies", objects)
    assert list(result["uuids"]) == ["0"], result
    assert "frames" in result["errors"]["1"]
    assert "container" in result["errors"]["2"]


def test_audio_limits_and_formats_apply_to_remote_callers(tmp_path: Path) -> None:
    import soundfile

    from omniembed.inputs.audio import load_audio

    def wav(seconds: float, rate: int = 16000, format: str = "WAV") -> bytes:
        buffer = io.BytesIO()
        soundfile.write(buffer, sine_sweep(seconds, rate), rate, format=format)
        return buffer.getvalue()

    with using(InputPolicy.for_remote_callers(max_audio_seconds=1.0)):
        assert load_audio(wav(0.5), index=0, sampling_rate=16000).shape == (8000,)
        with pytest.raises(InvalidAudioError, match="limit is 1 s"):
            load_audio(wav(2.0), index=0, sampling_rate=16000)
        with pytest.raises(InvalidAudioError, match="accepted formats"):
            load_audio(wav(0.5, format="W64"), index=0, sampling_rate=16000)
        (tmp_path / "a.wav").write_bytes(wav(0.5))
        with pytest.raises(InvalidAudioError, match="reads no files"):
            load_audio(str(tmp_path / "a.wav"), index=0, sampling_rate=16000)
    assert load_audio(str(tmp_path / "a.wav"), index=0, sampling_rate=16000).shape == (8000,)


def test_lone_surrogates_are_refused_and_old_ones_still_read(served: tuple[httpx.Client, Any]) -> None:
    client, db = served
    result = insert(client, "Media", [media_object(caption="fine"), media_object(caption="bad \ud800")])
    assert list(result["uuids"]) == ["0"]
    assert "surrogate" in result["errors"]["1"]
    uuid = result["uuids"]["0"]
    patched = send(
        client, "PATCH", f"/v1/collections/Media/objects/{uuid}", {"properties": {"caption": "\udfff"}}
    )
    assert patched.status_code == 400, patched.text
    assert send(client, "POST", "/v1/embeddings", {"input": "x \ud800"}).status_code == 400
    query = send(client, "POST", "/v1/collections/Captions/query", {"type": "near_text", "query": "\ud800"})
    assert query.status_code == 400, query.text
    old = StoredObject("6f0a3f7e-0000-4000-8000-000000000001", {"caption": "old \ud800 row"}, {})
    old.vectors["default"] = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    db.backend.insert("Media", [old])  # as a row written before text was checked
    for path in ("/v1/collections/Media/objects", f"/v1/collections/Media/objects/{old.uuid}"):
        response = client.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        captions = [obj["properties"].get("caption") for obj in body.get("objects", [body])]
        assert "old \\ud800 row" in captions  # the surrogate written out as text
