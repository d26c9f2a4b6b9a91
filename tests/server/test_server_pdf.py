"""Uploading PDFs over REST: pages become objects that near_text, BM25 and hybrid find by file and page."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import omniembed as oe
from omniembed.server import ServerSettings, create_app

from helpers import pdfs
from helpers.cranfield import cranfield
from helpers.server import serve

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def client(minilm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = oe.connect(tmp_path_factory.mktemp("pdf") / "db")
    settings = ServerSettings(max_image_pixels=400 * 600)
    with (
        serve(create_app(model=minilm, db=db, settings=settings)) as url,
        httpx.Client(base_url=url, timeout=120) as http,
    ):
        yield http
    db.close()


def test_an_uploaded_pdf_is_searched_by_page(client: httpx.Client) -> None:
    docs, _ = cranfield(8)
    texts = [d["body"] for d in docs]
    spec = {
        "name": "Reports",
        "properties": {
            "file": {"type": "text", "tokenization": "field"},
            "page": "int",
            "image": "image",
            "text": "text",
        },
        "vectors": {"default": {"properties": ["text"]}},
    }
    assert client.post("/v1/collections", json=spec).status_code == 201
    for name, part in (("wings.pdf", texts[:4]), ("flows.pdf", texts[4:])):
        data = "data:application/pdf;base64," + base64.b64encode(pdfs.pdf_bytes(part)).decode()
        answer = client.post("/v1/collections/Reports/pdf", json={"file": name, "data": data, "dpi": 36})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["uuids"]) == 4, answer.text[:3000]
        assert not answer.json()["unread"]
    # an A3 page at 72 dpi (842x1191) is over this server's 240,000 pixels: named, and the rest kept
    mixed = pdfs.pdf_bytes(["small", "large"], sizes=[(100.0, 140.0), (297.0, 420.0)])
    answer = client.post(
        "/v1/collections/Reports/pdf",
        json={"file": "mixed.pdf", "data": base64.b64encode(mixed).decode(), "dpi": 72, "max_side": 4096},
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["uuids"]) == 1
    assert answer.json()["unread"][0].startswith("mixed.pdf, page 2: renders to 842x1191")
    described = client.get("/v1/collections/Reports").json()
    assert described["count"] == 9
    for kind in ("near_text", "bm25", "hybrid"):
        found = client.post(
            "/v1/collections/Reports/query",
            json={"type": kind, "query": "wing in a propeller slipstream", "limit": 3},
        ).json()["objects"]
        top = found[0]["properties"]
        assert (top["file"], top["page"]) == ("wings.pdf", 1), kind
        assert top["text"].startswith("experimental investigation")
        assert top["image"]
