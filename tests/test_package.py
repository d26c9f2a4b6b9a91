"""The package's public face: exports, version, import cost, and no runtime tie to the reference library."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import omniembed
from omniembed import errors

SRC = Path(omniembed.__file__).parent


def test_all_is_sorted_and_importable() -> None:
    assert omniembed.__all__ == sorted(omniembed.__all__)
    for name in omniembed.__all__:
        assert getattr(omniembed, name) is not None


def test_version_has_one_source() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", omniembed.__version__)
    pyproject = (SRC.parents[1] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert "version =" not in pyproject.split("[project]")[1].split("[")[0]


def test_import_is_light() -> None:
    code = "import sys, omniembed; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_the_reference_library_is_never_imported_by_the_package() -> None:
    offenders = [
        str(path)
        for path in SRC.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+sentence_transformers", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def test_errors_subclass_builtins() -> None:
    assert issubclass(errors.ModelNotFoundError, FileNotFoundError)
    assert issubclass(errors.ModelFormatError, ValueError)
    assert issubclass(errors.InvalidInputError, TypeError)
    assert issubclass(errors.MissingExtraError, ImportError)
    for name in ("ModelNotFoundError", "ModelFormatError", "InvalidInputError", "MissingExtraError"):
        assert issubclass(getattr(errors, name), errors.OmniembedError)
        assert name in (errors.__doc__ or "")


def test_the_all_extra_installs_every_feature() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def expand(name: str) -> set[str]:
        """Return an extra's requirements, ``omniembed[a,b]`` replaced by those of ``a`` and ``b``."""
        found: set[str] = set()
        for requirement in extras[name]:
            if requirement.startswith("omniembed["):
                for inner in requirement.removeprefix("omniembed[").removesuffix("]").split(","):
                    found |= expand(inner.strip())
            else:
                found.add(requirement)
        return found

    features = set(extras) - {"all", "dev", "bench"}
    assert {
        "image",
        "audio",
        "video",
        "store",
        "server",
        "onnx",
        "openvino",
        "milvus",
        "ray",
        "parquet",
    } <= features
    assert set().union(*(expand(name) for name in features)) <= expand("all")
