"""A Hugging Face text encoder (or decoder) that turns text into token embeddings."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from omniembed.errors import ModelFormatError
from omniembed.modules.module import Features, LoadOptions, Module, pickle_refused, read_json, write_json

if TYPE_CHECKING:
    from torch import Tensor

# Names the Transformer config has carried over the reference library's releases, newest first.
CONFIG_FILE_NAMES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
_RENAMED_KEYS = {
    "model_args": "model_kwargs",
    "tokenizer_args": "tokenizer_kwargs",
    "processor_kwargs": "tokenizer_kwargs",
    "config_args": "config_kwargs",
}
_TEXT_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Transformer(Module):
    """Tokenize text and run a ``transformers`` model; adds ``token_embeddings`` to the features.

    Args:
        model: the loaded ``transformers`` model (``AutoModel``).
        tokenizer: its tokenizer; ``tokenizer.model_max_length`` is the truncation length.
        do_lower_case: lowercase inputs before tokenizing (for tokenizers that do not already).
    """

    config_file_name = "sentence_bert_config.json"
    reference_type = "sentence_transformers.base.modules.transformer.Transformer"
    modalities: ClassVar[list[Any]] = ["text"]
    chat_inputs: ClassVar[bool] = False
    task: ClassVar[str] = "feature-extraction"
    """The ``transformer_task`` this class loads (a subclass may load another, such as ``fill-mask``)."""

    def __init__(self, model: Any, tokenizer: Any, do_lower_case: bool = False) -> None:
        super().__init__()
        self.auto_model = model
        self.tokenizer = tokenizer
        self.do_lower_case = do_lower_case
        if do_lower_case:
            _add_lowercase(tokenizer)
        parameters = inspect.signature(model.forward).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        self._inputs = tuple(name for name in _MODEL_INPUTS if takes_any or name in parameters)
        self._pass_use_cache = "use_cache" in parameters
        self.fast_forward: Callable[[Features], Tensor | None] | None = None
        """A faster way to run ``auto_model`` that the runtime may install: it returns the last
        hidden state, or ``None`` to take the transformers forward pass for this call."""
        self.reload_model: Callable[[], Any] | None = None
        """Loads ``auto_model`` again from its files (set by ``load``)."""
        self.weights_released = False

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens are truncated."""
        return int(self.tokenizer.model_max_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_seq_length must be a positive number of tokens, got {value}")
        self.tokenizer.model_max_length = value

    @property
    def dimension(self) -> int:
        """Width of the token embeddings."""
        return int(self.auto_model.config.get_text_config().hidden_size)

    @property
    def model_inputs(self) -> tuple[str, ...]:
        """The tokenizer outputs the network takes, in the order it takes them."""
        return self._inputs

    @property
    def passes_use_cache(self) -> bool:
        """Whether the network takes ``use_cache`` (which encoding turns off)."""
        return self._pass_use_cache

    @property
    def is_decoder(self) -> bool:
        """Whether the model was trained for causal language modelling (last-token pooling suits it)."""
        config = self.auto_model.config
        architectures = getattr(config, "architectures", None) or []
        causal = bool(getattr(config, "is_causal", True))
        return bool(architectures) and architectures[0].endswith("ForCausalLM") and causal

    def tokenize(self, texts: list[str]) -> tuple[Features, int]:
        """Tokenize a batch; return the model inputs and how many texts were truncated."""
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=self.max_seq_length,
            return_tensors="pt",
        )
        truncated = sum(1 for encoding in batch.encodings or () if encoding.overflowing)
        return {name: batch[name] for name in self._inputs if name in batch}, truncated

    def preprocess(
        self, modality: str | tuple[str, ...], values: list[Any], prompt: str | None = None
    ) -> Features:
        """Turn loaded non-text inputs into model inputs; a text model takes none."""
        raise ValueError(f"{type(self).__name__} embeds {self.modalities}, not {modality}")

    def prompt_length(self, prompt: str) -> int:
        """Count the tokens a prompt takes at the start of an input (its trailing special token excluded)."""
        ids = self.tokenizer(prompt, truncation=True, max_length=self.max_seq_length)["input_ids"]
        if ids and ids[-1] in self.tokenizer.all_special_ids:
            return len(ids) - 1
        return len(ids)

    def release_weights(self) -> None:
        """Free the network's weights, for a runtime that holds its own copy of them (ONNX Runtime,
        OpenVINO); ``weights_released`` says whether they were.

        Only a network loaded from files is released, since ``save`` loads it again from them:
        call it only while the weights are those of the files.
        Each parameter keeps its shape, dtype and device, over a single zero.
        """
        if self.reload_model is None:
            return
        with torch.no_grad():
            for parameter in self.auto_model.parameters():
                parameter.data = parameter.new_zeros(()).expand(parameter.shape)
        self.weights_released = True

    def forward(self, features: Features) -> Features:
        """Run the model and store its last hidden state as ``token_embeddings``."""
        if self.weights_released:
            raise RuntimeError(
                "this network runs in ONNX Runtime or OpenVINO, which hold its weights, and its torch "
                "copy was freed: call encode(), or load the model with backend='torch' to run it in torch"
            )
        inputs = {name: features[name] for name in self._inputs if name in features}
        if self.fast_forward is not None:
            hidden = self.fast_forward(inputs)
            if hidden is not None:
                features["token_embeddings"] = hidden
                return features
        if self._pass_use_cache:
            inputs["use_cache"] = False
        output = self.auto_model(**inputs, return_dict=True)
        features["token_embeddings"] = output.last_hidden_state
        return features

    def get_config_dict(self) -> dict[str, Any]:
        """Return the config in the reference library's current shape (readable by older ones too)."""
        return {
            "max_seq_length": self.max_seq_length,
            "do_lower_case": self.do_lower_case,
            "transformer_task": "feature-extraction",
            "modality_config": _TEXT_MODALITY,
            "module_output_name": "token_embeddings",
        }

    def __repr__(self) -> str:
        summary = {
            "max_seq_length": self.max_seq_length,
            "do_lower_case": self.do_lower_case,
            "architecture": type(self.auto_model).__name__,
        }
        return f"Transformer({summary})"

    def save(self, folder: Path) -> None:
        """Write the model, its tokenizer and ``sentence_bert_config.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        model = self.auto_model
        if self.weights_released and self.reload_model is not None:
            model = self.reload_model()  # the freed weights, from the files they came from
        model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        write_json(folder / self.config_file_name, self.get_config_dict())

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Transformer:
        """Load model and tokenizer from a folder in any of the reference library's layouts."""
        config = _read_module_config(folder, task=cls.task)
        if not (folder / "config.json").is_file():
            raise ModelFormatError(f"model file {folder / 'config.json'} is missing")
        model = _load_model(folder, options, config, cls.task)
        tokenizer = _load_tokenizer(folder, options, config)
        module = cls(model, tokenizer, do_lower_case=bool(config.get("do_lower_case", False)))
        module.reload_model = functools.partial(_load_model, folder, options, config, cls.task)
        set_max_length(module, config, options)
        return module


def set_max_length(module: Transformer, config: dict[str, Any], options: LoadOptions) -> None:
    """Set the truncation length the way the reference library does.

    An explicit tokenizer ``model_max_length`` wins, then the folder's ``max_seq_length``, then the
    tokenizer's own limit capped by the position table.
    """
    if "model_max_length" in {**config["tokenizer_kwargs"], **options.tokenizer_kwargs}:
        return
    if config.get("max_seq_length"):
        module.max_seq_length = int(config["max_seq_length"])
        return
    positions = getattr(module.auto_model.config.get_text_config(), "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        module.max_seq_length = min(module.max_seq_length, positions)


_TASK_OUTPUTS = {"feature-extraction": "last_hidden_state", "fill-mask": "logits"}
"""The model output each ``transformer_task`` we load reads (as ``token_embeddings``)."""


def _read_module_config(
    folder: Path, *, text_only: bool = True, task: str = "feature-extraction"
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in CONFIG_FILE_NAMES:
        config = read_json(folder / name, missing_ok=True)
        if config:
            break
    for old, new in _RENAMED_KEYS.items():
        if old in config:
            config[new] = config.pop(old)
    for key in ("model_kwargs", "tokenizer_kwargs", "config_kwargs"):
        config[key] = {k: v for k, v in (config.get(key) or {}).items() if _safe_folder_option(k, v)}
    found = config.get("transformer_task", task)
    if found != task:
        hint = (
            "; it is a sparse (SPLADE) model: load it with omniembed.SparseEncoder"
            if found == "fill-mask"
            else ""
        )
        raise ModelFormatError(f"{folder}: transformer_task {found!r} is not supported for embeddings{hint}")
    expected = {"text": {"method": "forward", "method_output_name": _TASK_OUTPUTS[task]}}
    modalities = config.get("modality_config", expected)
    if not text_only:
        return config
    if set(modalities) != {"text"}:
        raise ModelFormatError(
            f"{folder}: modalities {sorted(modalities)} are not supported yet; only text models load"
        )
    output = config.get("module_output_name", "token_embeddings")
    if modalities["text"] != expected["text"] or output != "token_embeddings":
        raise ModelFormatError(
            f"{folder}: text modality {modalities['text']} with output {output!r} is not supported; "
            f"only forward -> {_TASK_OUTPUTS[task]} -> token_embeddings is"
        )
    return config


# Settings a model folder may not make for itself: running code, or fetching kernels from the hub.
_UNSAFE_FOLDER_OPTIONS = {"trust_remote_code", "use_kernels", "allow_all_kernels", "kernel_config"}


def _safe_folder_option(name: str, value: Any) -> bool:
    if name in _UNSAFE_FOLDER_OPTIONS:
        return False
    return not (name == "attn_implementation" and isinstance(value, str) and "/" in value)


def _load_model(
    folder: Path, options: LoadOptions, config: dict[str, Any], task: str = "feature-extraction"
) -> Any:
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    auto_class = AutoModelForMaskedLM if task == "fill-mask" else AutoModel
    pickled = folder / "pytorch_model.bin"
    if not options.allow_pickle and pickled.is_file() and not list(folder.glob("*.safetensors")):
        raise pickle_refused(pickled)
    kwargs = {**config["model_kwargs"], **options.model_kwargs}
    # With the pickle opt-in, let transformers prefer safetensors and fall back to .bin files.
    kwargs["use_safetensors"] = None if options.allow_pickle else True
    try:
        hf_config = AutoConfig.from_pretrained(
            folder, trust_remote_code=options.trust_remote_code, **config["config_kwargs"]
        )
        return auto_class.from_pretrained(
            folder, config=hf_config, trust_remote_code=options.trust_remote_code, **kwargs
        )
    except SafetensorError as error:
        raise ModelFormatError(f"weights file {_weights_file(folder)} is corrupt: {error}") from error
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"could not load the model in {folder}: {error}") from error


def _weights_file(folder: Path) -> Path:
    shards = sorted(folder.glob("model*.safetensors"))
    return shards[0] if len(shards) == 1 else folder / "model.safetensors"


def _load_tokenizer(folder: Path, options: LoadOptions, config: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelFormatError(
            f"no tokenizer in {folder}: expected one of {', '.join(TOKENIZER_FILES)}; "
            "save the tokenizer next to the model with tokenizer.save_pretrained(folder)"
        )
    kwargs = {**config["tokenizer_kwargs"], **options.tokenizer_kwargs}
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            folder, trust_remote_code=options.trust_remote_code, **kwargs
        )
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"could not load the tokenizer in {folder}: {error}") from error
    if not getattr(tokenizer, "is_fast", False):
        raise ModelFormatError(f"the tokenizer in {folder} has no fast (tokenizer.json) implementation")
    return tokenizer


def _add_lowercase(tokenizer: Any) -> None:
    from tokenizers.normalizers import Lowercase, Sequence

    backend = tokenizer.backend_tokenizer
    current = backend.normalizer
    inner: list[Any] = list(current) if isinstance(current, Sequence) else []  # type: ignore[call-overload]
    if isinstance(current, Lowercase) or any(isinstance(step, Lowercase) for step in inner):
        return
    steps = [Lowercase()]
    if isinstance(current, Sequence):
        steps += inner
    elif current is not None:
        steps.append(current)
    backend.normalizer = Sequence(steps)
