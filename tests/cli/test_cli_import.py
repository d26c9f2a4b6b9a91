"""``omniembed import`` on real files: BEIR JSON lines with nested metadata, CSV, Parquet, stdin, folders."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import omniembed as oe
from omniembed.cli import INPUT_ERROR, OK, PARTIAL, main
from omniembed.store import Filter
from omniembed.store.ids import object_uuid

CORPUS = Path(__file__).parents[2] / "data" / "cranfield" / "beir" / "corpus.jsonl"


@pytest.fixture
def model(tiny_model: Any) -> str:
    return str(tiny_model("bert"))


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_beir_corpus_imports_as_it_is_twice_without_duplicates(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "db")
    for _ in range(2):
        assert main(["-q", "import", db, "Cran", str(CORPUS), "--model", model]) == OK
        assert "imported 1400 of 1400 objects" in capsys.readouterr().out
    first = json.loads(CORPUS.read_text().splitlines()[0])
    author = first["metadata"]["author"]
    with oe.connect(db) as opened:
        cran = opened.collections.get("Cran")
        assert len(cran) == 1400
        assert cran.config.schema.properties == {
            "title": "text",
            "text": "text",
            "metadata": "object",
            "id": "text",
        }
        stored = cran.data.get_by_id(object_uuid("Cran", first["_id"]))
        assert stored is not None
        assert stored.properties == {k: v for k, v in first.items() if k != "_id"} | {"id": first["_id"]}
        found = cran.query.fetch_objects(filters=Filter.by_property("metadata.author") == author, limit=50)
        assert first["_id"] in [obj.properties["id"] for obj in found]
        assert all(obj.properties["metadata"]["author"] == author for obj in found)


def test_a_refusal_most_objects_share_is_said_once_with_its_fix(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"title": f"t{i}", "metadata": {"author": "a"}} for i in range(30)]
    rows.append({"title": "lone \ud800 surrogate", "metadata": "plain"})
    data = write_jsonl(tmp_path / "docs.jsonl", rows)
    schema = tmp_path / "schema.json"
    schema.write_text('{"metadata": "text"}')
    db = str(tmp_path / "db")
    args = ["-q", "import", db, "Docs", str(data), "--model", model, "--schema", str(schema)]
    assert main(args) == PARTIAL
    err = capsys.readouterr().err
    fix = "property 'metadata' holds objects; declare it as object or drop it with --exclude metadata"
    assert err.count(fix) == 1
    assert "30 objects refused" in err
    said = [line for line in err.splitlines() if "refused" in line or "docs.jsonl" in line]
    assert len(said) == 2  # the shared reason once, then the one other refusal with its line
    assert "docs.jsonl:31: property 'title' holds a lone surrogate" in err
    assert (
        main(["-q", "import", db, "Fixed", str(data), "--model", model, "--exclude", "metadata"]) == PARTIAL
    )
    assert main(["-q", "import", db, "Titles", str(data), "--model", model, "--include", "title"]) == PARTIAL
    with oe.connect(db) as opened:
        assert opened.collections.get("Fixed").config.schema.properties == {"title": "text"}
        assert opened.collections.get("Titles").config.schema.properties == {"title": "text"}
        assert len(opened.collections.get("Titles")) == 30


def test_bad_lines_are_reported_by_number_and_the_rest_import(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"title": "one"}\nnot json\n\n[1, 2]\n{"title": "two"}\n')
    assert main(["-q", "import", str(tmp_path / "db"), "Docs", str(data), "--model", model]) == PARTIAL
    out, err = capsys.readouterr()
    assert "imported 2 of 2" in out
    assert "bad.jsonl:2: not JSON" in err
    assert "bad.jsonl:4: a JSON list, not an object" in err


def test_an_empty_file_imports_nothing_and_succeeds(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["-q", "import", str(tmp_path / "db"), "Docs", str(empty), "--model", model]) == OK
    assert "nothing to import" in capsys.readouterr().out
    with oe.connect(tmp_path / "db") as opened:
        assert not opened.collections.exists("Docs")


def test_conflicting_values_stop_with_both_places_named(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "mixed.jsonl", [{"year": 1999}, {"year": 2.5}, {"year": "late"}])
    assert main(["-q", "import", str(tmp_path / "db"), "Docs", str(data), "--model", model]) == INPUT_ERROR
    err = capsys.readouterr().err
    assert "'year' holds number (mixed.jsonl:2) and text (mixed.jsonl:3)" in err
    assert "--schema" in err
    underscored = write_jsonl(tmp_path / "private.jsonl", [{"title": "x", "_rev": 2}])
    assert main(["-q", "import", str(tmp_path / "db"), "Docs", str(underscored), "--model", model]) == (
        INPUT_ERROR
    )
    assert "--exclude _rev" in capsys.readouterr().err


def test_csv_columns_are_typed(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "items.csv"
    data.write_text('title,year,score,ok,note\nWings,1999,0.5,true,\n"Two\nlines",2005,2,False,x\n')
    assert main(["-q", "import", str(tmp_path / "db"), "Items", str(data), "--model", model]) == OK
    with oe.connect(tmp_path / "db") as opened:
        items = opened.collections.get("Items")
        assert items.config.schema.properties == {
            "title": "text",
            "year": "int",
            "score": "number",
            "ok": "bool",
            "note": "text",
        }
        rows = sorted((o.properties for o in items.query.fetch_objects()), key=lambda p: p["year"])
        assert rows == [
            {"title": "Wings", "year": 1999, "score": 0.5, "ok": True},
            {"title": "Two\nlines", "year": 2005, "score": 2.0, "ok": False, "note": "x"},
        ]
    more = tmp_path / "more.csv"
    more.write_text("title,year\nOk,2001\nBad,soon\n")
    assert main(["-q", "import", str(tmp_path / "db"), "Items", str(more)]) == PARTIAL
    assert "more.csv:3: column 'year' is int, got 'soon'" in capsys.readouterr().err


def test_parquet_with_nested_columns_imports(model: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "_id": ["a", "b"],
            "title": ["Wings", "Rockets"],
            "meta": [{"author": "ann", "year": 1999}, {"author": "bob", "year": 2005}],
            "tags": [["x"], []],
        }
    )
    pq.write_table(table, tmp_path / "docs.parquet")
    db = str(tmp_path / "db")
    assert main(["-q", "import", db, "Docs", str(tmp_path / "docs.parquet"), "--model", model]) == OK
    with oe.connect(db) as opened:
        docs = opened.collections.get("Docs")
        assert docs.config.schema.properties["meta"] == "object"
        found = docs.query.fetch_objects(filters=Filter.by_property("meta.year") > 2000)
        assert [o.properties for o in found] == [
            {"id": "b", "title": "Rockets", "meta": {"author": "bob", "year": 2005}, "tags": []}
        ]


def test_standard_input_is_read_with_a_format(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"title\nfrom stdin\n")))
    db = str(tmp_path / "db")
    assert main(["-q", "import", db, "Docs", "-", "--format", "csv", "--model", model]) == OK
    assert "imported 1 of 1" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"title": "json too"}\n')))
    assert main(["-q", "import", db, "Docs", "-"]) == OK
    with oe.connect(db) as opened:
        assert len(opened.collections.get("Docs")) == 2


def test_a_folder_imports_each_file_by_its_kind(
    model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"title": "one", "year": 1}])
    (folder / "b.csv").write_text("title,year\ntwo,2.5\n")
    (folder / "notes.txt").write_text("ignored: not a kind omniembed imports")
    db = str(tmp_path / "db")
    assert main(["-q", "import", db, "Docs", str(folder), "--model", model]) == OK
    with oe.connect(db) as opened:
        docs = opened.collections.get("Docs")
        assert docs.config.schema.properties == {"title": "text", "year": "number"}
        assert len(docs) == 2
    write_jsonl(folder / "c.jsonl", [{"title": "three", "year": "late"}])
    assert main(["-q", "import", db, "Other", str(folder), "--model", model]) == INPUT_ERROR
    assert "(c.jsonl:1)" in capsys.readouterr().err
    (folder / "c.jsonl").unlink()
    (folder / "paper.pdf").write_bytes(b"%PDF-1.4")  # a broken PDF: named, and the rest imported
    assert main(["-q", "import", db, "Other", str(folder), "--model", model]) == PARTIAL
    assert "skipped paper.pdf: the PDF cannot be read" in capsys.readouterr().err
    with oe.connect(db) as opened:
        assert len(opened.collections.get("Other")) == 2


def test_the_id_field_can_be_named(model: str, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "docs.jsonl", [{"key": 7, "title": "seven"}])
    db = str(tmp_path / "db")
    for _ in range(2):
        assert main(["-q", "import", db, "Docs", str(data), "--model", model, "--id-field", "key"]) == OK
    with oe.connect(db) as opened:
        docs = opened.collections.get("Docs")
        assert len(docs) == 1
        stored = docs.data.get_by_id(object_uuid("Docs", 7))
        assert stored is not None
        assert stored.properties == {"id": "7", "title": "seven"}


def test_a_folder_of_images_and_records_imports_both(
    tiny_clip: Any, cifar: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    folder = tmp_path / "mixed"
    folder.mkdir()
    for path, _ in cifar[:2]:
        shutil.copy(path, folder / Path(path).name)
    write_jsonl(folder / "notes.jsonl", [{"file": "notes", "caption": "a cat on a mat"}])
    model = str(tiny_clip("plain"))
    db = str(tmp_path / "db")
    assert main(["-q", "import", db, "Media", str(folder), "--model", model]) == OK
    with oe.connect(db) as opened:
        media = opened.collections.get("Media")
        assert media.config.schema.properties == {"file": "text", "image": "image", "caption": "text"}
        assert len(media) == 3
    write_jsonl(folder / "notes.jsonl", [{"file": 5}])
    assert main(["-q", "import", db, "Other", str(folder), "--model", model]) == INPUT_ERROR
    assert "'file' holds text" in capsys.readouterr().err


def test_vectorize_names_text_inside_an_object(model: str, tmp_path: Path) -> None:
    rows = [{"_id": "1", "title": "Wings", "meta": {"author": "ann"}}]
    data = write_jsonl(tmp_path / "docs.jsonl", rows)
    db = str(tmp_path / "db")
    args = ["-q", "import", db, "Docs", str(data), "--model", model]
    assert main([*args, "--vectorize", "title", "--vectorize", "meta.author"]) == OK
    with oe.connect(db) as opened:
        docs = opened.collections.get("Docs")
        vectorizer = docs.vectorizers["default"]
        assert vectorizer.properties == ["title", "meta.author"]
        assert vectorizer.input_for(rows[0], docs.config.schema) == "Wings\nann"
        assert docs.query.near_text("ann", limit=1)[0].properties["title"] == "Wings"


class LineSource(io.RawIOBase):
    """Standard input that makes JSON lines as they are read, counting how many it has made."""

    def __init__(self, total: int) -> None:
        self.made, self.total = 0, total

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.made == self.total:
            return 0
        line = json.dumps({"title": f"t{self.made}"}).encode() + b"\n"
        buffer[: len(line)] = line
        self.made += 1
        return len(line)


def test_input_streams_into_insert_many_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from omniembed.store.data import DataAPI
    from omniembed.store.infer import SAMPLE_SIZE

    db = str(tmp_path / "db")
    with oe.connect(db) as opened:
        opened.collections.create("Docs", {"title": "text"})
    source = LineSource(5 * SAMPLE_SIZE)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(source)))
    read_ahead: list[int] = []
    insert_batch = DataAPI._insert_batch

    def watched(self: DataAPI, batch: Any, offset: int, *args: Any) -> None:
        read_ahead.append(source.made - offset - len(batch))  # lines read but not yet handed over
        insert_batch(self, batch, offset, *args)

    monkeypatch.setattr(DataAPI, "_insert_batch", watched)
    assert main(["-q", "import", db, "Docs", "-", "--batch-size", "100"]) == OK
    assert source.made == 5 * SAMPLE_SIZE
    assert len(read_ahead) == 50
    assert max(read_ahead) <= SAMPLE_SIZE + 300  # the inference sample and a read buffer, not the file
    assert read_ahead[-1] == 0
    with oe.connect(db) as opened:
        assert len(opened.collections.get("Docs")) == 5 * SAMPLE_SIZE
