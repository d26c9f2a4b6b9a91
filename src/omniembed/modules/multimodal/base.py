"""What the media towers share: loading, saving and the module config of a Transformer with a media
processor, and the text path of a dual encoder (one text tower and one media tower, one space)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from torch import Tensor

from omniembed.errors import MissingExtraError, ModelFormatError
from omniembed.modules.module import Features, LoadOptions, read_json
from omniembed.modules.transformer import (
    Transformer,
    _load_model,
    _load_tokenizer,
    _read_module_config,
    set_max_length,
)

PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
"""Where a model folder keeps its image processor or feature extractor config."""

ModalityConfig = dict[str, dict[str, str]]
M = TypeVar("M", bound="MultimodalTransformer")


class MultimodalTransformer(Transformer):
    """A Transformer whose inputs also go through a media processor (image processor, feature extractor).

    Subclasses name the ``config.json`` model types they load, the module config they save and how to
    load their processor; ``load`` and ``save`` are the same for all of them.

    Args:
        model: the ``transformers`` model.
        tokenizer: its tokenizer.
        processor: its media processor (``None`` for an image processor when Pillow is missing).
        processor_folder: where the processor config was read from, copied on ``save`` when
            ``processor`` is ``None``.
    """

    model_types: ClassVar[tuple[str, ...]]
    """``config.json`` model types that load as this module."""
    description: ClassVar[str]
    """What the module is, for error messages ("a text+image model")."""
    modality_config: ClassVar[ModalityConfig]
    """The ``modality_config`` written to (and, for dual encoders, expected in) the module config."""
    module_output_name: ClassVar[str]

    def __init__(
        self, model: Any, tokenizer: Any, processor: Any, processor_folder: Path | None = None
    ) -> None:
        super().__init__(model, tokenizer)
        self.processor = processor
        self._processor_folder = processor_folder

    def get_config_dict(self) -> dict[str, Any]:
        """Return the config in the reference library's v6 shape (a multimodal Transformer)."""
        return {
            "transformer_task": "feature-extraction",
            "modality_config": self.modality_config,
            "module_output_name": self.module_output_name,
        }

    def save(self, folder: Path) -> None:
        """Write model, tokenizer, processor config and ``sentence_bert_config.json``."""
        super().save(folder)
        if self.processor is not None:
            self.processor.save_pretrained(folder)
        elif self._processor_folder is not None:
            for name in PROCESSOR_FILES:
                source = self._processor_folder / name
                if source.is_file() and source.resolve() != (folder / name).resolve():
                    shutil.copyfile(source, folder / name)

    @classmethod
    def load(cls: type[M], folder: Path, options: LoadOptions) -> M:
        """Load a model folder, bare or in the reference library's module form."""
        config = _read_module_config(folder, text_only=False)
        cls.check_modalities(folder, config)
        model_type = read_json(folder / "config.json").get("model_type")
        if model_type not in cls.model_types:
            raise ModelFormatError(
                f"{folder}: model type {model_type!r} does not load as {cls.description}; "
                f"supported: {list(cls.model_types)}"
            )
        model = _load_model(folder, options, config)
        tokenizer = _load_tokenizer(folder, options, config)
        cls.check_tokenizer(folder, tokenizer)
        module = cls(model, tokenizer, cls.load_processor(folder), processor_folder=folder)
        set_max_length(module, config, options)
        return module

    @classmethod
    def check_modalities(cls, folder: Path, config: dict[str, Any]) -> None:
        """Refuse a module config this class cannot honour; the default accepts any."""

    @classmethod
    def check_tokenizer(cls, folder: Path, tokenizer: Any) -> None:
        """Refuse a tokenizer this class cannot use; the default accepts any."""

    @classmethod
    def load_processor(cls, folder: Path) -> Any:
        """Load the media processor from the folder."""
        raise NotImplementedError

    @classmethod
    def holds_model(cls, folder: Path) -> bool:
        """Whether a folder's ``config.json`` names one of ``model_types``."""
        return read_json(folder / "config.json", missing_ok=True).get("model_type") in cls.model_types

    def pillow_processor(self) -> Any:
        """Return the image processor, or raise the error that names the missing extra."""
        if self.processor is None:
            raise MissingExtraError(
                "encoding images needs Pillow, which is not installed; install it with "
                "pip install 'omniembed[image]'"
            )
        return self.processor


class DualEncoder(MultimodalTransformer):
    """A text tower and a media tower projecting into one space (CLIP, CLAP).

    Texts go through ``get_text_features``; features holding ``media_input`` go to ``embed_media``,
    the one method each tower implements; ``modality_config`` and ``description`` follow from
    ``medium``. Adds ``sentence_embedding`` to the features; the embeddings are not normalised, as in
    the reference library.
    """

    module_output_name = "sentence_embedding"
    medium: ClassVar[str]
    """What the media tower embeds (``image``, ``audio``); it names the tower's ``get_*_features``."""
    media_input: ClassVar[str]
    """The feature that marks a batch of media (``pixel_values``, ``input_features``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.description = f"a text+{cls.medium} model"
        cls.modality_config = {
            name: {"method": f"get_{name}_features", "method_output_name": "pooler_output"}
            for name in ("text", cls.medium)
        }

    @property
    def dimension(self) -> int:
        """Width of the shared embedding space."""
        return int(self.auto_model.config.projection_dim)

    def forward(self, features: Features) -> Features:
        """Run the media tower on a batch of media, else the text tower on ``input_ids``."""
        if self.media_input in features:
            features["sentence_embedding"] = self.embed_media(features)
            return features
        inputs = {name: features[name] for name in self._inputs if name in features}
        features["sentence_embedding"] = pooler_output(self.auto_model.get_text_features(**inputs))
        return features

    def embed_media(self, features: Features) -> Tensor:
        """Return one embedding per input of a preprocessed batch of media."""
        raise NotImplementedError

    @classmethod
    def check_modalities(cls, folder: Path, config: dict[str, Any]) -> None:
        """Refuse a module config whose methods or output differ from ``modality_config``."""
        modalities = config.get("modality_config")
        if modalities is None:
            return  # a bare folder, or the legacy CLIPModel module folder, carries no module config
        methods = {name: (entry or {}).get("method") for name, entry in modalities.items()}
        expected = {name: entry["method"] for name, entry in cls.modality_config.items()}
        output = config.get("module_output_name", "sentence_embedding")
        if methods != expected or output != "sentence_embedding":
            raise ModelFormatError(
                f"{folder}: modality config {modalities} with output {output!r} is not supported; "
                f"{cls.description} maps {expected} to sentence_embedding"
            )


def pooler_output(output: Any) -> Tensor:
    """Return the pooled embeddings of a ``get_*_features`` call (a tensor in older transformers)."""
    return getattr(output, "pooler_output", output)  # type: ignore[no-any-return]


def load_image_processor(folder: Path, backend: str = "pil") -> Any:
    """Load the image processor with the Pillow backend (or ``backend="torchvision"``), or ``None``
    without Pillow."""
    _require_processor_config(folder, "image processor")
    try:
        import PIL  # noqa: F401 (the processor needs it; probe before transformers does)
    except ImportError:
        return None
    from transformers import AutoImageProcessor

    return _from_pretrained(AutoImageProcessor, folder, "image processor", backend=backend)


def load_feature_extractor(folder: Path) -> Any:
    """Load the audio feature extractor."""
    _require_processor_config(folder, "feature extractor")
    from transformers import AutoFeatureExtractor

    return _from_pretrained(AutoFeatureExtractor, folder, "feature extractor")


def has_media_modalities(folder: Path) -> bool:
    """Whether a Transformer module folder's config lists modalities other than text."""
    modalities = read_json(folder / "sentence_bert_config.json", missing_ok=True).get("modality_config")
    return isinstance(modalities, dict) and bool(set(modalities) - {"text"})


def _require_processor_config(folder: Path, what: str) -> None:
    if not any((folder / name).is_file() for name in PROCESSOR_FILES):
        raise ModelFormatError(f"no {what} config in {folder}: expected one of {', '.join(PROCESSOR_FILES)}")


def _from_pretrained(auto_class: Any, folder: Path, what: str, **kwargs: Any) -> Any:
    # auto_class is Any: transformers types from_pretrained in some releases and not in others.
    try:
        return auto_class.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"could not load the {what} in {folder}: {error}") from error
