"""``omniembed import`` of a folder of PDFs: one object per page, page images by a late-interaction model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import omniembed as oe
from omniembed.cli import OK, PARTIAL, main

from helpers import images as imf
from helpers import pdfs
from helpers.cranfield import cranfield


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs, _ = cranfield(9)
    texts = [d["body"] for d in docs]
    folder = tmp_path_factory.mktemp("reports")
    pdfs.write_pdf(folder / "wings.pdf", texts[:5])
    pdfs.write_pdf(folder / "shocks.pdf", texts[5:])
    (folder / "locked.pdf").write_bytes(pdfs.pdf_bytes(texts[:1], password="pw"))
    return folder


def test_a_folder_of_pdfs_imports_page_images_and_text_layers(
    reports: Path, tmp_path: Path, minilm_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = imf.build_colmodernvbert(tmp_path / "colmodernvbert")
    db = str(tmp_path / "db")
    argv = ["-q", "import", db, "Pages", str(reports), "--model", str(model)]
    assert main([*argv, "--text-model", str(minilm_dir), "--dpi", "72"]) == PARTIAL
    captured = capsys.readouterr()
    assert "imported 9 of 9 objects" in captured.out
    assert "skipped locked.pdf: the PDF is encrypted" in captured.err
    with oe.connect(db) as opened:
        pages = opened.collections.get("Pages")
        config = pages.config
        assert config.schema.properties == {
            "file": "text",
            "page": "int",
            "image": "image",
            "text": "text",
        }
        assert config.schema.tokenization_of("file") == "field"
        assert config.vectors["image"].metric == "maxsim"
        assert config.vectors["image"].storage == "float16"
        assert config.vectors["text"].metric == "cosine"
        held = sorted(
            (o.properties["file"], o.properties["page"]) for o in pages.query.fetch_objects(limit=20)
        )
        assert held == [("shocks.pdf", p) for p in range(1, 5)] + [("wings.pdf", p) for p in range(1, 6)]
    query = ["search", db, "Pages", "slipstream lift", "--json", "--limit", "1"]
    for mode in ("near_text", "hybrid"):
        assert main([*query, "--mode", mode, "--target-vector", "text"]) == OK
        line = json.loads(capsys.readouterr().out.splitlines()[0])
        assert (line["properties"]["file"], line["properties"]["page"]) == ("wings.pdf", 1)
        assert line["properties"]["image"] == "<image>"
    assert main([*query, "--mode", "near_text", "--target-vector", "image"]) == OK
    assert json.loads(capsys.readouterr().out)["properties"]["page"] >= 1


def test_a_text_model_embeds_the_text_layer(reports: Path, tmp_path: Path, tiny_model: Any) -> None:
    db = str(tmp_path / "db")
    argv = ["-q", "import", db, "Pages", str(reports), "--model", str(tiny_model("bert")), "--dpi", "36"]
    assert main(argv) == PARTIAL
    with oe.connect(db) as opened:
        pages = opened.collections.get("Pages")
        assert sorted(pages.config.vectors) == ["text"]
        assert pages.vectorizers["text"].properties == ["text"]
        assert len(pages) == 9
