"""Read and write model folders in the sentence-transformers format (``modules.json`` and friends)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omniembed.errors import ModelFormatError
from omniembed.formats.modules_json import MODULES_FILE, read_modules_json
from omniembed.modules.dense import Dense
from omniembed.modules.module import LoadOptions, Module, read_json, write_json
from omniembed.modules.multimodal.base import has_media_modalities
from omniembed.modules.multimodal.clap import ClapModel
from omniembed.modules.multimodal.clip import CLIPModel
from omniembed.modules.multimodal.vision_language import VisionLanguageTransformer, refuse_vision_language
from omniembed.modules.normalize import Normalize
from omniembed.modules.pooling import Pooling
from omniembed.modules.router import Router, read_router_config
from omniembed.modules.sparse import (
    SPARSE_ONLY,
    MaskedLMTransformer,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
)
from omniembed.modules.static_embedding import StaticEmbedding
from omniembed.modules.transformer import Transformer

MODULE_TYPES: dict[str, type[Module]] = {
    cls.__name__: cls for cls in (Transformer, Pooling, Dense, Normalize, CLIPModel)
}
MODULE_TYPES[StaticEmbedding.__name__] = StaticEmbedding
"""The allow-list: class names a ``modules.json`` entry may name. Nothing else is ever imported."""
MODULE_TYPES.update(
    {cls.__name__: cls for cls in (SpladePooling, SparseStaticEmbedding, SparseAutoEncoder, Router)}
)
MODULE_TYPES.update({"Asym": Router, "MLMTransformer": MaskedLMTransformer})  # the reference's older names

ModelFamily = Literal["dense", "sparse"]
""""dense": one embedding per input (``SentenceTransformer``); "sparse": vocabulary-wide sparse vectors
(``SparseEncoder``)."""


class ModelFamilyError(ModelFormatError):
    """A model folder of the other family than the class loading it; ``family`` is the one it holds."""

    def __init__(self, message: str, family: ModelFamily) -> None:
        super().__init__(message)
        self.family = family


INPUT_MODULES = (Transformer, StaticEmbedding)
"""The module types a pipeline may start with: they turn raw inputs into features."""

_KNOWN_NAMESPACES = ("sentence_transformers", "omniembed")
MODEL_CONFIG_FILE = "config_sentence_transformers.json"


SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
"""The similarity functions a model folder may name (``embedding.similarity`` implements each)."""


@dataclass
class ModelConfig:
    """What ``config_sentence_transformers.json`` holds for an embedding model."""

    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None
    truncate_dim: int | None = None

    @classmethod
    def read(cls, folder: Path) -> ModelConfig:
        """Read the file, or return defaults where a folder has none."""
        data = read_json(folder / MODEL_CONFIG_FILE, missing_ok=True)
        similarity = data.get("similarity_fn_name")
        prompts = data.get("prompts") or {}
        if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
            raise ModelFormatError(f"{folder / MODEL_CONFIG_FILE}: prompts must map names to strings")
        return cls(
            prompts=dict(prompts),
            default_prompt_name=data.get("default_prompt_name"),
            # Names we do not score with (say "maxsim" from a multi-vector save) fall back to the default.
            similarity_fn_name=similarity if similarity in SIMILARITY_FN_NAMES else None,
            truncate_dim=data.get("truncate_dim"),
        )

    def write(self, folder: Path) -> None:
        """Write the file with the versions that produced the model."""
        import torch
        import transformers

        from omniembed._version import __version__

        data: dict[str, Any] = {
            "__version__": {
                "omniembed": __version__,
                "transformers": transformers.__version__,
                "pytorch": torch.__version__,
            },
            "model_type": "SentenceTransformer",
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
            "similarity_fn_name": self.similarity_fn_name,
        }
        if self.truncate_dim is not None:
            data["truncate_dim"] = self.truncate_dim
        write_json(folder / MODEL_CONFIG_FILE, data)


def module_class(type_name: str) -> type[Module]:
    """Map a ``modules.json`` type name to one of our classes, refusing anything outside the allow-list.

    >>> module_class("sentence_transformers.models.Pooling").__name__
    'Pooling'
    """
    namespace, _, name = type_name.rpartition(".")
    if namespace.split(".")[0] in _KNOWN_NAMESPACES and name in MODULE_TYPES:
        return MODULE_TYPES[name]
    raise ModelFormatError(
        f"module type {type_name!r} in modules.json is not supported; supported types are "
        f"{sorted(MODULE_TYPES)} from sentence_transformers (arbitrary classes are never imported)"
    )


def load_modules(folder: Path, options: LoadOptions, family: ModelFamily = "dense") -> list[Module]:
    """Build the module pipeline a folder describes; a plain Hugging Face checkpoint gets a default one.

    A folder of the other ``family`` is refused with an error that names the class that loads it.
    """
    entries = read_modules_json(folder)
    if entries is None:
        if family == "sparse":
            return _default_sparse_modules(folder, options)
        return _default_modules(folder, options)  # a ...ForMaskedLM checkpoint too, as the reference does
    types = [entry.type for entry in entries]
    for entry in entries:
        if module_class(entry.type) is Router:
            types += read_router_config(entry.folder)[0].values()
    _refuse_family(folder, family, _names_sparse(folder, types))
    modules = [load_module(entry.type, entry.folder, options) for entry in entries]
    if not isinstance(modules[0], (*INPUT_MODULES, Router, SparseStaticEmbedding)):
        raise ModelFormatError(
            f"{folder / MODULES_FILE}: the first module must be a Transformer, a StaticEmbedding or a Router"
        )
    return modules


def load_module(type_name: str, folder: Path, options: LoadOptions) -> Module:
    """Load one module of the allow-list from its folder (a Router with its routes' modules)."""
    cls = module_class(type_name)
    if cls is Router:
        return _load_router(folder, options)
    if cls is Transformer:
        refuse_vision_language(folder)
        if _transformer_task(folder) == "fill-mask":
            cls = MaskedLMTransformer
    if cls is Transformer and VisionLanguageTransformer.holds_model(folder):
        cls = VisionLanguageTransformer
    elif cls is Transformer and has_media_modalities(folder):
        # the reference's v6 form: one Transformer with text and image (or audio) modalities
        cls = ClapModel if ClapModel.holds_model(folder) else CLIPModel
    return cls.load(folder, options)


def _load_router(folder: Path, options: LoadOptions) -> Router:
    types, structure, parameters = read_router_config(folder)
    loaded = {name: load_module(type_name, folder / name, options) for name, type_name in types.items()}
    routes = {route: [loaded[name] for name in names] for route, names in structure.items()}
    return Router(
        routes,
        default_route=parameters.get("default_route"),
        allow_empty_key=bool(parameters.get("allow_empty_key", True)),
        route_mappings=parameters["route_mappings"],
    )


def _transformer_task(folder: Path) -> str:
    task = read_json(folder / Transformer.config_file_name, missing_ok=True).get("transformer_task")
    return task if isinstance(task, str) else "feature-extraction"


def _names_sparse(folder: Path, types: list[str]) -> bool:
    """Whether a folder holds a sparse model: its config says so, or a module makes sparse vectors."""
    if read_json(folder / MODEL_CONFIG_FILE, missing_ok=True).get("model_type") == "SparseEncoder":
        return True
    sparse_names = {cls.__name__ for cls in SPARSE_ONLY} | {"MLMTransformer"}
    return any(name.rpartition(".")[2] in sparse_names for name in types)


def _is_masked_lm(folder: Path) -> bool:
    architectures = read_json(folder / "config.json", missing_ok=True).get("architectures") or []
    return any(isinstance(name, str) and name.endswith("ForMaskedLM") for name in architectures)


def _refuse_family(folder: Path, family: ModelFamily, sparse: bool) -> None:
    if family == "dense" and sparse:
        raise ModelFamilyError(
            f"{folder} holds a sparse model (vocabulary-wide sparse vectors): load it with "
            "omniembed.SparseEncoder, not SentenceTransformer",
            "sparse",
        )
    if family == "sparse" and not sparse:
        raise ModelFamilyError(
            f"{folder} holds a dense embedding model: load it with omniembed.SentenceTransformer; "
            "SparseEncoder loads SPLADE and inference-free sparse models",
            "dense",
        )


def _default_sparse_modules(folder: Path, options: LoadOptions) -> list[Module]:
    """A plain ``...ForMaskedLM`` checkpoint becomes a SPLADE model with max pooling."""
    _refuse_family(folder, "sparse", _is_masked_lm(folder))
    return [MaskedLMTransformer.load(folder, options), SpladePooling("max")]


def _default_modules(folder: Path, options: LoadOptions) -> list[Module]:
    if StaticEmbedding.holds_model(folder):  # a model2vec folder from before it wrote modules.json
        static = StaticEmbedding.load(folder, options)
        return [static, Normalize()] if StaticEmbedding.normalizes(folder) else [static]
    refuse_vision_language(folder)
    if VisionLanguageTransformer.holds_model(folder):
        vision_language = VisionLanguageTransformer.load(folder, options)
        return [vision_language, Pooling(vision_language.dimension, "lasttoken")]
    if CLIPModel.holds_model(folder):
        return [CLIPModel.load(folder, options)]
    if ClapModel.holds_model(folder):
        return [ClapModel.load(folder, options)]
    transformer = Transformer.load(folder, options)
    if transformer.is_decoder:
        transformer.tokenizer.padding_side = "left"
        return [transformer, Pooling(transformer.dimension, "lasttoken")]
    return [transformer, Pooling(transformer.dimension, "mean")]


def save_modules(modules: list[Module], folder: Path) -> None:
    """Write each module into its numbered folder (the Transformer at the root) and ``modules.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, module in enumerate(modules):
        at_root = isinstance(module, (Transformer, Router)) or (
            index == 0 and isinstance(module, StaticEmbedding)
        )
        path = "" if at_root else f"{index}_{type(module).__name__}"
        module.save(folder / path)
        entries.append({"idx": index, "name": str(index), "path": path, "type": module.reference_type})
    write_json(folder / MODULES_FILE, entries)
