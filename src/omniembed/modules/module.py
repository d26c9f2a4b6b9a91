"""The base of every pipeline step, and the JSON helpers the steps share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from omniembed.errors import ModelFormatError

Features = dict[str, Any]
"""What flows between modules: ``input_ids``, ``attention_mask``, ``token_embeddings``,
``sentence_embedding`` and friends, keyed by name."""


@dataclass(frozen=True)
class LoadOptions:
    """Options that every module's ``load`` receives.

    Attributes:
        trust_remote_code: allow model code shipped inside the model folder to run.
        model_kwargs: extra keyword arguments for ``transformers``' ``from_pretrained``.
        tokenizer_kwargs: extra keyword arguments for the tokenizer's ``from_pretrained``.
        allow_pickle: read pickle-based ``.bin`` weights (opted into with
            ``model_kwargs={"use_safetensors": False}``).
    """

    trust_remote_code: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    tokenizer_kwargs: dict[str, Any] = field(default_factory=dict)
    allow_pickle: bool = False

    @classmethod
    def from_arguments(
        cls,
        trust_remote_code: bool,
        model_kwargs: dict[str, Any] | None,
        tokenizer_kwargs: dict[str, Any] | None,
    ) -> LoadOptions:
        """Build options from a model class's constructor arguments (copies; inputs are not changed).

        ``model_kwargs["trust_remote_code"]`` wins over the argument, as in the reference library, and
        ``model_kwargs={"use_safetensors": False}`` is the opt-in to pickle-based weights.
        """
        model_kwargs = dict(model_kwargs or {})
        return cls(
            trust_remote_code=bool(model_kwargs.pop("trust_remote_code", trust_remote_code)),
            model_kwargs=model_kwargs,
            tokenizer_kwargs=dict(tokenizer_kwargs or {}),
            allow_pickle=model_kwargs.get("use_safetensors") is False,
        )


class Module(nn.Module):
    """One step of a model: reads a features dict and adds or replaces entries in it.

    Subclasses list the constructor arguments they save in ``config_keys`` and name the type string
    written to ``modules.json`` in ``reference_type``, which the reference library reads back.
    """

    config_keys: ClassVar[tuple[str, ...]] = ()
    config_file_name: ClassVar[str] = "config.json"
    reference_type: ClassVar[str] = ""

    def forward(self, features: Features) -> Features:
        """Transform ``features`` and return them."""
        raise NotImplementedError

    def get_config_dict(self) -> dict[str, Any]:
        """Return the constructor arguments to save."""
        return {key: getattr(self, key) for key in self.config_keys}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config_dict()})"

    def save(self, folder: Path) -> None:
        """Write this module's config (and weights, where it has any) into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / self.config_file_name, self.get_config_dict())

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Module:
        """Build the module from a folder written by ``save`` (ours or the reference library's)."""
        raise NotImplementedError


def read_json(path: Path, *, missing_ok: bool = False) -> dict[str, Any]:
    """Read a JSON object from ``path``; a missing file gives ``{}`` when ``missing_ok``."""
    if not path.is_file():
        if missing_ok:
            return {}
        raise ModelFormatError(f"model file {path} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFormatError(f"model file {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ModelFormatError(f"model file {path} should hold a JSON object, found {type(data).__name__}")
    return data


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path``."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def pickle_refused(path: Path) -> ModelFormatError:
    """The error for pickle-based weights met without the opt-in."""
    return ModelFormatError(
        f"{path} holds pickle-based weights, which are not read by default; convert it to "
        "model.safetensors, or opt in with model_kwargs={'use_safetensors': False} if you trust it"
    )


def load_weights(module: nn.Module, folder: Path, options: LoadOptions) -> None:
    """Load ``model.safetensors`` (or, when allowed, ``pytorch_model.bin``) into ``module``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    safetensors_path = folder / "model.safetensors"
    pickle_path = folder / "pytorch_model.bin"
    if safetensors_path.is_file():
        try:
            state = load_file(str(safetensors_path))
        except (SafetensorError, OSError) as error:
            raise ModelFormatError(f"weights file {safetensors_path} is corrupt: {error}") from error
        source = safetensors_path
    elif pickle_path.is_file() and options.allow_pickle:
        state = torch.load(pickle_path, map_location="cpu", weights_only=True)
        source = pickle_path
    elif pickle_path.is_file():
        raise pickle_refused(pickle_path)
    else:
        raise ModelFormatError(f"weights file {safetensors_path} is missing")
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise ModelFormatError(f"weights in {source} do not fit the module's config: {error}") from error
