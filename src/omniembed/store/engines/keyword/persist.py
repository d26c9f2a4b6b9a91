"""A keyword index on disk: plain ``.npy`` arrays and a JSON manifest written last.

For ``prefix`` ``folder/name``, a save writes ``name.<generation>.<array>.npy`` (each to a temporary
file, fsynced, then renamed), then ``name.manifest.json`` the same way, then deletes the files of
earlier generations. The manifest names each array's file with its size and zlib CRC-32, the format
version, the fingerprint (properties and how each is analysed), the object count, the per-property
total lengths and the caller's watermark. A crash at any point leaves either the old or the new
manifest, each naming complete files; a file that is missing, truncated or altered fails its check
and the load returns ``None``, so the caller rebuilds instead of trusting it.

Arrays per property ``p``: ``p.blob`` (UTF-8 terms, sorted as bytes, concatenated), ``p.term_offsets``,
``p.offsets`` (CSR row starts), ``p.slots``, ``p.tfs`` and ``p.lengths`` (terms per slot); plus
``alive`` (one bool per slot). They are memory-mapped on load: opening reads no postings.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from omniembed.store.engines.keyword.postings import Segment

logger = logging.getLogger(__name__)
FORMAT = 1
_PARTS = ("blob", "term_offsets", "offsets", "slots", "tfs", "lengths")
_CHUNK = 1 << 24


@dataclass
class Loaded:
    """The memory-mapped arrays and numbers of a saved index."""

    segments: dict[str, Segment]
    lengths: dict[str, np.ndarray]
    totals: dict[str, int]
    alive: np.ndarray
    count: int
    watermark: dict[str, int]


class _Checksummed:
    """A writable file that keeps the CRC-32 and size of what passes through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.crc, self.size = handle, 0, 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.crc = zlib.crc32(view, self.crc)
        self.size += len(view)
        return self.handle.write(view)


def manifest_path(prefix: Path) -> Path:
    """Where the manifest of ``prefix`` lives."""
    return prefix.parent / f"{prefix.name}.manifest.json"


def save(
    prefix: Path,
    fingerprint: Mapping[str, Any],
    segments: Mapping[str, Segment],
    lengths: Mapping[str, np.ndarray],
    totals: Mapping[str, int],
    alive: np.ndarray,
    count: int,
    watermark: Mapping[str, int],
) -> None:
    """Write the arrays, then the manifest, atomically; then delete older generations."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    generation = uuid.uuid4().hex[:12]
    arrays: dict[str, np.ndarray] = {"alive": alive}
    for name, segment in segments.items():
        parts = (
            segment.blob,
            segment.term_offsets,
            segment.offsets,
            segment.slots,
            segment.tfs,
            lengths[name],
        )
        arrays.update({f"{name}.{part}": array for part, array in zip(_PARTS, parts, strict=True)})
    files = {}
    for key, array in arrays.items():
        path = prefix.parent / f"{prefix.name}.{generation}.{key}.npy"
        files[key] = {"file": path.name, **_write_array(path, np.ascontiguousarray(array))}
    manifest = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "count": int(count),
        "totals": {name: int(total) for name, total in totals.items()},
        "watermark": {key: int(value) for key, value in watermark.items()},
        "files": files,
    }
    _write_bytes(manifest_path(prefix), json.dumps(manifest, sort_keys=True).encode("utf-8"))
    _sync_folder(prefix.parent)
    current = {entry["file"] for entry in files.values()}
    for stale in prefix.parent.glob(f"{prefix.name}.*.npy"):
        if stale.name not in current:
            stale.unlink(missing_ok=True)


def load(prefix: Path, fingerprint: Mapping[str, Any]) -> Loaded | None:
    """Memory-map a saved index, or return ``None`` (logging why) if it cannot be trusted."""
    path = manifest_path(prefix)
    if not path.exists():
        logger.info("no saved keyword index at %s: it will be rebuilt", path)
        return None
    try:
        manifest = json.loads(path.read_bytes())
        return _open(prefix, manifest, json.loads(json.dumps(fingerprint)))
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("saved keyword index %s is not usable (%s): it will be rebuilt", path, error)
        return None


def _open(prefix: Path, manifest: dict[str, Any], fingerprint: Any) -> Loaded:
    if manifest.get("format") != FORMAT:
        raise ValueError(f"format {manifest.get('format')!r}, this version reads {FORMAT}")
    if manifest["fingerprint"] != fingerprint:
        raise ValueError("made for other properties, tokenization, stemmer or stop words")
    arrays = {key: _read_array(prefix.parent, entry) for key, entry in manifest["files"].items()}
    segments, lengths = {}, {}
    for name in fingerprint:
        blob, term_offsets, offsets, slots, tfs, lengths[name] = (arrays[f"{name}.{p}"] for p in _PARTS)
        if len(term_offsets) != len(offsets) or int(offsets[-1]) != len(slots) or len(slots) != len(tfs):
            raise ValueError(f"the arrays of {name!r} disagree in size")
        if int(term_offsets[-1]) != len(blob) or len(lengths[name]) != len(arrays["alive"]):
            raise ValueError(f"the terms or lengths of {name!r} disagree in size")
        segments[name] = Segment(blob, term_offsets, offsets, slots, tfs)
    totals = {name: int(manifest["totals"][name]) for name in fingerprint}
    return Loaded(segments, lengths, totals, arrays["alive"], int(manifest["count"]), manifest["watermark"])


def _read_array(folder: Path, entry: Mapping[str, Any]) -> np.ndarray:
    """Check a file's size and CRC-32 (read through, not mapped), then memory-map it copy-on-write."""
    path = folder / entry["file"]
    if path.stat().st_size != entry["size"]:
        raise ValueError(f"{path.name} has {path.stat().st_size} bytes, the manifest says {entry['size']}")
    crc, buffer = 0, bytearray(_CHUNK)
    with path.open("rb") as handle:
        while read := handle.readinto(buffer):
            crc = zlib.crc32(memoryview(buffer)[:read], crc)
    if crc != entry["crc32"]:
        raise ValueError(f"{path.name} fails its checksum")
    try:
        array = np.load(path, mmap_mode="c", allow_pickle=False)
    except ValueError:  # an empty array cannot be mapped
        array = np.load(path, allow_pickle=False)
    return np.asarray(array) if array.size == 0 else array


def _write_array(path: Path, array: np.ndarray) -> dict[str, int]:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        sink = _Checksummed(handle)
        np.lib.format.write_array(sink, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return {"size": sink.size, "crc32": sink.crc}


def _write_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _sync_folder(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
