"""PDF pages in a collection: BM25 over the text layer, page images by a late-interaction model, bad files."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import omniembed as oe
from omniembed.errors import InvalidDocumentError
from omniembed.inputs.pdf import PdfLimits

from helpers import images as imf
from helpers import pdfs
from helpers.cranfield import cranfield, judged, ndcg_at_10

PER_FILE = 100


@pytest.fixture(scope="module")
def cranfield_pdfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    """All Cranfield documents, one per page, 100 pages a file (text only: no figures, fast)."""
    docs, _, _ = judged()
    folder = tmp_path_factory.mktemp("cranfield-pdfs")
    for start in range(0, len(docs), PER_FILE):
        part = docs[start : start + PER_FILE]
        pdfs.write_pdf(folder / f"cran{start // PER_FILE:02d}.pdf", [d["body"] for d in part], figures=False)
    return folder, docs


@pytest.mark.slow  # writes 1,400 pages
def test_bm25_over_pdf_pages_matches_bm25_over_the_same_texts(
    cranfield_pdfs: tuple[Path, list[dict[str, str]]],
) -> None:
    folder, docs = cranfield_pdfs
    _, queries, qrels = judged()
    with oe.connect() as db:
        pages = db.collections.create("Pages", {k: v for k, v in oe.PAGE_PROPERTIES.items() if k != "image"})
        result = pages.data.insert_pdf(folder, batch_size=200)
        assert not result.errors
        assert not result.unread
        assert len(pages) == len(docs)
        plain = db.collections.create("Plain", {"text": "text", "n": "int"})
        plain.data.insert_many([{"text": d["body"], "n": i} for i, d in enumerate(docs)])
        by_page, by_text = [], []
        for query_id, query in queries.items():
            found = pages.query.bm25(query, query_properties=["text"], limit=10)
            ids = [
                docs[(int(o.properties["file"][4:6]) * PER_FILE) + o.properties["page"] - 1]["_id"]
                for o in found
            ]
            by_page.append(ndcg_at_10(ids, qrels[query_id]))
            texts = plain.query.bm25(query, limit=10)
            by_text.append(ndcg_at_10([docs[o.properties["n"]]["_id"] for o in texts], qrels[query_id]))
    assert np.mean(by_text) > 0.3  # BM25 on Cranfield, a sanity floor
    assert abs(np.mean(by_page) - np.mean(by_text)) < 0.01


def test_pages_keep_file_page_order_and_text(tmp_path: Path) -> None:
    docs, _ = cranfield(7)
    texts = [d["body"] for d in docs]
    pdfs.write_pdf(tmp_path / "b.pdf", texts[4:])
    pdfs.write_pdf(tmp_path / "a.pdf", texts[:4])
    objects = list(oe.pdf_pages(tmp_path, dpi=36))
    assert [(o["file"], o["page"]) for o in objects] == [("a.pdf", p) for p in range(1, 5)] + [
        ("b.pdf", p) for p in range(1, 4)
    ]
    assert [o["text"].replace("-\n", "- ").split() for o in objects] == [t.split() for t in texts]
    assert all(o["image"].startswith(b"\x89PNG") for o in objects)
    one = list(oe.pdf_pages(("named.pdf", pdfs.pdf_bytes(texts[:1])), images=False))
    assert one == [{"file": "named.pdf", "page": 1, "text": one[0]["text"]}]


def test_a_tuple_of_paths_is_several_documents_and_a_name_with_bytes_is_one(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    first.write_bytes(pdfs.pdf_bytes(["alpha"], figures=False))
    second.write_bytes(pdfs.pdf_bytes(["beta", "gamma"], figures=False))
    pages = list(oe.pdf_pages((str(first), str(second)), images=False))
    assert [(p["file"], p["page"]) for p in pages] == [("a.pdf", 1), ("b.pdf", 1), ("b.pdf", 2)]
    named = list(oe.pdf_pages(("sent.pdf", second.read_bytes()), images=False))
    assert [(p["file"], p["text"]) for p in named] == [("sent.pdf", "beta"), ("sent.pdf", "gamma")]


def test_a_bad_document_is_named_and_the_rest_imported(tmp_path: Path) -> None:
    docs, _ = cranfield(4)
    texts = [d["body"] for d in docs]
    pdfs.write_pdf(tmp_path / "good.pdf", texts[:3])
    (tmp_path / "locked.pdf").write_bytes(pdfs.pdf_bytes(texts[:1], password="pw"))
    (tmp_path / "broken.pdf").write_bytes(pdfs.corrupt(pdfs.pdf_bytes(texts[:2])))
    (tmp_path / "notes.pdf").write_text("just some text with a .pdf name")
    (tmp_path / "zero.pdf").write_bytes(b"")
    mixed = pdfs.pdf_bytes([texts[3], "poster"], sizes=[(210.0, 297.0), (2000.0, 2000.0)])
    (tmp_path / "mixed.pdf").write_bytes(mixed)
    with oe.connect() as db:
        pages = db.collections.create("Pages", oe.PAGE_PROPERTIES)
        limits = PdfLimits(max_page_pixels=200 * 300)  # at 20 dpi an A4 page is 165x234 pixels
        result = pages.data.insert_pdf(tmp_path, max_side=None, dpi=20, limits=limits)
        unread = "\n".join(result.unread)
        assert len(result.unread) == 5, unread
        for start in (
            "locked.pdf: the PDF is encrypted",
            "broken.pdf: the PDF cannot be read",
            "notes.pdf: not a PDF",
            "zero.pdf: the file is empty",
            "mixed.pdf, page 2: renders to 1575x1575 = 2480625 pixels, over the limit of 60000",
        ):
            assert any(line.startswith(start) for line in result.unread), start
        assert not result.errors
        assert sorted(
            (o.properties["file"], o.properties["page"]) for o in pages.query.fetch_objects(limit=10)
        ) == [
            ("good.pdf", 1),
            ("good.pdf", 2),
            ("good.pdf", 3),
            ("mixed.pdf", 1),
        ]
        found = pages.query.bm25("slipstream", limit=1)[0].properties
        assert (found["file"], found["page"]) == ("good.pdf", 1)
        with pytest.raises(InvalidDocumentError, match=r"locked\.pdf: the PDF is encrypted"):
            list(oe.pdf_pages(tmp_path / "locked.pdf"))
        with pytest.raises(InvalidDocumentError, match=r"mixed\.pdf, page 2: renders to") as raised:
            list(oe.pdf_pages(tmp_path / "mixed.pdf", max_side=None, dpi=20, limits=limits))
        assert raised.value.__context__ is None  # raised once, not again while handling itself


def test_a_collection_without_page_properties_is_refused(tmp_path: Path) -> None:
    with oe.connect() as db:
        docs = db.collections.create("Docs", {"title": "text"})
        with pytest.raises(ValueError, match=r"cannot hold PDF pages.*oe\.PAGE_PROPERTIES"):
            docs.data.insert_pdf(tmp_path)


@pytest.fixture(scope="module")
def colmodernvbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imf.build_colmodernvbert(tmp_path_factory.mktemp("colmodernvbert"))


def maxsim(query: np.ndarray, document: np.ndarray) -> float:
    return float((query.astype(np.float64) @ document.astype(np.float64).T).max(axis=1).sum())


def test_page_images_by_a_late_interaction_model_with_bm25_and_a_text_model(
    tmp_path: Path, colmodernvbert_dir: Path, minilm_dir: Path
) -> None:
    docs, _ = cranfield(12)
    texts = [d["body"] for d in docs]
    pdfs.write_pdf(tmp_path / "wings.pdf", texts[:6])
    pdfs.write_pdf(tmp_path / "shocks.pdf", texts[6:])
    model = oe.MultiVectorEncoder(colmodernvbert_dir, device="cpu")
    query = "the lift of a wing in a propeller slipstream"
    with oe.connect(tmp_path / "db") as db:
        pages = db.collections.create(
            "Pages",
            oe.PAGE_PROPERTIES,
            {
                "image": oe.Vectorizer(model, ["image"]),
                "text": oe.Vectorizer(str(minilm_dir), ["text"]),
            },
        )
        assert pages.config.vectors["image"].metric == "maxsim"
        assert pages.config.vectors["image"].storage == "float16"
        result = pages.data.insert_pdf(tmp_path, dpi=72, batch_size=5)
        assert not result.errors
        assert not result.unread
        assert len(result.uuids) == 12
        stored = [pages.data.get_by_id(result.uuids[i], include_vector=True) for i in range(12)]
        assert [(o.properties["file"], o.properties["page"]) for o in stored if o is not None] == [
            ("shocks.pdf", p) for p in range(1, 7)
        ] + [("wings.pdf", p) for p in range(1, 7)]
        pictures = [{"image": base64.b64decode(o.properties["image"])} for o in stored if o is not None]
        documents = model.encode_document(pictures)
        for obj, document in zip(stored, documents, strict=True):  # kept as float16
            assert obj is not None
            np.testing.assert_allclose(obj.vectors["image"].reshape(document.shape), document, atol=2e-3)
        exact = {uuid: maxsim(model.encode_query(query), documents[i]) for i, uuid in result.uuids.items()}
        # The tiny random model scores all pages nearly alike, so check each score, not the order.
        found = pages.query.near_text(query, target_vector="image", limit=12)
        assert len(found) == 12
        for obj in found:
            assert obj.score == pytest.approx(exact[obj.uuid], rel=1e-4)
        by_text = pages.query.near_text(query, target_vector="text", limit=1)[0].properties
        assert (by_text["file"], by_text["page"]) == ("wings.pdf", 1)
        hybrid = pages.query.hybrid(
            query, target_vector="image", query_properties=["text"], alpha=0.25, limit=12, explain=True
        )
        assert ("wings.pdf", 1) in [(o.properties["file"], o.properties["page"]) for o in hybrid[:3]]
        assert all(o.explain is not None and o.explain["vector_rank"] is not None for o in hybrid)
    with oe.connect(tmp_path / "db") as db:  # reopened: the models load by their stored names
        pages = db.collections.get("Pages")
        again = pages.query.near_text(query, target_vector="image", limit=12)
        assert [o.uuid for o in again] == [o.uuid for o in found]
        top = pages.query.bm25("slipstream", limit=1)[0].properties
        assert (top["file"], top["page"]) == ("wings.pdf", 1)
        # The embedding cache keeps the page matrices as float16 too, and a second import reuses them.
        with sqlite3.connect(tmp_path / "db" / "omniembed.sqlite") as conn:
            rows = conn.execute("SELECT length(data) FROM embedding_cache WHERE key LIKE '%:f16'").fetchall()
        assert sorted(size for (size,) in rows) == sorted(2 * document.size for document in documents)
        copy = db.collections.create("Copy", oe.PAGE_PROPERTIES, {"image": oe.Vectorizer(model, ["image"])})
        assert copy.data.insert_pdf(tmp_path / "wings.pdf", dpi=72).embedded == 0
        # A float32 collection's matrices are cached as float32: from the cache, they are stored exactly.
        exact_vectors = []
        for name in ("Exact", "ExactAgain"):
            kept = db.collections.create(
                name, oe.PAGE_PROPERTIES, {"image": oe.Vectorizer(model, ["image"])}, matrix_storage="float32"
            )
            done = kept.data.insert_pdf(tmp_path / "wings.pdf", dpi=72)
            assert done.embedded == (6 if name == "Exact" else 0)
            objects = [kept.data.get_by_id(uuid, include_vector=True) for uuid in done.uuids.values()]
            exact_vectors.append([o.vectors["image"] for o in objects if o is not None])
        for first, second in zip(*exact_vectors, strict=True):
            assert first.dtype == np.float32
            np.testing.assert_array_equal(first, second)


@pytest.fixture(scope="module")
def colpali_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imf.build_colpali(tmp_path_factory.mktemp("colpali"))


def test_page_images_by_colpali(tmp_path: Path, colpali_dir: Path) -> None:
    docs, _ = cranfield(4)
    pdfs.write_pdf(tmp_path / "a.pdf", [d["body"] for d in docs])
    model = oe.MultiVectorEncoder(colpali_dir, device="cpu")
    query = "supersonic flow"
    with oe.connect() as db:
        pages = db.collections.create("Pages", oe.PAGE_PROPERTIES, {"image": oe.Vectorizer(model, ["image"])})
        result = pages.data.insert_pdf(tmp_path / "a.pdf", dpi=36)
        assert len(result.uuids) == 4
        stored = {uuid: pages.data.get_by_id(uuid) for uuid in result.uuids.values()}
        found = pages.query.hybrid(query, alpha=0.5, limit=4)
        assert sorted(o.properties["page"] for o in found) == [1, 2, 3, 4]
        for obj in pages.query.near_text(query, limit=4):
            original = stored[obj.uuid]
            assert original is not None
            document = model.encode_document([{"image": base64.b64decode(original.properties["image"])}])[0]
            assert obj.score == pytest.approx(maxsim(model.encode_query(query), document), rel=1e-4)


def test_page_images_by_a_single_vector_clip_model(tmp_path: Path, tiny_clip: Any) -> None:
    docs, _ = cranfield(3)
    pdfs.write_pdf(tmp_path / "a.pdf", [d["body"] for d in docs])
    model = oe.SentenceTransformer(tiny_clip("plain"))
    with oe.connect() as db:
        pages = db.collections.create("Pages", oe.PAGE_PROPERTIES, {"image": oe.Vectorizer(model, ["image"])})
        assert pages.config.vectors["image"].metric == "cosine"
        result = pages.data.insert_pdf(tmp_path / "a.pdf", dpi=36)
        assert len(result.uuids) == 3
        found = pages.query.near_text("a chart", limit=3)
        query = model.encode_query("a chart", normalize_embeddings=True)
        for obj in found:
            image = base64.b64decode(obj.properties["image"])
            page = model.encode_document([{"image": image}], normalize_embeddings=True)[0]
            assert obj.score == pytest.approx(float(query @ page), abs=1e-5)
            assert obj.properties["file"] == "a.pdf"
