"""Without Pillow (the ``image`` extra), text still embeds and images say which extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# Blocks Pillow the way an environment without it behaves: ``import PIL`` raises ImportError.
SCRIPT = """
import json, sys
sys.modules["PIL"] = None
from omniembed import MissingExtraError, SentenceTransformer

results = {}
for name, folder in (("text", sys.argv[1]), ("clip", sys.argv[2])):
    model = SentenceTransformer(folder, device="cpu")
    results[name + "_shape"] = list(model.encode(["a text", "another text"]).shape)
try:
    model.encode(sys.argv[3])
except MissingExtraError as error:
    results["error"] = str(error)
    results["is_import_error"] = isinstance(error, ImportError)
results["pil_loaded"] = any(name.startswith("PIL.") for name in sys.modules)
print(json.dumps(results))
"""


@pytest.mark.slow
def test_without_pillow_text_works_and_images_name_the_extra(
    minilm_dir: Path, tiny_clip: Callable[..., Path], cifar: list[tuple[Path, str]]
) -> None:
    image = str(cifar[0][0])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", SCRIPT, str(minilm_dir), str(tiny_clip("plain")), image]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=True)
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results["text_shape"] == [2, 384]
    assert results["clip_shape"] == [2, 16]
    assert "pip install 'omniembed[image]'" in results["error"]
    assert results["is_import_error"] is True
    assert results["pil_loaded"] is False
