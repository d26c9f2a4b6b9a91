"""Router: the reference library's routed folders load, and encode_query / encode_document pick the route."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer as Reference

from omniembed import ModelFormatError, SentenceTransformer
from omniembed.modules import Router

from helpers.sparse import build_routed_dense

TEXTS = ["The weather is lovely today.", "He drove to the stadium.", "x", "a much longer input " * 10]


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_routed_dense(tmp_path_factory.mktemp("routed") / "model")


def test_routes_match_reference(routed: Path) -> None:
    ours, theirs = SentenceTransformer(routed, device="cpu"), Reference(str(routed), device="cpu")
    assert isinstance(ours[0], Router)
    assert ours[0].route_names == ["query", "document"]
    for method in ("encode", "encode_query", "encode_document"):
        np.testing.assert_allclose(getattr(ours, method)(TEXTS), getattr(theirs, method)(TEXTS), atol=1e-5)
    queries, documents = ours.encode_query(TEXTS), ours.encode_document(TEXTS)
    assert np.abs(queries - documents).max() > 0.1  # two different networks
    np.testing.assert_allclose(ours.encode(TEXTS, task="query"), queries, atol=1e-6)
    np.testing.assert_allclose(ours.encode(TEXTS), documents, atol=1e-6)  # the default route
    assert ours.get_sentence_embedding_dimension() == 32


def test_saved_router_loads_in_the_reference(routed: Path, tmp_path: Path) -> None:
    ours = SentenceTransformer(routed, device="cpu")
    ours.save(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "router_config.json").read_text())
    assert config["structure"] == {"query": ["query_0_Transformer"], "document": ["document_0_Transformer"]}
    theirs = Reference(str(tmp_path / "saved"), device="cpu")
    np.testing.assert_allclose(ours.encode_query(TEXTS), theirs.encode_query(TEXTS), atol=1e-5)
    np.testing.assert_allclose(ours.encode_document(TEXTS), theirs.encode_document(TEXTS), atol=1e-5)


def test_unknown_task_and_other_backends_are_refused(routed: Path) -> None:
    model = SentenceTransformer(routed, device="cpu")
    with pytest.raises(
        ValueError, match=r"no route for task 'summary'; its routes are \['query', 'document'\]"
    ):
        model.encode("a", task="summary")
    with pytest.raises(ValueError, match="runs in torch only"):
        SentenceTransformer(routed, device="cpu", backend="onnx")


def edited(routed: Path, tmp_path: Path, change: dict[str, object]) -> Path:
    folder = Path(shutil.copytree(routed, tmp_path / "model"))
    config = json.loads((folder / "router_config.json").read_text())
    config.update(change)
    (folder / "router_config.json").write_text(json.dumps(config))
    return folder


def test_module_folders_may_not_leave_the_model(routed: Path, tmp_path: Path) -> None:
    folder = edited(
        routed,
        tmp_path,
        {
            "types": {"../outside": "sentence_transformers.base.modules.transformer.Transformer"},
            "structure": {"query": ["../outside"]},
        },
    )
    with pytest.raises(ModelFormatError, match="leaves the model folder"):
        SentenceTransformer(folder, device="cpu")


def test_bad_router_configs(routed: Path, tmp_path: Path) -> None:
    folder = edited(routed, tmp_path, {"structure": {"query": ["missing_module"]}})
    with pytest.raises(ModelFormatError, match="names unknown modules"):
        SentenceTransformer(folder, device="cpu")
    shutil.rmtree(folder)
    folder = edited(routed, tmp_path, {"parameters": {"default_route": "elsewhere"}})
    with pytest.raises(ModelFormatError, match="route 'elsewhere' is not one of its routes"):
        SentenceTransformer(folder, device="cpu")
    shutil.rmtree(folder)
    types = json.loads((routed / "router_config.json").read_text())["types"]
    folder = edited(routed, tmp_path, {"types": {**types, "query_0_Transformer": "os.system"}})
    with pytest.raises(ModelFormatError, match=r"module type 'os\.system'"):
        SentenceTransformer(folder, device="cpu")
