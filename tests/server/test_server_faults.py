"""Faults: clients that vanish mid-request, malformed and 100 MB bodies, a server killed mid-import."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import omniembed as oe
from omniembed.server import ServerSettings, create_app

from helpers.server import free_port, serve

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def base_url(minilm: Any) -> Iterator[str]:
    with serve(create_app(model=minilm, settings=ServerSettings(max_body_bytes=1 << 20))) as url:
        yield url


def raw_request(url: str, body: bytes, declared: int | None = None, read: bool = True) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            f"POST /v1/embeddings HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if declared is None else declared}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        if not read:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_clients_that_disconnect_mid_request_do_not_hurt_the_server(base_url: str, minilm: Any) -> None:
    body = json.dumps({"input": ["a sentence to embed"] * 32}).encode()
    for _ in range(16):  # send the request, then hang up before the answer comes
        raw_request(base_url, body, read=False)
    answer = httpx.post(f"{base_url}/v1/embeddings", json={"input": "still here"}, timeout=60).json()
    assert answer["data"][0]["embedding"] == pytest.approx(minilm.encode("still here").tolist(), abs=1e-5)
    deadline = time.monotonic() + 30
    while "omniembed_queue_depth 0.0" not in httpx.get(f"{base_url}/metrics").text:
        assert time.monotonic() < deadline, "the queue never drained"
        time.sleep(0.1)


def test_malformed_and_truncated_bodies(base_url: str) -> None:
    for body in (b"{", b'{"input": ', b"\xff\xfe", b"[1, 2, 3]", b'{"input": {"nested": true}}'):
        reply = raw_request(base_url, body)
        assert reply.startswith(b"HTTP/1.1 422"), reply[:100]
        assert b'"code":"invalid_request"' in reply
    assert httpx.get(f"{base_url}/health").status_code == 200


def test_a_100_mb_body_is_refused_without_reading_it(base_url: str) -> None:
    reply = raw_request(base_url, b'{"input": "', declared=100 * 2**20)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"body_too_large" in reply

    def hundred_megabytes() -> Iterator[bytes]:
        yield b'{"input": "'
        for _ in range(100):
            yield b"x" * 2**20
        yield b'"}'

    try:
        streamed = httpx.post(
            f"{base_url}/v1/embeddings",
            content=hundred_megabytes(),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
    except httpx.WriteError:  # the server answered and closed while the client was still sending
        pass
    assert httpx.get(f"{base_url}/health").status_code == 200


@pytest.mark.slow
def test_server_killed_during_batch_insert_keeps_every_acknowledged_object(
    minilm_dir: Path, tmp_path: Path
) -> None:
    folder, port = tmp_path / "db", free_port()
    with oe.connect(folder) as db:
        db.collections.create("Notes", {"text": "text"}, oe.Vectorizer(str(minilm_dir)))
    command = [sys.executable, "-m", "omniembed.cli", "-q", "serve", "--model", str(minilm_dir)]
    command += ["--db", str(folder), "--port", str(port)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []
    try:
        wait_for(url)
        stop = threading.Event()

        def insert() -> None:
            for batch in range(1000):
                objects = [{"properties": {"text": f"note {batch}-{i}"}} for i in range(64)]
                try:
                    reply = httpx.post(
                        f"{url}/v1/collections/Notes/objects", json={"objects": objects}, timeout=60
                    )
                except httpx.TransportError:
                    return
                acknowledged.extend(reply.json()["uuids"].values())
                if stop.is_set():
                    return

        writer = threading.Thread(target=insert)
        writer.start()
        while len(acknowledged) < 3 * 64:
            time.sleep(0.01)
        time.sleep(0.05)  # land the kill inside a batch
        server.send_signal(signal.SIGKILL)
        stop.set()
        writer.join(timeout=60)
    finally:
        server.kill()
        server.wait()
    with oe.connect(folder) as db:
        notes = db.collections.get("Notes", vectorizers={"default": None})
        stored = set(notes.query.fetch_objects().uuids)
    assert set(acknowledged) <= stored
    assert len(acknowledged) >= 3 * 64


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)
