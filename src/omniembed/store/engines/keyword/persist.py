"""A keyword index on disk: immutable segment files, a small alive bitmap and a JSON manifest written last.

For ``prefix`` ``folder/name``:

- ``name.<id>.seg``: one segment (:mod:`.segment`), written once and never changed: every field's
  arrays (``blob``, ``term_offsets``, ``keys``, ``offsets``, ``slots``, ``tfs``, ``lengths``) one after
  the other, 64-byte aligned, memory-mapped on load;
- ``name.<id>.alive``: one bit per slot (deletions flip bits; rewritten by each save, it is small);
- ``name.manifest.json``: format version, fingerprint (properties and how each is analysed), object
  count, per-property total lengths, the caller's watermark, and per file its name, size, CRC-32 of
  every 16 MiB block and (for segments) the slot range and where each array lies.

A save writes only what is new: the objects added since the last save become one segment, merged with
neighbours by size tiers (:mod:`.tiers`) so that each posting is rewritten about log4(total) times over
its life. Each new file goes to a temporary name, is fsynced and renamed; the folder is fsynced; then
the manifest is replaced the same way; only then are files it no longer names deleted. A crash at any
point leaves either the old or the new manifest, each naming complete files; files no manifest names
(a crash's orphans) are ignored on load and deleted by the next save.

Checks on load. Size and CRC-32 of every file named by the manifest, always: a stale, truncated or
corrupt file fails and the load returns ``None``, so the caller rebuilds instead of trusting it. The
CRCs run over the memory maps (nothing is copied) in 16 MiB blocks spread over threads (zlib releases
the GIL), so at a million objects (~120 MB of postings) they cost tens of milliseconds; cheaper
schemes (size only, or checking in the background while queries already run) would serve answers from
a file not yet known to be sound, which the store promises never to do.
"""

from __future__ import annotations

import glob
import json
import logging
import mmap
import os
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from omniembed.store.engines.keyword.postings import Postings
from omniembed.store.engines.keyword.segment import Segment

logger = logging.getLogger(__name__)
FORMAT = 2
BLOCK = 1 << 24  # bytes per CRC-32
ALIGN = 64
_ARRAYS = ("blob", "term_offsets", "keys", "offsets", "slots", "tfs")
_KINDS = "uif"  # dtypes a manifest may name: integers, and floats (the sparse index's weights)


@dataclass
class Loaded:
    """The memory-mapped segments and the numbers of a saved index."""

    segments: list[Segment]
    alive: np.ndarray
    count: int
    totals: dict[str, int]
    watermark: dict[str, int]


class _BlockChecksums:
    """A writable file that keeps its size and the CRC-32 of each :data:`BLOCK` bytes written."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.size, self._crc = handle, 0, 0
        self.crcs: list[int] = []

    def write(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            piece = view[: BLOCK - self.size % BLOCK]
            self._crc = zlib.crc32(piece, self._crc)
            self.handle.write(piece)
            self.size += len(piece)
            view = view[len(piece) :]
            if self.size % BLOCK == 0:
                self.crcs.append(self._crc)
                self._crc = 0

    def entry(self) -> dict[str, Any]:
        tail = [self._crc] if self.size % BLOCK else []
        return {"size": self.size, "crc32": self.crcs + tail}


def manifest_path(prefix: Path) -> Path:
    """Where the manifest of ``prefix`` lives."""
    return prefix.parent / f"{prefix.name}.manifest.json"


def listed(prefix: Path) -> set[str]:
    """The segment files the current manifest of ``prefix`` names (empty if it is missing or foreign)."""
    try:
        manifest = json.loads(manifest_path(prefix).read_bytes())
        return (
            {entry["file"] for entry in manifest["segments"]} if manifest.get("format") == FORMAT else set()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def write_segment(prefix: Path, segment: Segment) -> Segment:
    """Write ``segment`` to a new file beside ``prefix`` (fsynced) and return it memory-mapped."""
    path = prefix.parent / f"{prefix.name}.{uuid.uuid4().hex[:12]}.seg"
    layout: dict[str, list[Any]] = {}
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        sink = _BlockChecksums(handle)
        for key, array in _segment_arrays(segment):
            sink.write(bytes(-sink.size % ALIGN))
            array = np.ascontiguousarray(array)
            layout[key] = [sink.size, array.dtype.str, len(array)]
            sink.write(array)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    entry = {"file": path.name, **sink.entry(), "lo": segment.lo, "hi": segment.hi, "docs": segment.docs}
    return _open_segment(path.parent, {**entry, "arrays": layout}, list(segment.postings), verify=False)


def _segment_arrays(segment: Segment) -> Iterator[tuple[str, np.ndarray]]:
    for name, postings in segment.postings.items():
        for key, array in postings.arrays().items():
            yield f"{name}.{key}", array
        yield f"{name}.lengths", segment.lengths[name]


def commit(
    prefix: Path,
    fingerprint: Mapping[str, Any],
    segments: Sequence[Segment],
    alive: np.ndarray,
    count: int,
    totals: Mapping[str, int],
    watermark: Mapping[str, int],
) -> None:
    """Write the alive bitmap, then the manifest naming ``segments`` (already written), atomically;
    then delete the files it does not name."""
    folder = prefix.parent
    alive_path = folder / f"{prefix.name}.{uuid.uuid4().hex[:12]}.alive"
    alive_entry = {"file": alive_path.name, **_write_bytes(alive_path, np.packbits(alive).tobytes())}
    entries = [_entry(segment) for segment in segments]
    manifest = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "count": int(count),
        "end": len(alive),
        "totals": {name: int(total) for name, total in totals.items()},
        "watermark": {key: int(value) for key, value in watermark.items()},
        "alive": alive_entry,
        "segments": entries,
    }
    _sync_folder(folder)  # the new files' names are durable before a manifest names them
    _write_bytes(manifest_path(prefix), json.dumps(manifest, sort_keys=True).encode("utf-8"))
    _sync_folder(folder)
    keep = {alive_path.name, manifest_path(prefix).name, *(entry["file"] for entry in entries)}
    for stale in folder.glob(f"{glob.escape(prefix.name)}.*"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)


def _entry(segment: Segment) -> dict[str, Any]:
    if segment.entry is None:
        raise ValueError("a segment must be written before a manifest names it")
    return segment.entry


def load(prefix: Path, fingerprint: Mapping[str, Any], what: str = "keyword index") -> Loaded | None:
    """Memory-map a saved index, or return ``None`` (logging why, naming it ``what``) if it cannot be
    trusted."""
    path = manifest_path(prefix)
    if not path.exists():
        logger.info("no saved %s at %s: it will be rebuilt", what, path)
        return None
    try:
        manifest = json.loads(path.read_bytes())
        return _open(prefix, manifest, json.loads(json.dumps(fingerprint)))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        logger.warning("saved %s %s is not usable (%s): it will be rebuilt", what, path, error)
        return None


def _open(prefix: Path, manifest: dict[str, Any], fingerprint: Any) -> Loaded:
    if manifest.get("format") != FORMAT:
        raise ValueError(f"format {manifest.get('format')!r}, this version reads {FORMAT}")
    if manifest["fingerprint"] != fingerprint:
        raise ValueError("made for other properties, tokenization, stemmer or stop words")
    folder, end, fields = prefix.parent, int(manifest["end"]), list(fingerprint)
    data = _read_small(folder, manifest["alive"])
    alive = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=end).astype(bool)
    if int(alive.sum()) != int(manifest["count"]):
        raise ValueError(
            f"the alive bitmap holds {int(alive.sum())} objects, the manifest says {manifest['count']}"
        )
    segments = [_open_segment(folder, entry, fields, verify=False) for entry in manifest["segments"]]
    _verify([(segment.buffer, entry) for segment, entry in zip(segments, manifest["segments"], strict=True)])
    for segment in segments:
        if not 0 <= segment.lo <= segment.hi <= end:
            raise ValueError(
                f"{segment.path} covers slots {segment.lo}..{segment.hi}, the index ends at {end}"
            )
    totals = {name: int(manifest["totals"][name]) for name in fields}
    return Loaded(segments, alive, int(manifest["count"]), totals, dict(manifest["watermark"]))


def _open_segment(folder: Path, entry: Mapping[str, Any], fields: list[str], verify: bool) -> Segment:
    """Map a segment's file and view its arrays (checking their sizes agree; ``verify``: CRCs too)."""
    path = folder / entry["file"]
    buffer = _map(path, int(entry["size"]))
    if verify:
        _verify([(buffer, entry)])
    arrays = {key: _view(buffer, key, *spec) for key, spec in entry["arrays"].items()}
    lo, hi = int(entry["lo"]), int(entry["hi"])
    postings, lengths = {}, {}
    for name in fields:
        blob, term_offsets, keys, offsets, slots, tfs = (arrays[f"{name}.{a}"] for a in _ARRAYS)
        if len(term_offsets) != len(keys) + 1 or len(offsets) != len(term_offsets) or len(slots) != len(tfs):
            raise ValueError(f"the arrays of {name!r} in {path.name} disagree in size")
        if int(offsets[-1]) != len(slots) or int(term_offsets[-1]) != len(blob):
            raise ValueError(f"the offsets of {name!r} in {path.name} disagree with its postings")
        lengths[name] = arrays[f"{name}.lengths"]
        if len(lengths[name]) != hi - lo:
            raise ValueError(
                f"{path.name} holds {len(lengths[name])} lengths of {name!r} for {hi - lo} slots"
            )
        postings[name] = Postings(blob, term_offsets, keys, offsets, slots, tfs)
    segment = Segment(lo, hi, int(entry["docs"]), postings, lengths, path)
    segment.entry, segment.buffer = dict(entry), buffer
    return segment


def _map(path: Path, size: int) -> Any:
    actual = path.stat().st_size
    if actual != size:
        raise ValueError(f"{path.name} has {actual} bytes, the manifest says {size}")
    if size == 0:
        return b""
    with path.open("rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _view(buffer: Any, key: str, offset: int, dtype: str, count: int) -> np.ndarray:
    kind = np.dtype(dtype)
    if kind.kind not in _KINDS:
        raise ValueError(f"array {key} has type {dtype!r}; saved indexes hold numbers only")
    return np.frombuffer(buffer, dtype=kind, count=int(count), offset=int(offset))


def _verify(files: Sequence[tuple[Any, Mapping[str, Any]]]) -> None:
    """Check every block's CRC-32 of the mapped files, spread over threads; raise on the first mismatch."""
    tasks = []
    for buffer, entry in files:
        crcs = entry["crc32"]
        if len(crcs) != -(-int(entry["size"]) // BLOCK):
            raise ValueError(f"{entry['file']} lists {len(crcs)} checksums for {entry['size']} bytes")
        view = memoryview(buffer)
        tasks += [(view[i * BLOCK : (i + 1) * BLOCK], crc, entry["file"]) for i, crc in enumerate(crcs)]
    workers = min(4, os.cpu_count() or 1, max(len(tasks), 1))
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda task: zlib.crc32(task[0]) == task[1], tasks))
    for (_, _, name), good in zip(tasks, results, strict=True):
        if not good:
            raise ValueError(f"{name} fails its checksum")


def _read_small(folder: Path, entry: Mapping[str, Any]) -> bytes:
    path = folder / entry["file"]
    data: bytes = path.read_bytes()
    if len(data) != int(entry["size"]):
        raise ValueError(f"{path.name} has {len(data)} bytes, the manifest says {entry['size']}")
    if [zlib.crc32(data[i : i + BLOCK]) for i in range(0, len(data), BLOCK)] != entry["crc32"]:
        raise ValueError(f"{path.name} fails its checksum")
    return data


def _write_bytes(path: Path, data: bytes) -> dict[str, Any]:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        sink = _BlockChecksums(handle)
        sink.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return sink.entry()


def _sync_folder(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
