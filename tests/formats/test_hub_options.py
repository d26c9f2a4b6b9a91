"""HubOptions: the hub arguments every model class takes, resolved in one place and once per model."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest

from omniembed import CrossEncoder, SentenceTransformer
from omniembed.formats import hub
from omniembed.formats.hub import HUB_ARGUMENTS, HubOptions
from omniembed.late_interaction.encoder import MultiVectorEncoder
from omniembed.late_interaction.vision import VisionMultiVectorEncoder

from helpers import images as imf
from helpers import models as mf

MODEL_CLASSES = [SentenceTransformer, CrossEncoder, MultiVectorEncoder, VisionMultiVectorEncoder]


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_every_model_class_takes_the_hub_arguments_with_the_same_defaults(cls: type) -> None:
    parameters = inspect.signature(cls.__init__).parameters
    for field in dataclasses.fields(HubOptions):
        assert parameters[field.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[field.name].default == field.default, (cls.__name__, field.name)
    assert HUB_ARGUMENTS == ("cache_folder", "revision", "token", "local_files_only")


def test_pick_takes_only_hub_arguments() -> None:
    options = HubOptions.pick({"cache_folder": "/c", "local_files_only": True, "device": "cpu"})
    assert options == HubOptions(cache_folder="/c", local_files_only=True)


@pytest.fixture(scope="module")
def multi_vector_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub-multi-vector")
    return {
        "text": mf.build_colbert(root / "colbert"),
        "vision": imf.build_colpali(root / "colpali"),
    }


@pytest.mark.parametrize(
    ("kind", "expected"), [("text", MultiVectorEncoder), ("vision", VisionMultiVectorEncoder)]
)
def test_multi_vector_encoder_resolves_its_folder_once(
    multi_vector_folders: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    expected: type,
) -> None:
    snapshot = mf.build_hub_cache(tmp_path / "cache", f"acme/{kind}", multi_vector_folders[kind])
    calls: list[str] = []
    real = hub.resolve_model_folder

    def counting(name_or_path: Any, **options: Any) -> Path:
        calls.append(str(name_or_path))
        return real(name_or_path, **options)

    monkeypatch.setattr(hub, "resolve_model_folder", counting)
    model = MultiVectorEncoder(
        f"acme/{kind}", cache_folder=tmp_path / "cache", local_files_only=True, device="cpu"
    )
    assert type(model) is expected
    assert calls == [f"acme/{kind}"]
    assert "_resolved_folder" not in model.__dict__
    assert snapshot.is_dir()
