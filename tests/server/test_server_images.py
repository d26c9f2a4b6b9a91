"""Images over HTTP (data URLs) with an image-capable model: embeddings, near_image, the page's drop box.

These need a model that embeds images (CLIP support and the ``tiny_clip`` fixture); they are skipped
when this tree has neither.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import omniembed as oe
from omniembed.server import create_app

from helpers.server import serve

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def clip(request: pytest.FixtureRequest) -> Any:
    try:
        build = request.getfixturevalue("tiny_clip")
    except pytest.FixtureLookupError:
        pytest.skip("no tiny_clip fixture: image models are not in this tree yet")
    from omniembed import SentenceTransformer

    model = SentenceTransformer(build("plain"), device="cpu")
    if "image" not in model.modalities:
        pytest.skip("this tree's models do not embed images yet")
    return model


def picture(colour: tuple[int, int, int]) -> Any:
    from PIL import Image

    return Image.new("RGB", (32, 32), colour)


def data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def served(clip: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    db = oe.connect(tmp_path_factory.mktemp("images") / "db")
    shapes = db.collections.create(
        "Shapes", {"caption": "text", "picture": "image"}, oe.Vectorizer(clip, properties=["picture"])
    )
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
    shapes.data.insert_many([{"caption": name, "picture": picture(c)} for name, c in colours.items()])
    with serve(create_app(model=clip, db=db)) as url:
        yield url, db
    db.close()


def test_embeddings_take_data_urls_and_text(served: tuple[str, Any], clip: Any) -> None:
    url, _ = served
    red = picture((220, 30, 30))
    body = {"input": [data_url(red), "a red square"]}
    data = httpx.post(f"{url}/v1/embeddings", json=body).json()["data"]
    np.testing.assert_allclose(data[0]["embedding"], clip.encode(red), atol=1e-5)
    np.testing.assert_allclose(data[1]["embedding"], clip.encode("a red square"), atol=1e-5)
    here = str(Path(__file__))  # a path is embedded as text, never opened for a remote caller
    as_text = httpx.post(f"{url}/v1/embeddings", json={"input": here}).json()["data"][0]["embedding"]
    np.testing.assert_allclose(as_text, clip.encode({"text": here}), atol=1e-5)
    broken = httpx.post(f"{url}/v1/embeddings", json={"input": "data:image/png;base64,AAAA"})
    assert broken.status_code == 400
    assert "index 0" in broken.json()["error"]["message"]


def test_near_image_over_rest(served: tuple[str, Any]) -> None:
    url, _ = served
    query = {"type": "near_image", "image": data_url(picture((40, 190, 40))), "limit": 3}
    hits = httpx.post(f"{url}/v1/collections/Shapes/query", json=query).json()["objects"]
    assert hits[0]["properties"]["caption"] == "green"
    listed = httpx.get(f"{url}/v1/collections").json()["collections"][0]
    assert "image" in listed["modalities"]


@pytest.mark.browser
@pytest.mark.slow
def test_page_searches_by_a_dropped_image(served: tuple[str, Any], tmp_path: Path) -> None:
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("apt-get install chromium")
    from playwright.sync_api import sync_playwright

    url, _ = served
    file = tmp_path / "query.png"
    picture((30, 40, 210)).save(file)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#drop", state="visible")  # shown for image-capable collections only
            page.set_input_files("#image-file", str(file))
            page.wait_for_function("document.querySelector('#status').textContent.includes('near_image')")
            assert page.locator(".result .title").first.inner_text() == "blue"
            assert page.locator(".result img").count() == 3
        finally:
            browser.close()
