"""modules.json: one reader for every model kind, and no module path that leads out of the model folder.

Each refused case points at a real copy of the module's files outside the folder, so the load would
succeed but for the check; the inside-link case shows the check refuses only what leaves the folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from omniembed import CrossEncoder, SentenceTransformer
from omniembed.errors import ModelFormatError
from omniembed.formats.modules_json import read_modules_json
from omniembed.late_interaction.encoder import MultiVectorEncoder

from helpers import images as imf
from helpers import models as mf

LOGIT_SCORE = "sentence_transformers.cross_encoder.modules.logit_score.LogitScore"


@dataclass(frozen=True)
class Kind:
    folder: Path
    module: str  # the entry (by path) whose path the cases rewrite
    load: Callable[[Path], Any]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory, tiny_model: Callable[..., Path]) -> dict[str, Kind]:
    root = tmp_path_factory.mktemp("modules-json")
    reranker = mf.build_cross_encoder(root / "reranker", layout="v6")
    entries = json.loads((reranker / "modules.json").read_text())
    entries.append({"idx": 1, "name": "1", "path": "1_LogitScore", "type": LOGIT_SCORE})
    mf.write_json(reranker / "modules.json", entries)
    mf.write_json(reranker / "1_LogitScore" / "config.json", {})
    return {
        "sentence_transformer": Kind(
            tiny_model("bert"), "1_Pooling", lambda folder: SentenceTransformer(folder, device="cpu")
        ),
        "cross_encoder": Kind(reranker, "1_LogitScore", lambda folder: CrossEncoder(folder, device="cpu")),
        "multi_vector": Kind(
            mf.build_colbert(root / "colbert"),
            "1_Dense",
            lambda folder: MultiVectorEncoder(folder, device="cpu"),
        ),
        "vision_multi_vector": Kind(
            imf.build_colpali(root / "colpali", layout="v6"),
            "1_MultiVectorMask",
            lambda folder: MultiVectorEncoder(folder, device="cpu"),
        ),
    }


def point_module(folder: Path, module: str, path: str) -> None:
    """Rewrite the ``path`` of the entry that named ``module``."""
    entries = json.loads((folder / "modules.json").read_text())
    for entry in entries:
        if entry["path"] == module:
            entry["path"] = path
    (folder / "modules.json").write_text(json.dumps(entries))


def layouts(tmp_path: Path, kind: Kind) -> tuple[Path, Path]:
    """A copy of the model in ``tmp_path/model`` and one of its module in ``tmp_path/outside``."""
    folder = Path(shutil.copytree(kind.folder, tmp_path / "model"))
    outside = Path(shutil.copytree(folder / kind.module, tmp_path / "outside"))
    return folder, outside


KINDS = ["sentence_transformer", "cross_encoder", "multi_vector", "vision_multi_vector"]


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("case", ["parent", "absolute", "link_out"])
def test_module_path_out_of_the_folder_is_refused(
    kinds: dict[str, Kind], tmp_path: Path, name: str, case: str
) -> None:
    kind = kinds[name]
    folder, outside = layouts(tmp_path, kind)
    if case == "parent":
        path = "../outside"
    elif case == "absolute":
        path = str(outside)
    else:
        (folder / "link").symlink_to(outside, target_is_directory=True)
        path = "link"
    point_module(folder, kind.module, path)
    with pytest.raises(ModelFormatError, match="must stay inside the model folder") as raised:
        kind.load(folder)
    assert repr(path) in str(raised.value)  # the message names the offending path
    assert "modules.json" in str(raised.value)


@pytest.mark.parametrize("name", KINDS)
def test_link_that_stays_inside_loads(kinds: dict[str, Kind], tmp_path: Path, name: str) -> None:
    kind = kinds[name]
    folder = Path(shutil.copytree(kind.folder, tmp_path / "model"))
    (folder / "link").symlink_to(folder / kind.module, target_is_directory=True)
    point_module(folder, kind.module, "link")
    kind.load(folder)


def test_entries_are_typed_sorted_and_resolved(kinds: dict[str, Kind]) -> None:
    folder = kinds["multi_vector"].folder
    entries = read_modules_json(folder)
    assert entries is not None
    assert [(e.idx, e.class_name, e.package, e.relative) for e in entries] == [
        (0, "Transformer", "sentence_transformers", ""),
        (1, "Dense", "pylate", "1_Dense"),
    ]
    assert entries[0].folder == folder.resolve()
    assert entries[1].folder == (folder / "1_Dense").resolve()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "should list the model's modules"),
        ('{"idx": 0}', "should list the model's modules"),
        ('[{"idx": 0, "path": ""}]', "needs a 'type' and an integer 'idx'"),
        ('[{"idx": 0, "type": "x", "path": 3}]', "a string 'path'"),
        ('[{"idx": 0, "type": "x", "path": "a\\u0000b"}]', "must stay inside"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "modules.json").write_text(content)
    with pytest.raises(ModelFormatError, match=message):
        read_modules_json(tmp_path)


def test_no_file_is_none(tmp_path: Path) -> None:
    assert read_modules_json(tmp_path) is None
