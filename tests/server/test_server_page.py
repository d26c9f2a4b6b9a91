"""The search page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright)."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import omniembed as oe
from omniembed.server import create_app

from helpers import models as mf
from helpers.server import serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.server,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install chromium"),
]


def png(color: tuple[int, int, int]) -> bytes:
    """A 16x16 PNG of one colour."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def page_url(minilm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = oe.connect(tmp_path_factory.mktemp("page") / "db")
    animals = db.collections.create(
        "Animals",
        {"name": "text", "about": "text", "photo": "image"},
        oe.Vectorizer(minilm, properties=["name", "about"]),
    )
    animals.data.insert_many(
        [
            {"name": "Cat", "about": "A small cat that purrs and naps.", "photo": png((200, 80, 40))},
            {"name": "Dog", "about": "A loyal dog that barks and fetches.", "photo": png((60, 120, 200))},
            {"name": "Rocket", "about": "A rocket engine burns fuel.", "photo": png((30, 30, 30))},
        ]
    )
    with serve(create_app(model=minilm, db=db)) as url:
        yield url
    db.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def search(page: Any, query: str, mode: str) -> list[str]:
    page.fill("#query", query)
    page.check(f"#mode-{mode}")
    page.click("#search")
    page.wait_for_function("document.querySelector('#status').textContent.includes('results')")
    return [str(title) for title in page.locator(".result .title").all_inner_texts()]


def test_search_page_modes_scores_and_thumbnails(page_url: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(page_url)
    page.wait_for_selector("#collection option", state="attached")
    assert page.locator("#collection option").all_inner_texts() == ["Animals (3)"]
    assert page.locator("#rerank-box").is_hidden()  # this server has no reranker
    assert search(page, "kitten", "near_text")[0] == "Cat"
    assert search(page, "rocket fuel", "bm25")[0] == "Rocket"
    page.check("#mode-hybrid")
    page.fill("#alpha", "0.3")
    titles = search(page, "loyal barking", "hybrid")
    assert titles[0] == "Dog"
    scores = [float(s) for s in page.locator(".result .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0
    thumbnails = page.locator(".result img")
    assert thumbnails.count() == 3
    assert page.evaluate("[...document.querySelectorAll('.result img')].every(i => i.naturalWidth === 16)")
    assert errors == []

    shot = page.screenshot(full_page=True)
    assert shot.startswith(b"\x89PNG")
    width, height, colours = png_stats(shot)
    assert width == 1000
    assert height >= 700
    assert len(colours) > 50  # text, thumbnails and styling, not a blank page
    assert {(200, 80, 40), (60, 120, 200), (30, 30, 30)} <= colours  # the three thumbnails are drawn
    (tmp_path / "page.png").write_bytes(shot)


def test_page_shows_server_errors(page_url: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(page_url)
    page.wait_for_selector("#collection option", state="attached")
    page.fill("#limit", "20000")  # over the query limit: the server says why
    page.fill("#query", "x")
    page.click("#search")
    page.wait_for_function("document.querySelector('#status').className === 'error'")
    assert "limit" in page.locator("#status").inner_text()
    assert httpx.get(page_url).headers["content-type"].startswith("text/html")


def test_page_reranks_when_the_server_has_a_reranker(minilm: Any, browser: Any, tmp_path: Path) -> None:
    reranker = oe.CrossEncoder(mf.build_cross_encoder(tmp_path / "cross"), device="cpu")
    db = oe.connect(tmp_path / "db")
    notes = db.collections.create("Notes", {"text": "text"}, oe.Vectorizer(minilm, ["text"]))
    texts = ["Cats purr.", "Dogs bark at night.", "Rockets reach orbit.", "Bread rises.", "Rain falls."]
    notes.data.insert_many([{"text": t} for t in texts], show_progress=False)
    expected = notes.query.near_text("animals", limit=5, rerank=oe.Rerank(reranker, "text"))
    try:
        with serve(create_app(model=minilm, db=db, reranker=reranker)) as url:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#collection option", state="attached")
            page.wait_for_selector("#rerank-box", state="visible")
            page.check("#rerank")
            page.fill("#limit", "5")
            assert search(page, "animals", "near_text") == [o.properties["text"] for o in expected]
            assert "reranked" in page.locator("#status").inner_text()
            shown = [float(s) for s in page.locator(".result .score").all_inner_texts()]
            assert shown == pytest.approx([o.rerank_score for o in expected], abs=1e-4)
    finally:
        db.close()


def png_stats(data: bytes) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and number of distinct colours of a PNG (decoded with Pillow)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24) or []
    return image.width, image.height, {colour for _, colour in colours}


def test_page_collections_show_thumbnail_file_and_page(minilm: Any, browser: Any, tmp_path: Path) -> None:
    from helpers import pdfs
    from helpers.cranfield import cranfield

    docs, _ = cranfield(6)
    texts = [d["body"] for d in docs]
    pdfs.write_pdf(tmp_path / "wings.pdf", texts[:3])
    pdfs.write_pdf(tmp_path / "flows.pdf", texts[3:])
    db = oe.connect(tmp_path / "db")
    reports = db.collections.create(
        "Reports",
        oe.PAGE_PROPERTIES,
        {"text": oe.Vectorizer(minilm, ["text"]), "both": oe.Vectorizer(minilm, ["file", "text"])},
    )
    assert not reports.data.insert_pdf(tmp_path, dpi=40).unread
    try:
        with serve(create_app(model=minilm, db=db)) as url:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.wait_for_selector("#collection option", state="attached")
            assert page.locator("#vector-box").is_visible()  # two named vectors: choose one
            page.select_option("#vector", "text")
            for mode in ("near_text", "hybrid"):
                titles = search(page, "wing in a propeller slipstream", mode)
                assert titles[0] == "wings.pdf, page 1", mode
            assert page.locator(".result.page img").count() == 6
            assert (
                page.locator(".result .snippet").first.inner_text().startswith("experimental investigation")
            )
            assert page.locator("#viewer").is_hidden()
            page.locator(".result.page img").first.click()  # opens the page
            assert page.locator("#viewer").is_visible()
            assert page.locator("#viewer-caption").inner_text() == "wings.pdf, page 1"
            natural = page.evaluate("document.querySelector('#viewer-image').naturalWidth")
            assert natural == round(210 / 25.4 * 40)  # the whole rendered page
            page.keyboard.press("Escape")
            assert page.locator("#viewer").is_hidden()
            assert errors == []
    finally:
        db.close()
