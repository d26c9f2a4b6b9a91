"""Read what a late-interaction (ColBERT-style) folder says about prompts, lengths, expansion and masking.

Two layouts: PyLate's (knobs at the top of ``config_sentence_transformers.json``, modules
Transformer + Dense) and the reference library's v6 multi-vector one (knobs in
``sentence_bert_config.json``, modules Transformer + Dense + MultiVectorMask + Normalize).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniembed.errors import ModelFormatError
from omniembed.formats.modules_json import MODULES_FILE, ModuleEntry, read_modules_json
from omniembed.modules.module import read_json

MODULE_NAMES = ("Transformer", "Dense", "MultiVectorMask", "Normalize")


@dataclass(frozen=True)
class QueryExpansion:
    """Pad queries to ``length`` tokens with ``token`` (default ``[MASK]``), which then count in MaxSim.

    ``strategy`` ``"fixed"`` makes every query exactly ``length`` tokens; ``"min"`` only widens shorter
    batches. ``attend``: whether the encoder attends to the expansion tokens.
    """

    length: int
    strategy: str = "fixed"
    attend: bool = False
    token: str | None = None


@dataclass
class LateInteractionConfig:
    """Everything besides weights that decides which token vectors come out."""

    prompts: dict[str, str] = field(default_factory=dict)
    query_length: int | None = None
    document_length: int | None = None
    expansion: QueryExpansion | None = None
    skiplist_words: list[str] = field(default_factory=list)
    skiplist_tasks: list[str] = field(default_factory=lambda: ["document"])
    normalize: bool = True
    modules: list[tuple[str, Path]] = field(default_factory=list)


def read_config(folder: Path) -> LateInteractionConfig:
    """Read a PyLate or v6 multi-vector folder.

    Raises:
        ModelFormatError: a module outside the allow-list, or a folder that is not a multi-vector model.
    """
    st = read_json(folder / "config_sentence_transformers.json", missing_ok=True)
    sbert = read_json(folder / "sentence_bert_config.json", missing_ok=True)
    pylate = st.get("model_type") == "ColBERT" or any(
        key in st for key in ("query_prefix", "do_query_expansion")
    )
    if st.get("model_type") not in ("ColBERT", "MultiVectorEncoder") and not pylate:
        raise ModelFormatError(
            f"{folder} is not a late-interaction model (model_type {st.get('model_type')!r}); "
            "load embedding models with SentenceTransformer"
        )
    modules = _modules(folder)
    names = [name for name, _ in modules]
    prompts = dict(st.get("prompts") or {})
    for key, task in (("query_prefix", "query"), ("document_prefix", "document")):
        if st.get(key):
            prefix = str(st[key])
            prompts[task] = prefix + (prompts.get(task) or "").removeprefix(prefix)
    config = LateInteractionConfig(
        prompts=prompts,
        query_length=sbert.get("query_length", st.get("query_length")),
        document_length=sbert.get("document_length", st.get("document_length")),
        normalize=(pylate and "Normalize" not in names) or "Normalize" in names,
        modules=modules,
    )
    config.expansion = _expansion(sbert, st, pylate)
    if config.expansion is not None and "query_expansion" not in sbert:
        config.query_length = None  # PyLate's query_length is the expansion width
    mask = next((path for name, path in modules if name == "MultiVectorMask"), None)
    if mask is not None:
        mask_config = read_json(mask / "config.json", missing_ok=True)
        config.skiplist_words = list(mask_config.get("skiplist_words") or [])
        config.skiplist_tasks = list(mask_config.get("skiplist_tasks") or ["document"])
    elif pylate:
        words = st.get("skiplist_words")
        config.skiplist_words = list(string.punctuation) if words is None else list(words)
    return config


def _expansion(sbert: dict[str, Any], st: dict[str, Any], pylate: bool) -> QueryExpansion | None:
    if "query_expansion" in sbert:
        spec = sbert["query_expansion"]
        if spec is None:
            return None
        return QueryExpansion(
            length=int(spec["length"]),
            strategy=str(spec.get("strategy", "fixed")),
            attend=bool(spec.get("attend", False)),
            token=spec.get("token"),
        )
    if not pylate or st.get("do_query_expansion") is False:
        return None
    attend = st.get("attend_to_expansion_tokens", st.get("attend_to_mask_tokens", False))
    return QueryExpansion(length=int(st.get("query_length") or 32), attend=bool(attend))


def allowed_modules(folder: Path, entries: list[ModuleEntry]) -> list[tuple[str, Path]]:
    """Return ``(class name, folder)`` per ``modules.json`` entry, refusing types outside the allow-list.

    Raises:
        ModelFormatError: a type not in ``MODULE_NAMES`` (from the sentence-transformers, PyLate or
            omniembed packages), or a first module that is not a Transformer.
    """
    modules = []
    for entry in entries:
        if entry.package not in ("sentence_transformers", "pylate", "omniembed") or (
            entry.class_name not in MODULE_NAMES
        ):
            raise ModelFormatError(
                f"{folder / MODULES_FILE}: module type {entry.type!r} is not supported for late "
                f"interaction; supported: {list(MODULE_NAMES)} (arbitrary classes are never imported)"
            )
        modules.append((entry.class_name, entry.folder))
    if modules[0][0] != "Transformer":
        raise ModelFormatError(f"{folder / MODULES_FILE}: the first module must be a Transformer")
    return modules


def _modules(folder: Path) -> list[tuple[str, Path]]:
    entries = read_modules_json(folder)
    if entries is None:
        raise ModelFormatError(f"{folder} has no modules.json; a late-interaction folder lists its modules")
    return allowed_modules(folder, entries)
