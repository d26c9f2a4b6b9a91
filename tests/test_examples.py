"""Every script in examples/ runs and prints what its comments promise."""

from __future__ import annotations

import os
import subprocess
import sys
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
