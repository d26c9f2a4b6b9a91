"""Database folders written by earlier releases open, migrate and answer as before."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

import omniembed as oe
from omniembed.store.engines.embedded.engine import FORMAT_VERSION

FORMAT1 = Path(__file__).parent / "data" / "format1"


def uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def test_a_format_1_folder_migrates_and_keeps_every_object(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    shutil.copytree(FORMAT1, folder)
    with oe.connect(folder) as db:
        papers = db.collections.get("Papers")
        assert len(papers) == 59
        assert papers.data.get_by_id(uuid(3)) is None
        assert papers.data.get_by_id(uuid(5)).properties["year"] == 2001  # type: ignore[union-attr]
        ten = papers.data.get_by_id(uuid(10), include_vector=True)
        assert ten is not None
        assert papers.query.near_vector(ten.vectors["own"], limit=1).uuids == [uuid(10)]
        assert papers.query.bm25("shock wave", limit=3).uuids[0] == uuid(17)
        in_1960 = papers.query.fetch_objects(filters=oe.Filter.by_property("year") == 1960)
        assert sorted(in_1960.uuids) == [uuid(10), uuid(30), uuid(50)]
        papers.data.delete_by_id(uuid(10))
        papers.data.insert({"title": "shock", "year": 1999}, vectors={"own": ten.vectors["own"]})
    with sqlite3.connect(folder / "omniembed.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (
            str(FORMAT_VERSION),
        )
    with oe.connect(folder) as db:  # and reopens in the new format with the changes made after migrating
        papers = db.collections.get("Papers")
        assert len(papers) == 59
        assert papers.data.get_by_id(uuid(10)) is None
        assert papers.query.bm25("shock", limit=100).objects


def test_a_newer_format_is_refused_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    oe.connect(folder).close()
    with sqlite3.connect(folder / "omniembed.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    with pytest.raises(ValueError, match=r"format 99 is newer.*upgrade omniembed"):
        oe.connect(folder)
