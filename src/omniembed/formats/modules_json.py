"""Read ``modules.json``, the list of a model folder's pipeline steps, and keep every step inside the folder.

The file is a JSON list of ``{"idx", "name", "path", "type"}`` entries. This is the one reader
of it: SentenceTransformer, CrossEncoder and the multi-vector encoders all take their entries from
here, so the check that a module path cannot lead out of the model folder (``..``, an absolute
path, or a symlink pointing elsewhere) lives in one place. Which ``type`` names a model kind
accepts is each kind's own allow-list; nothing here imports what a type names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omniembed.errors import ModelFormatError

MODULES_FILE = "modules.json"


@dataclass(frozen=True)
class ModuleEntry:
    """One step listed in ``modules.json``.

    Attributes:
        idx: the step's position in the pipeline.
        name: the entry's name (the reference library uses it as the module's key).
        type: the class path as written, such as ``sentence_transformers.models.Pooling``.
        relative: the ``path`` as written (``""`` for the folder itself).
        folder: where the step's files are: ``relative`` resolved, always inside the model folder.
    """

    idx: int
    name: str
    type: str
    relative: str
    folder: Path

    @property
    def class_name(self) -> str:
        """The last part of ``type`` (``Pooling`` for ``sentence_transformers.models.Pooling``)."""
        return self.type.rpartition(".")[2]

    @property
    def package(self) -> str:
        """The first part of ``type`` (``sentence_transformers``); empty for a bare class name."""
        namespace = self.type.rpartition(".")[0]
        return namespace.split(".")[0]


def read_modules_json(folder: Path) -> list[ModuleEntry] | None:
    """Return a folder's ``modules.json`` entries sorted by ``idx``, or ``None`` where it has none.

    Raises:
        ModelFormatError: the file is not JSON, not a non-empty list of entries with a string
            ``type`` and an integer ``idx``, or names a path outside ``folder``.

    >>> read_modules_json(Path("/no/such/model")) is None
    True
    """
    path = folder / MODULES_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFormatError(f"model file {path} is not valid JSON: {error}") from error
    if not isinstance(raw, list) or not raw:
        raise ModelFormatError(f"{path} should list the model's modules")
    root = folder.resolve()
    entries = [_entry(item, path, root) for item in raw]
    return sorted(entries, key=lambda entry: entry.idx)


def _entry(item: object, path: Path, root: Path) -> ModuleEntry:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("type"), str)
        or not isinstance(item.get("idx", 0), int)
        or not isinstance(item.get("path", ""), str)
    ):
        raise ModelFormatError(
            f"{path}: entry {item!r} needs a 'type' and an integer 'idx' (and a string 'path')"
        )
    idx = int(item.get("idx", 0))
    relative = str(item.get("path", ""))
    return ModuleEntry(
        idx=idx,
        name=str(item.get("name", idx)),
        type=str(item["type"]),
        relative=relative,
        folder=module_folder(root, relative, path),
    )


def module_folder(root: Path, relative: str, modules_file: Path) -> Path:
    """Resolve a module's ``path`` against the (resolved) model folder, refusing a way out of it.

    Refused: an absolute path, any ``..`` part, a NUL byte, and a path that resolves (through
    symlinks) to somewhere outside ``root``. The returned path is the resolved one that was checked,
    so a later read cannot be sent elsewhere by the same link.

    Raises:
        ModelFormatError: the path leads outside the model folder.

    >>> module_folder(Path("/models/m"), "../other", Path("/models/m/modules.json"))
    Traceback (most recent call last):
    ...
    omniembed.errors.ModelFormatError: module path '../other' in /models/m/modules.json must stay inside ...
    """
    parts = Path(relative).parts
    if "\x00" in relative or Path(relative).is_absolute() or ".." in parts:
        raise ModelFormatError(
            f"module path {relative!r} in {modules_file} must stay inside the model folder {root}; "
            "give a path relative to it, without '..'"
        )
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise ModelFormatError(
            f"module path {relative!r} in {modules_file} must stay inside the model folder {root}, "
            f"but it is a link to {target}; copy the module's files into the folder"
        )
    return target
