"""Files of a saved vector index: atomic writes, crc32 checksums and the manifest written last.

A save writes each data file under a new generation number (temp file, fsync, rename), then the
manifest naming those files with their sizes and checksums, then removes older generations: a
crash at any point leaves either the old manifest with its files or the new one with its files.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_CHUNK = 32 << 20


def manifest_path(prefix: Path) -> Path:
    """Where the manifest of the index saved under ``prefix`` lives."""
    return prefix.with_name(prefix.name + ".manifest.json")


def data_path(prefix: Path, generation: int, kind: str) -> Path:
    """Where a data file of one generation lives."""
    return prefix.with_name(f"{prefix.name}.{generation}.{kind}")


def file_crc32(path: Path) -> int:
    """crc32 of a file, read through a memory map that is dropped chunk by chunk (no RSS growth)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    crc = 0
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            for start in range(0, size, _CHUNK):
                length = min(_CHUNK, size - start)
                crc = zlib.crc32(view[start : start + length], crc)
                with contextlib.suppress(OSError, AttributeError):
                    mapped.madvise(mmap.MADV_DONTNEED, start, length)
        finally:
            view.release()
    return crc


def fsync_file(path: Path) -> None:
    """Flush a written file to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames) to disk."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: Path, chunks: Iterable[bytes | memoryview]) -> dict[str, Any]:
    """Write ``chunks`` to ``path`` atomically; return the manifest entry (name, size, crc32)."""
    temp = path.with_name(path.name + ".tmp")
    crc, size = 0, 0
    with open(temp, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return {"name": path.name, "size": size, "crc32": crc}


def finish_file(temp: Path, path: Path) -> dict[str, Any]:
    """Fsync and rename a file written by a library to ``temp``; return its manifest entry."""
    fsync_file(temp)
    os.replace(temp, path)
    return {"name": path.name, "size": path.stat().st_size, "crc32": file_crc32(path)}


def write_manifest(prefix: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest last (temp, fsync, rename, folder fsync) and drop other generations' files."""
    path = manifest_path(prefix)
    write_bytes(path.with_name(path.name + ".new"), [json.dumps(manifest, sort_keys=True).encode()])
    os.replace(path.with_name(path.name + ".new"), path)
    fsync_folder(path.parent)
    keep = {entry["name"] for entry in manifest["files"].values()}
    remove_files(prefix, keep)


def remove_files(prefix: Path, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove the data files (and temp files) saved under ``prefix``, except those named in ``keep``."""
    if not prefix.parent.exists():
        return
    for path in prefix.parent.glob(f"{prefix.name}.*"):
        if path.name in keep or path.name == manifest_path(prefix).name:
            continue
        rest = path.name[len(prefix.name) + 1 :].split(".")
        if (rest and rest[0].isdigit()) or path.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                path.unlink()


def read_manifest(prefix: Path) -> tuple[dict[str, Any] | None, str]:
    """The manifest and an empty reason, or None and why it cannot be trusted."""
    path = manifest_path(prefix)
    if not path.exists():
        return None, f"no saved index at {path}"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"unreadable manifest {path}: {error}"
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None, f"malformed manifest {path}"
    return manifest, ""


def check_file(folder: Path, entry: dict[str, Any]) -> tuple[Path | None, str]:
    """The path of a manifest entry whose size and crc32 match, or None and why not."""
    try:
        path = folder / str(entry["name"])
        size, crc = int(entry["size"]), int(entry["crc32"])
    except (KeyError, TypeError, ValueError):
        return None, f"malformed manifest entry {entry!r}"
    if not path.exists():
        return None, f"missing file {path}"
    if path.stat().st_size != size:
        return None, f"{path} has {path.stat().st_size} bytes, the manifest says {size} (truncated?)"
    if file_crc32(path) != crc:
        return None, f"{path} fails its crc32 checksum (corrupt)"
    return path, ""
