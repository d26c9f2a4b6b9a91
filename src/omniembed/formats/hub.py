"""Turn a model name or path into a local folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from omniembed.errors import ModelNotFoundError

_OFFLINE_VALUES = {"1", "true", "yes", "on"}
# Weights for other runtimes that model repositories often carry; we never read them.
_NOT_NEEDED = [
    "onnx/*",
    "openvino/*",
    "*.onnx",
    "*.h5",
    "*.ot",
    "*.msgpack",
    "flax_model*",
    "tf_model*",
    "*.gguf",
]


@dataclass(frozen=True)
class HubOptions:
    """Where and how to find a model on the Hugging Face hub: the arguments every model class takes.

    Attributes:
        cache_folder: the Hugging Face cache to look in and download to (default: the hub's own).
        revision: the hub revision (branch, tag or commit).
        token: the hub token for private models.
        local_files_only: never contact the hub.
    """

    cache_folder: str | os.PathLike[str] | None = None
    revision: str | None = None
    token: bool | str | None = None
    local_files_only: bool = False

    @classmethod
    def pick(cls, arguments: dict[str, Any]) -> HubOptions:
        """Take the hub options out of a model class's keyword arguments (others are left alone).

        >>> HubOptions.pick({"revision": "main", "device": "cpu"})
        HubOptions(cache_folder=None, revision='main', token=None, local_files_only=False)
        """
        return cls(**{name: arguments[name] for name in HUB_ARGUMENTS if name in arguments})

    def resolve(self, name_or_path: str | os.PathLike[str]) -> Path:
        """Return the local folder holding the model's files (see :func:`resolve_model_folder`)."""
        return resolve_model_folder(
            name_or_path,
            cache_folder=self.cache_folder,
            revision=self.revision,
            token=self.token,
            local_files_only=self.local_files_only,
        )


HUB_ARGUMENTS = tuple(field.name for field in fields(HubOptions))
"""The keyword arguments of a model class that say where to find the model."""


def is_offline() -> bool:
    """Return whether the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return env in _OFFLINE_VALUES or bool(constants.HF_HUB_OFFLINE)


def resolve_model_folder(
    name_or_path: str | os.PathLike[str],
    *,
    cache_folder: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    token: bool | str | None = None,
    local_files_only: bool = False,
) -> Path:
    """Return the local folder holding a model's files.

    Looks in order at: a local folder, the Hugging Face cache (``cache_folder`` or the default one),
    and the hub itself unless ``local_files_only`` or ``HF_HUB_OFFLINE`` forbid it. A bare name such
    as ``all-MiniLM-L6-v2`` is also tried as ``sentence-transformers/all-MiniLM-L6-v2``.

    Raises:
        ModelNotFoundError: nothing was found; the message lists every place that was tried.

    >>> resolve_model_folder("/no/such/model", local_files_only=True)
    Traceback (most recent call last):
    ...
    omniembed.errors.ModelNotFoundError: model '/no/such/model' not found: ...
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise ModelNotFoundError(f"model path {text!r} is a file; pass the folder that holds modules.json")

    tried = [f"local folder {path.resolve()}"]
    looks_like_repo_id = text.count("/") <= 1 and not text.startswith((".", "/", "~")) and bool(text)
    if looks_like_repo_id:
        offline = local_files_only or is_offline()
        for repo_id in _candidate_repo_ids(text):
            folder, where = _from_hub(repo_id, cache_folder, revision, token, offline)
            if folder is not None:
                return folder
            tried.append(where)
    hint = (
        "download it while online, or pass the path of a local model folder"
        if looks_like_repo_id
        else "check the path"
    )
    raise ModelNotFoundError(f"model {text!r} not found: tried {'; '.join(tried)}; {hint}")


def _candidate_repo_ids(name: str) -> list[str]:
    return [name] if "/" in name else [name, f"sentence-transformers/{name}"]


def _from_hub(
    repo_id: str,
    cache_folder: str | os.PathLike[str] | None,
    revision: str | None,
    token: bool | str | None,
    offline: bool,
) -> tuple[Path | None, str]:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    cache = Path(cache_folder or constants.HF_HUB_CACHE)
    where = f"Hugging Face cache {cache} for {repo_id!r}"
    try:
        # One call for both cases, with the same file patterns, so that a folder we downloaded
        # counts as complete when it is read back offline.
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache,
            token=token,
            local_files_only=offline,
            library_name="omniembed",
            ignore_patterns=_NOT_NEEDED,
        )
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError) as error:
        if offline:
            return None, where + " (offline: hub not contacted)"
        return None, f"{where} and the hub ({type(error).__name__}: {error})"
    except Exception as error:
        return None, f"{where} and the hub ({type(error).__name__}: {error})"
    return Path(folder), where
