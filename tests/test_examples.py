"""Every script in examples/ runs and prints what its comments promise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return result.stdout


def test_quickstart_prints_the_seed_numbers() -> None:
    output = run("quickstart.py")
    assert "(3, 384)" in output
    for number in ("0.6660", "0.1046", "0.1411"):
        assert number in output


@pytest.mark.slow
@pytest.mark.server
def test_demo_builds_the_database_and_serves_the_search_page(tmp_path: Path) -> None:
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = str(EXAMPLES / "demo_server.py")
    command = [sys.executable, script, "--db", str(tmp_path / "db"), "--port", str(port)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as demo:
        try:
            assert demo.stdout is not None
            lines = [demo.stdout.readline() for _ in range(3)]
            assert lines[0].startswith("Articles: 100 objects (0 refused)")
            assert lines[1].startswith("Shapes: 6 pictures")
            assert f"http://127.0.0.1:{port}/" in lines[2]
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert "<title>omniembed search</title>" in httpx.get(url).text
            query = {"type": "hybrid", "query": "kitten purring", "limit": 3}
            hits = httpx.post(f"{url}/v1/collections/Articles/query", json=query).json()["objects"]
            assert hits[0]["properties"]["title"] == "Cats"
            sun = {"type": "near_text", "query": "sun"}
            shapes = httpx.post(f"{url}/v1/collections/Shapes/query", json=sun)
            assert shapes.json()["objects"][0]["properties"]["caption"] == "a yellow circle like the sun"
        finally:
            demo.terminate()
            demo.wait(timeout=30)


@pytest.mark.slow
def test_text_image_runs_on_a_clip_folder(tiny_clip: Callable[..., Path]) -> None:
    output = run("text_image.py", str(tiny_clip("legacy")))
    assert "['text', 'image', 'video']" in output
    assert "(3, 16) (3, 16)" in output
    assert "(2, 16)" in output
    for name in ("a red circle: ", "a blue square: ", "a green triangle: "):
        assert name in output


@pytest.mark.slow
def test_multilingual_image_search_runs_on_a_pair(
    multilingual_text_dir: Path, tiny_clip: Callable[..., Path]
) -> None:
    output = run("multilingual_image_search.py", str(multilingual_text_dir), str(tiny_clip("plain")))
    assert "(4, 3)" in output
    assert output.count(" -> a ") == 4


@pytest.mark.slow
def test_train_multilingual_runs_a_few_steps(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    output = run(
        "train_multilingual.py",
        *("--languages", "de,fr", "--max-pairs", "16", "--dev-pairs", "16", "--steps", "2"),
        *("--batch-size", "8", "--output", str(tmp_path / "student")),
    )
    # 16 rows, two sentences each, two languages: 64 pairs less the repeated ones
    assert "Trained on 62 (English, translation) pairs for 2 steps." in output
    rows = [line.split() for line in output.splitlines() if line.startswith(("de ", "fr "))]
    assert [row[0] for row in rows] == ["de", "fr"]
    assert all(0 <= float(row[1]) <= 1 and row[2] == "->" and 0 <= float(row[3]) <= 1 for row in rows)
    assert (tmp_path / "student" / "modules.json").is_file()
