"""Property types: what each accepts, how it is stored and read back."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from omniembed.inputs.images import load_image
from omniembed.store.schema import Schema, check_name, clean_value
from omniembed.store.vectorizer import Vectorizer


def test_dates_are_stored_in_utc_and_read_back_as_datetimes() -> None:
    schema = Schema({"when": "date", "days": "date[]"})
    paris = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    stored = schema.clean({"when": paris, "days": [date(2020, 1, 2), "2021-03-04T05:06:07Z"]})
    assert stored["when"] == "2024-05-01T10:00:00.000000Z"
    restored = schema.restore(stored)
    assert restored["when"] == paris
    assert restored["days"][0] == datetime(2020, 1, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("int", True, "is int, got bool"),
        ("int", 1.5, "is int, got float"),
        ("number", float("nan"), "is number"),
        ("number", 10**400, "is number, got int"),
        ("int", 2**63, "outside the 64-bit range"),
        ("int", -(2**63) - 1, "outside the 64-bit range"),
        ("int[]", [1, 2**64], "outside the 64-bit range"),
        ("bool", 1, "is bool, got int"),
        ("text", b"bytes", "is text, got bytes"),
        ("text[]", "not a list", "give a list"),
        ("date", "31/12/2020", "not ISO 8601"),
        ("image", "not base64 !", "neither base64 nor a data URL"),
    ],
)
def test_wrong_values_name_the_property_and_type(kind: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clean_value("field", kind, value)


def test_the_64_bit_ends_are_kept() -> None:
    assert clean_value("n", "int[]", [-(2**63), 2**63 - 1]) == [-(2**63), 2**63 - 1]


@pytest.mark.parametrize("name", ["title\n", "\ntitle", "ti tle", "1title", "x" * 129, ""])
def test_names_are_matched_whole(name: str) -> None:
    with pytest.raises(ValueError, match="is not valid"):
        check_name(name, "property")


def test_underscore_property_names_are_refused_at_create_but_still_open(tmp_path: Path) -> None:
    import omniembed as oe
    from omniembed.store.config import CollectionConfig

    with oe.connect(tmp_path / "db") as db:
        with pytest.raises(ValueError, match=r"'_id' starts with '_', which is reserved.*rename it"):
            db.collections.create("Things", {"_id": "text"})
        assert not db.collections.exists("Things")
        db.backend.create(CollectionConfig("Old", Schema({"_note": "text"})))  # made by an older omniembed
    with oe.connect(tmp_path / "db") as db:
        old = db.collections.get("Old")
        old.data.insert({"_note": "still readable"})
        assert old.query.fetch_objects()[0].properties == {"_note": "still readable"}


def test_images_from_pil_bytes_and_paths_round_trip(tmp_path: Path) -> None:
    from PIL import Image

    image = Image.new("RGB", (4, 3), (200, 10, 10))
    path = tmp_path / "red.png"
    image.save(path)
    stored = [clean_value("cover", "image", value) for value in (image, path.read_bytes(), path, str(path))]
    assert stored[1] == stored[2] == stored[3] == base64.b64encode(path.read_bytes()).decode()
    for value in stored:
        assert load_image(base64.b64decode(value), index=0).getpixel((0, 0)) == (200, 10, 10)


def test_vectorizer_input_joins_properties_in_order() -> None:
    schema = Schema({"title": "text", "body": "text", "tags": "text[]", "year": "int"})
    vectorizer = Vectorizer("unused", ["tags", "title", "body"], include_property_names=True)
    vectorizer.bind(schema)
    text = vectorizer.input_for({"title": "T", "body": "", "tags": ["a", "b"], "year": 1}, schema)
    assert text == "tags: a, b\ntitle: T"
    assert vectorizer.input_for({"year": 1}, schema) is None
    with pytest.raises(ValueError, match="text or image properties"):
        Vectorizer("unused", ["year"]).bind(schema)
    everything = Vectorizer("unused")
    everything.bind(schema)
    assert everything.properties == ["title", "body", "tags"]
