"""``SentenceTransformer``: load a bi-encoder and turn inputs into embeddings."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from omniembed.embedding.common import ScoringAndPrompts
from omniembed.embedding.pool import EncodePool, check_chunk_size, encode_with_pool, start_pool
from omniembed.embedding.pool_worker import TRUNCATION_WARNING, EncodeJob
from omniembed.embedding.quantize import PRECISIONS, Precision, quantize_embeddings
from omniembed.embedding.static import check_static_output, check_static_runtime, static_embeddings
from omniembed.formats.hub import HubOptions
from omniembed.inputs.images import load_images_in
from omniembed.inputs.media import load_media, load_videos_in
from omniembed.inputs.modality import Modality, input_batch, unwrap
from omniembed.modules import (
    INPUT_MODULES,
    Dense,
    Features,
    LoadOptions,
    ModelConfig,
    Module,
    Pooling,
    Router,
    StaticEmbedding,
    Transformer,
    load_modules,
    routing_task,
    save_modules,
)
from omniembed.modules.normalize import unit_length
from omniembed.modules.router import ACTIVE_TASK
from omniembed.runtime.backends import Backend, DType, Network, RuntimeOptions, check_runtime, prepare_network
from omniembed.runtime.placement import prepare_for_inference
from omniembed.runtime.static_int8 import check_calibration_texts
from omniembed.runtime.threads import check_num_threads, torch_threads
from omniembed.runtime.token_batches import token_budget_batches

logger = logging.getLogger(__name__)

OutputValue = Literal["sentence_embedding", "token_embeddings"] | None


class SentenceTransformer(ScoringAndPrompts, nn.Sequential):
    """A bi-encoder: a pipeline of modules that maps each input to one embedding.

    Args:
        model_name_or_path: a local model folder, or a Hugging Face hub id (from the cache, or
            downloaded when online). Leave out to build the model from ``modules``.
        modules: the pipeline to use instead of loading one.
        device: ``"cpu"``, ``"cuda"``, ...; defaults to a GPU when there is one.
        prompts: named prompts (``{"query": "query: "}``), merged over the ones the model saved.
        default_prompt_name: the prompt used when ``encode`` is given none.
        similarity_fn_name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        truncate_dim: keep only the first dimensions of each embedding (Matryoshka models).
        cache_folder: the Hugging Face cache to look in and download to.
        revision: the hub revision (branch, tag or commit).
        local_files_only: never contact the hub.
        token: the hub token for private models.
        trust_remote_code: allow code shipped with the model to run (off by default).
        model_kwargs: passed to ``transformers``' ``from_pretrained`` (``{"use_safetensors": False}``
            opts in to pickle-based ``.bin`` weights).
        tokenizer_kwargs: passed to the tokenizer's ``from_pretrained``.
        allow_urls: fetch image inputs given as http(s) URLs (the ``allow_urls`` attribute; a server
            turns it off so that clients cannot make it fetch arbitrary addresses).
        dtype: ``"float32"`` (exact: the reference library's numbers), or a fast mode:
            ``"int8"`` (int8 weights and activations on the CPU, through oneDNN in torch or in ONNX
            Runtime) or ``"bfloat16"`` (torch or OpenVINO; fast on CPUs with avx512_bf16/AMX and
            on GPUs).
        backend: ``"torch"``, ``"onnx"`` (ONNX Runtime on the CPU; the network is exported once
            into ``runtime_cache_folder``), ``"openvino"`` (OpenVINO on the CPU, from the same
            export), or ``"auto"``: torch (ONNX Runtime for ``int8`` where torch has no oneDNN int8
            linear layer).
        num_threads: CPU threads a forward pass may use; ``None`` uses every core.
        runtime_cache_folder: where exported ONNX files are kept (default ``$OMNIEMBED_CACHE`` or
            ``~/.cache/omniembed``), keyed by a hash of the weights and export options.
        calibration_texts: with ``dtype="int8"``, quantize statically in OpenVINO (NNCF; the
            ``openvino`` extra), attention included, with activation scales fitted once on these
            texts (a few hundred like those you will encode, lengths included) and cached.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        modules: list[Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        allow_urls: bool = True,
        dtype: DType = "float32",
        backend: Backend = "auto",
        num_threads: int | None = None,
        runtime_cache_folder: str | os.PathLike[str] | None = None,
        calibration_texts: Sequence[str] | None = None,
    ) -> None:
        config = ModelConfig()
        if model_name_or_path is not None:
            folder = HubOptions(
                cache_folder=cache_folder, revision=revision, token=token, local_files_only=local_files_only
            ).resolve(model_name_or_path)
            options = LoadOptions.from_arguments(trust_remote_code, model_kwargs, tokenizer_kwargs)
            modules = load_modules(folder, options)
            config = ModelConfig.read(folder)
            logger.info("loaded model from %s", folder)
        if not modules or not _starts_with_an_input(modules[0]):
            raise ValueError(
                "give a model name or path, or modules starting with a Transformer, a StaticEmbedding "
                "or a Router whose routes each start with a Transformer"
            )
        super().__init__(*modules)
        self.name_or_path = None if model_name_or_path is None else os.fspath(model_name_or_path)
        self.prompts = {**config.prompts, **(prompts or {})}
        self.default_prompt_name = default_prompt_name or config.default_prompt_name
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"default_prompt_name {self.default_prompt_name!r} is not one of the prompts "
                f"{sorted(self.prompts)}"
            )
        self.similarity_fn_name = similarity_fn_name or config.similarity_fn_name or "cosine"
        self.truncate_dim = truncate_dim if truncate_dim is not None else config.truncate_dim
        self.allow_urls = allow_urls
        self.model_card: str | None = None
        """Markdown that ``save`` writes as README.md (training sets it); ``None`` writes none."""
        prepare_for_inference(self, device)
        self.runtime = RuntimeOptions(
            backend,
            dtype,
            check_num_threads(num_threads),
            runtime_cache_folder,
            None if calibration_texts is None else check_calibration_texts(calibration_texts),
        )
        check_runtime(self.runtime, self.device)
        self._network: Network | None = None
        if self.is_static:
            check_static_runtime(self.runtime)
            return
        if dtype == "bfloat16" and self.runtime.resolved_backend() == "torch":
            self.to(torch.bfloat16)
        # Weights loaded just above are those of the files, which save() can read again; modules
        # handed in may have been changed since, so they keep their weights.
        if isinstance(self[0], Router) and self.runtime.resolved_backend() != "torch":
            raise ValueError("a model with a Router runs in torch only: load it with backend='torch'")
        self._network = prepare_network(
            self.transformer, self.runtime, release_weights=model_name_or_path is not None
        )

    @property
    def transformer(self) -> Transformer:
        """The first module, which tokenizes and runs the network (with a Router, the first module of
        the route of the ``encode`` call in progress, else of its default route)."""
        module = self[0]
        if isinstance(module, Router):
            module = module.route(ACTIVE_TASK.get())[0]
        assert isinstance(module, Transformer)
        return module

    @property
    def input_module(self) -> Transformer | StaticEmbedding:
        """The module that turns inputs into features: the first (a Transformer or a StaticEmbedding),
        or with a Router the Transformer of the active route."""
        module = self[0]
        if isinstance(module, Router):
            return self.transformer
        assert isinstance(module, INPUT_MODULES)
        return module

    @property
    def is_static(self) -> bool:
        """Whether this is a static token-embedding model (a lookup table, no network)."""
        return isinstance(self[0], StaticEmbedding)

    @property
    def num_threads(self) -> int | None:
        """CPU threads a forward pass may use (``None``: every core)."""
        return self.runtime.num_threads

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the first module (for a static model, as a ``transformers`` tokenizer)."""
        module = self.input_module
        return module.transformers_tokenizer if isinstance(module, StaticEmbedding) else module.tokenizer

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.parameters()).device

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens are truncated."""
        return self.input_module.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.input_module.max_seq_length = value

    @property
    def modalities(self) -> list[Modality]:
        """The kinds of input this model embeds, such as ``["text", "image"]`` for a CLIP model."""
        return list(self.input_module.modalities)

    def supports(self, modality: Modality) -> bool:
        """Return whether the model embeds inputs of this modality."""
        return modality in self.modalities

    def get_sentence_embedding_dimension(self) -> int:
        """Return the width of the embeddings ``encode`` returns (after ``truncate_dim``)."""
        dimension = self.input_module.dimension
        for module in self:
            if isinstance(module, Pooling):
                dimension = module.output_dimension
            elif isinstance(module, Dense):
                dimension = module.out_features
        return min(dimension, self.truncate_dim) if self.truncate_dim else dimension

    get_embedding_dimension = get_sentence_embedding_dimension

    def encode(
        self,
        inputs: Any,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: OutputValue = "sentence_embedding",
        precision: Precision = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | list[str] | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: EncodePool | None = None,
        chunk_size: int | None = None,
        task: str | None = None,
    ) -> Any:
        """Embed one input (giving one vector) or a list (giving a matrix, rows in input order).

        Args:
            inputs: one input or a list: strings, images (PIL images, paths, URLs, arrays, tensors)
                for models that embed images, or one-key dicts such as ``{"image": img}``.
            prompt_name: the name of one of ``prompts`` to put before each input.
            prompt: a prompt string, which wins over ``prompt_name`` and the default prompt.
            batch_size: inputs per forward pass (inputs are sorted by length first).
            show_progress_bar: show a tqdm bar; defaults to on when logging is at INFO or below.
            output_value: ``"sentence_embedding"``, ``"token_embeddings"`` (one matrix per input),
                or ``None`` (every feature per input).
            precision: ``"float32"``, or a quantized type: ``"int8"``, ``"uint8"``, ``"binary"``,
                ``"ubinary"``.
            convert_to_numpy: return numpy arrays (the default); otherwise a list of tensors.
            convert_to_tensor: return one stacked tensor.
            device: run on this device for this call; a list such as ``["cpu", "cpu"]`` encodes in
                that many worker processes (a pool started and stopped for this call).
            normalize_embeddings: scale each embedding to unit length (after ``truncate_dim``).
            truncate_dim: keep the first dimensions of each embedding; defaults to the model's setting.
            pool: encode in the worker processes of a pool from ``start_multi_process_pool``.
            chunk_size: inputs per chunk sent to a pool worker (default: about ten chunks per worker).
            task: the route of a model with a Router (``"query"``, ``"document"``); ``None`` takes its
                default route. ``encode_query`` and ``encode_document`` set it.
        """
        if task is not None and (pool is not None or isinstance(device, (list, tuple))):
            raise ValueError("task= routes inputs in this process only; leave out pool and device lists")
        with routing_task(task):
            items, kinds, single = input_batch(inputs, self.modalities)
            _check_options(batch_size, precision, output_value, truncate_dim)
            if output_value != "sentence_embedding" and any(kind != "text" for kind in kinds):
                raise ValueError(f"output_value {output_value!r} is only available for text inputs")
            prompt = self._resolve_prompt(prompt, prompt_name)
            truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
            check_chunk_size(chunk_size)
            if show_progress_bar is None:
                show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
            if pool is not None or isinstance(device, (list, tuple)):
                job = EncodeJob(prompt, batch_size, output_value, normalize_embeddings, truncate_dim)
                gathered = encode_with_pool(
                    self,
                    items,
                    job,
                    pool=pool,
                    devices=device,
                    chunk_size=chunk_size,
                    progress=show_progress_bar,
                )
                if output_value != "sentence_embedding":
                    return gathered[0] if single else gathered
                result = _convert(gathered, precision, convert_to_numpy, convert_to_tensor)
                return result[0] if single else result
            if device is not None:
                if not isinstance(device, (str, torch.device)):
                    raise ValueError(
                        f"device must be a device such as 'cpu' or a list of them, got {device!r}"
                    )
                check_runtime(self.runtime, torch.device(device))
                self.to(device)
            if self.is_static:
                check_static_output(output_value)
                texts = [unwrap(item, "text") for item in items]
                with torch_threads(self.num_threads):
                    embeddings = _finish(
                        static_embeddings(self, texts, prompt, show_progress_bar),
                        truncate_dim,
                        normalize_embeddings,
                    )
                result = _convert(embeddings, precision, convert_to_numpy, convert_to_tensor)
                return result[0] if single else result
            batches = self._routed_batches(items, kinds, prompt, batch_size, show_progress_bar)
            with torch_threads(self.num_threads):
                if output_value != "sentence_embedding":
                    rows = _rows_in_input_order(batches, len(items), output_value)
                    if output_value is None and truncate_dim is not None:
                        for row in rows:
                            row["sentence_embedding"] = row["sentence_embedding"][:truncate_dim]
                    return rows[0] if single else rows
                embeddings = self._sentence_embeddings(
                    batches, len(items), truncate_dim, normalize_embeddings
                )
            result = _convert(embeddings, precision, convert_to_numpy, convert_to_tensor)
            return result[0] if single else result

    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> EncodePool:
        """Start one worker process per device, for ``encode(..., pool=pool)``.

        Args:
            target_devices: such as ``["cpu", "cpu"]`` or ``["cuda:0", "cuda:1"]``; defaults to every
                GPU, else one CPU worker per core (at most 4). A model on a GPU is moved to the CPU
                first, as the reference library does, to hand its weights to the workers.

        Each CPU worker lets a forward pass use its share of the cores (``num_threads`` if set).
        Stop the pool with ``stop_multi_process_pool(pool)``, or use it as a context manager.
        """
        return start_pool(self, target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: EncodePool) -> None:
        """Stop the workers of a pool from ``start_multi_process_pool``."""
        pool.stop()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model folder, in the format the reference library reads too."""
        if self.runtime.dtype == "int8" and self.runtime.resolved_backend() == "torch":
            raise ValueError(
                "this model's linear layers were quantized to int8 when it was loaded; load it again "
                "with dtype='float32' to save it"
            )
        folder = Path(path)
        save_modules([module for module in self if isinstance(module, Module)], folder)
        config = ModelConfig(
            prompts=self.prompts,
            default_prompt_name=self.default_prompt_name,
            similarity_fn_name=self.similarity_fn_name,
            truncate_dim=self.truncate_dim,
        )
        config.write(folder)
        if self.model_card:
            (folder / "README.md").write_text(self.model_card, encoding="utf-8")
        logger.info("saved model to %s", folder)

    save_pretrained = save

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise ValueError(f"prompt_name {name!r} is not one of the model's prompts {sorted(self.prompts)}")
        return self.prompts[name]

    def _routed_batches(
        self, items: list[Any], kinds: list[Modality], prompt: str | None, batch_size: int, progress: bool
    ) -> Iterator[tuple[np.ndarray, Features]]:
        """Batch each modality on its own path; indices in what is yielded point into ``items``."""
        if all(kind == "text" for kind in kinds) and not self.transformer.chat_inputs:
            return self._batches([unwrap(item, "text") for item in items], prompt, batch_size, progress)
        return self._grouped_batches(items, kinds, prompt, batch_size, progress)

    def _grouped_batches(
        self, items: list[Any], kinds: list[Modality], prompt: str | None, batch_size: int, progress: bool
    ) -> Iterator[tuple[np.ndarray, Features]]:
        groups: dict[Modality, list[int]] = {}
        for index, kind in enumerate(kinds):
            groups.setdefault(kind, []).append(index)
        for kind, positions in groups.items():
            values = [unwrap(items[index], kind) for index in positions]
            if kind == "text" and not self.transformer.chat_inputs:
                inner = self._batches(values, prompt, batch_size, progress)
            else:
                inner = self._media_batches(kind, values, positions, batch_size, prompt)
            for indices, features in inner:
                yield np.asarray(positions)[indices], features

    @torch.inference_mode()
    def _media_batches(
        self, kind: Modality, values: list[Any], positions: list[int], batch_size: int, prompt: str | None
    ) -> Iterator[tuple[np.ndarray, Features]]:
        """Load (lazily, one batch at a time) and forward inputs of one modality that are not plain text
        for a text model: images, pairs, conversations (and texts for chat-template models)."""
        for start in range(0, len(values), batch_size):
            chunk = np.arange(start, min(start + batch_size, len(values)))
            loaded = [self._load(kind, values[i], positions[i]) for i in chunk]
            features = self.transformer.preprocess(kind, loaded, prompt)
            device = self.device
            features = {name: value.to(device) for name, value in features.items()}
            yield chunk, self(features)

    def _load(self, kind: Modality, value: Any, index: int) -> Any:
        if kind in ("audio", "video"):
            return load_media(kind, value, index, self.transformer)
        loaded = load_images_in(kind, value, index=index, allow_urls=self.allow_urls)
        return load_videos_in(kind, loaded, index, self.transformer)

    @torch.inference_mode()
    def _batches(
        self, texts: list[str], prompt: str | None, batch_size: int, progress: bool
    ) -> Iterator[tuple[np.ndarray, Features]]:
        """Forward the inputs longest first; yield each batch's input indices and output features."""
        truncated = [0]
        prompt_length = self.transformer.prompt_length(prompt) if prompt else None
        prompted = [prompt + text for text in texts] if prompt else texts
        device = self.device  # once: it walks the parameters
        with tqdm(total=len(texts), desc="Batches", unit="input", disable=not progress) as bar:
            for indices, features in self._plan(prompted, batch_size, truncated):
                features = {name: value.to(device) for name, value in features.items()}
                if prompt_length is not None:
                    features["prompt_length"] = prompt_length
                yield indices, self._forward(features)
                bar.update(len(indices))
        if truncated[0]:
            logger.warning(TRUNCATION_WARNING, truncated[0], len(texts), self.max_seq_length)

    def _plan(
        self, texts: list[str], batch_size: int, truncated: list[int]
    ) -> Iterator[tuple[np.ndarray, Features]]:
        """Tokenized batches: packed by token budget, or the reference's batches for left padding.

        A left-padded decoder (Qwen3 and friends) shifts each input's positions by the padding in
        its batch, so its embeddings depend on the batch; those keep the reference library's
        batches (sorted by characters, ``batch_size`` per batch) to give the same numbers.
        """
        transformer = self.transformer
        if getattr(self.tokenizer, "padding_side", "right") != "left":
            type_ids = "token_type_ids" in transformer.model_inputs and (
                "token_type_ids" in getattr(self.tokenizer, "model_input_names", ())
            )
            for batch in token_budget_batches(
                self.tokenizer,
                texts,
                batch_size=batch_size,
                max_length=self.max_seq_length,
                type_ids=type_ids,
                truncated=truncated,
            ):
                yield batch.indices, batch.features
            return
        order = np.argsort([-len(text) for text in texts])
        for start in range(0, len(texts), batch_size):
            indices = order[start : start + batch_size]
            features, cut = transformer.tokenize([texts[i] for i in indices])
            truncated[0] += cut
            yield indices, features

    def _forward(self, features: Features) -> Features:
        """Run the pipeline, with the network in the chosen backend."""
        if self._network is None:
            return self(features)  # type: ignore[no-any-return]
        features = self._network(features)
        for module in list(self)[1:]:
            features = module(features)
        return features

    def _sentence_embeddings(
        self,
        batches: Iterator[tuple[np.ndarray, Features]],
        count: int,
        truncate_dim: int | None,
        normalize: bool,
    ) -> Tensor:
        """Gather the sentence embeddings of every batch into one matrix in input order."""
        if count == 0:
            width = self.get_sentence_embedding_dimension()
            return torch.zeros((0, min(width, truncate_dim or width)), dtype=torch.float32)
        order, parts = [], []
        for indices, features in batches:
            order.append(indices)
            parts.append(_finish(features["sentence_embedding"], truncate_dim, normalize).cpu())
        return torch.cat(parts)[torch.from_numpy(np.argsort(np.concatenate(order)))]


def _finish(embeddings: Tensor, truncate_dim: int | None, normalize: bool) -> Tensor:
    """Keep the first ``truncate_dim`` dimensions, then scale to unit length if asked."""
    if truncate_dim is not None:
        embeddings = embeddings[:, :truncate_dim]
    if normalize:
        embeddings = unit_length(embeddings)
    return embeddings


def _check_options(
    batch_size: int, precision: str, output_value: OutputValue, truncate_dim: int | None
) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not supported; use one of {PRECISIONS}")
    if output_value not in ("sentence_embedding", "token_embeddings", None):
        raise ValueError(
            f"output_value {output_value!r} is not supported; "
            "use 'sentence_embedding', 'token_embeddings' or None"
        )
    if truncate_dim is not None and (not isinstance(truncate_dim, int) or truncate_dim < 1):
        raise ValueError(f"truncate_dim must be a positive integer, got {truncate_dim!r}")


def _rows_in_input_order(
    batches: Iterator[tuple[np.ndarray, Features]], count: int, output_value: OutputValue
) -> list[Any]:
    """Split each batch into per-input results and put them back in input order."""
    results: list[Any] = [None] * count
    for indices, features in batches:
        for index, row in zip(indices, _rows(features, len(indices)), strict=True):
            results[index] = _per_input(row, output_value)
    return results


def _rows(features: dict[str, Any], count: int) -> Iterator[dict[str, Any]]:
    """Split batched features into one dict per input."""
    for index in range(count):
        yield {
            name: value[index] if isinstance(value, Tensor) and value.dim() and len(value) == count else value
            for name, value in features.items()
        }


def _per_input(row: dict[str, Any], output_value: OutputValue) -> Any:
    if output_value is None:
        return row
    mask = row["attention_mask"].bool()
    return row["token_embeddings"][mask]


def _convert(embeddings: Tensor, precision: Precision, to_numpy: bool, to_tensor: bool) -> Any:
    """Quantize if asked, then return a tensor, a numpy array or a list of tensors."""
    if precision != "float32":
        embeddings = torch.from_numpy(quantize_embeddings(embeddings, precision))
    if to_tensor:
        return embeddings
    if to_numpy:
        return embeddings.float().numpy() if embeddings.dtype == torch.bfloat16 else embeddings.numpy()
    return list(embeddings)


def _starts_with_an_input(first: Module) -> bool:
    """Whether a pipeline's first module is a Transformer or StaticEmbedding, or a Router whose routes
    each start with a Transformer."""
    if isinstance(first, Router):
        return all(isinstance(route[0], Transformer) for route in first.sub_modules.values())  # type: ignore[index]
    return isinstance(first, INPUT_MODULES)
