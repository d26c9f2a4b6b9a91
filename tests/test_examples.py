"""Every script in examples/ runs and prints what its comments promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
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
