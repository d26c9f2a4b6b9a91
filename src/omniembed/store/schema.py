"""Property types of a collection and the checks that turn user objects into stored ones."""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Literal, get_args

from omniembed.errors import InvalidInputError
from omniembed.inputs import data_urls
from omniembed.inputs import policy as input_policy
from omniembed.inputs.modality import check_text
from omniembed.store.nested import clean_object, clean_objects

PropertyType = Literal[
    "text",
    "text[]",
    "int",
    "int[]",
    "number",
    "number[]",
    "bool",
    "bool[]",
    "date",
    "date[]",
    "uuid",
    "image",
    "audio",
    "video",
    "object",
    "object[]",
]
PROPERTY_TYPES: tuple[str, ...] = get_args(PropertyType)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")  # fullmatch: "$" would let a final newline in
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what SQLite stores as an integer
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class BM25Config:
    """BM25 parameters and text analysis of a collection's keyword index.

    ``k1`` and ``b`` are Weaviate's defaults. ``stemmer`` is a Snowball language (``None``: no
    stemming) and ``stopwords`` a shipped language list, your own list of words, or ``None``. The
    defaults were chosen on Cranfield (see docs/store.md); collections created before these options
    existed keep reading as no stemming and no stop words.
    """

    k1: float = 1.2
    b: float = 0.75
    stemmer: str | None = "english"
    stopwords: str | tuple[str, ...] | None = "english"

    def __post_init__(self) -> None:
        if not (self.k1 >= 0 and 0 <= self.b <= 1):
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")
        from omniembed.store.engines.keyword.analysis import check_stemmer, check_stopwords

        check_stemmer(self.stemmer)
        object.__setattr__(self, "stopwords", check_stopwords(self.stopwords))

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        stopwords = list(self.stopwords) if isinstance(self.stopwords, tuple) else self.stopwords
        return {"k1": self.k1, "b": self.b, "stemmer": self.stemmer, "stopwords": stopwords}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BM25Config:
        """Read what :meth:`to_json` wrote; a config from before stemming reads as none of it."""
        return cls(**{"stemmer": None, "stopwords": None, **data})


@dataclass(frozen=True)
class Property:
    """A property type with options, where a plain type string will not do.

    ``tokenization`` (text properties) chooses how BM25 splits the text; ``index_filterable=False``
    leaves out the index that makes filters on a scalar property fast (saving its disk and import
    time; filters on it still work, by a scan).

    >>> Property("text", tokenization="field")
    Property(type='text', tokenization='field', index_filterable=True)
    """

    type: str
    tokenization: str | None = None
    index_filterable: bool = True

    def __post_init__(self) -> None:
        if self.tokenization is not None:
            if self.type not in ("text", "text[]"):
                raise ValueError(f"tokenization applies to text and text[] properties, not {self.type!r}")
            _check_tokenization(self.tokenization)


def _check_tokenization(tokenization: object) -> None:
    """Refuse a tokenization other than ``word``, ``lowercase``, ``whitespace`` and ``field``."""
    from omniembed.store.engines.keyword.analysis import check_tokenization

    check_tokenization(tokenization)


@dataclass(frozen=True)
class Schema:
    """The typed properties of a collection and the tokenization of its text properties.

    A property may be given as a type string or as a :class:`Property`; ``tokenization`` then holds
    every text property's tokenization (``word`` where none was chosen) and ``unindexed`` the
    properties without a filter index.
    """

    properties: dict[str, Any] = field(default_factory=dict)
    tokenization: dict[str, str] = field(default_factory=dict)
    unindexed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        types, tokenization, unindexed = {}, dict(self.tokenization), set(self.unindexed)
        for name, kind in self.properties.items():
            if isinstance(kind, Property):
                if kind.tokenization is not None:
                    tokenization[name] = kind.tokenization
                if not kind.index_filterable:
                    unindexed.add(name)
                kind = kind.type
            types[name] = kind
        object.__setattr__(self, "properties", types)
        object.__setattr__(self, "tokenization", tokenization)
        object.__setattr__(self, "unindexed", frozenset(unindexed))
        for name, kind in self.properties.items():
            check_name(name, "property")
            if kind not in PROPERTY_TYPES:
                raise ValueError(
                    f"property {name!r} has type {kind!r}; use one of {', '.join(PROPERTY_TYPES)}"
                )
        for name, chosen in tokenization.items():
            if self.properties.get(name) not in ("text", "text[]"):
                raise ValueError(f"tokenization is set for {name!r}, which is not a text property")
            _check_tokenization(chosen)
        for name in self.text_properties:
            tokenization.setdefault(name, "word")

    def tokenization_of(self, name: str) -> str:
        """The tokenization of text property ``name``."""
        return self.tokenization.get(name, "word")

    @property
    def text_properties(self) -> list[str]:
        """Properties searched by BM25: ``text`` and ``text[]``."""
        return [name for name, kind in self.properties.items() if kind in ("text", "text[]")]

    def clean(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Return a JSON-ready copy of ``properties``, or raise ``ValueError`` naming the bad one."""
        if not isinstance(properties, Mapping):
            raise ValueError(f"properties must be a dict, got {type(properties).__name__}")
        unknown = sorted(set(properties) - set(self.properties))
        if unknown:
            raise ValueError(f"unknown properties {unknown}; the collection has {sorted(self.properties)}")
        cleaned = {}
        for name, value in properties.items():
            if value is not None:
                cleaned[name] = clean_value(name, self.properties[name], value)
        return cleaned

    def restore(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Turn stored JSON values back into Python values (dates become ``datetime``)."""
        out = dict(stored)
        for name, value in stored.items():
            kind = self.properties.get(name)
            if kind == "date":
                out[name] = datetime.strptime(value, _DATE_FORMAT).replace(tzinfo=timezone.utc)
            elif kind == "date[]":
                out[name] = [datetime.strptime(v, _DATE_FORMAT).replace(tzinfo=timezone.utc) for v in value]
        return out


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it is a valid identifier for a collection, property or vector."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{what} name {name!r} is not valid; use letters, digits and '_' (not first), up to 128 chars"
        )
    return name


def check_new_properties(schema: Schema) -> None:
    """Refuse property names that start with ``_``: those are the system's (``_id`` is the uuid;
    import an ``_id`` field with ``id_field="_id"``, which keeps its value as the property ``id``).

    Checked when a collection is created, so databases that already have such names still open.
    """
    for name in schema.properties:
        if name.startswith("_"):
            raise ValueError(
                f"property name {name!r} starts with '_', which is reserved for the system (the filter "
                f"path '_id' is the uuid); rename it, e.g. to {name.lstrip('_') or 'value'!r}, or for "
                "an id field import it with id_field (--id-field), which keeps it as the property 'id'"
            )


def clean_value(name: str, kind: str, value: Any) -> Any:
    """Check one property value against its type and return its stored form."""
    if kind == "object":
        return clean_object(name, value)
    if kind == "object[]":
        return clean_objects(name, value)
    if kind.endswith("[]"):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"property {name!r} is {kind}: give a list, got {type(value).__name__}")
        return [_clean_scalar(name, kind[:-2], item) for item in value]
    return _clean_scalar(name, kind, value)


def _clean_scalar(name: str, kind: str, value: Any) -> Any:
    ok: bool
    if kind in ("text", "uuid"):
        ok = isinstance(value, str)
        if ok:
            check_text(value, f"property {name!r}")
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(
                f"property {name!r} is int and {value!r:.60} is outside the 64-bit range "
                f"({INT64_MIN} to {INT64_MAX}); store it as a number or as text"
            )
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        value = float(value) if ok else value
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "date":
        return to_date_string(name, value)
    elif kind == "image":
        return image_to_base64(name, value)
    else:  # audio, video
        return media_to_base64(name, kind, value)
    if not ok:
        raise ValueError(f"property {name!r} is {kind}, got {type(value).__name__} {value!r:.60}")
    return value


def _finite(number: float) -> bool:
    """Whether a number is a finite 64-bit float (a huge int does not fit one)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def to_date_string(name: str, value: Any) -> str:
    """Store a date as a fixed-width UTC ISO string, so string order is time order."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"property {name!r} is a date; {value!r} is not ISO 8601") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ValueError(f"property {name!r} is a date, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return str(value.astimezone(timezone.utc).strftime(_DATE_FORMAT))


def image_to_base64(name: str, value: Any) -> str:
    """Store an image as base64 of its encoded bytes: a PIL image, raw bytes, a path, base64 or a data
    URL (paths only where the current input policy lets inputs name files)."""
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image, checked without importing PIL
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return data_urls.encode(buffer.getvalue())
    return media_to_base64(name, "image", value)


def media_to_base64(name: str, kind: str, value: Any) -> str:
    """Store media as base64 of the file's bytes: raw bytes, a path, base64 or a data URL (paths only
    where the current input policy lets inputs name files). Audio may also be
    ``{"array": waveform, "sampling_rate": rate}``, kept as a 32-bit float WAV file (needs soundfile)."""
    if kind == "audio" and isinstance(value, dict) and "array" in value and "sampling_rate" in value:
        return data_urls.encode(_wav_bytes(name, value))
    if isinstance(value, bytes):
        return data_urls.encode(value)
    what = f"property {name!r} ({kind})"
    policy = input_policy.current()
    if isinstance(value, os.PathLike) or (isinstance(value, str) and policy.allows_file(value)):
        try:
            return data_urls.encode(policy.local_file(value, kind, f"property {name!r}").read_bytes())
        except InvalidInputError as error:
            raise ValueError(str(error)) from None
    if isinstance(value, str):
        try:
            return data_urls.encode(data_urls.decode(value, what))
        except InvalidInputError:
            hint = f" ({input_policy.REMOTE_HINT})" if policy.remote else " nor an existing file"
            raise ValueError(f"{what}: {value!r:.60} is neither base64 nor a data URL{hint}") from None
    extra = ", or {'array': ..., 'sampling_rate': ...}" if kind == "audio" else ""
    pil = "a PIL image, " if kind == "image" else ""
    raise ValueError(f"{what}: give {pil}the file's bytes, a path, base64 or a data URL{extra}")


def _wav_bytes(name: str, value: dict[str, Any]) -> bytes:
    from omniembed.inputs.audio import load_audio, require_audio

    soundfile, _ = require_audio()
    rate = value["sampling_rate"]
    try:
        waveform = load_audio(value, index=0, sampling_rate=rate if isinstance(rate, int) else 1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"property {name!r}: {error}") from None
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()
