"""The repository is self-contained: a fresh clone reads only its own files and installs from its lock."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
LOCK = ROOT / "requirements" / "dev.lock"
# Written in pieces so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", r"parents\[\d+\] / \"" + "shared"]).encode())


def tracked_files() -> list[Path]:
    """Return the files git tracks in this checkout."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.split("\0") if name]


def test_no_tracked_file_reaches_outside_the_repository() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in tracked_files()
        if path.is_file() and OUTSIDE.search(path.read_bytes())
    ]
    assert offenders == [], "read data from the repository's data/ folder instead"


def test_every_data_set_says_where_it_comes_from() -> None:
    folders = sorted(path for path in DATA.iterdir() if path.is_dir())
    assert folders, f"no data sets in {DATA}"
    index = (DATA / "README.md").read_text(encoding="utf-8")
    for folder in folders:
        assert (folder / "SOURCE.txt").is_file(), f"{folder} has no SOURCE.txt (source, commit, licence)"
        assert f"`{folder.name}/`" in index, f"data/README.md does not list {folder.name}/"


def test_the_lock_pins_the_cpu_torch_and_names_no_local_path() -> None:
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    assert "torch==2.13.0" in lines
    assert not [line for line in lines if "file://" in line or line.startswith("-")]
