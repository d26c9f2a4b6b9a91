"""Vision-language late interaction (ColPali, ColQwen2, ColModernVBert): page images to patch vectors.

These models ship as transformers-native ``*ForRetrieval`` folders (``config.json`` + weights +
processor files), optionally wrapped in the reference library's v6 layout (``modules.json`` with a
Transformer at the root and a ``MultiVectorMask``). The model's own ``forward`` already projects to
``embedding_dim``, L2-normalises and zeroes padding, and its processor adds the visual prompt to
images and the query prefix plus augmentation tokens to texts. The three processors run on the
Pillow image backend, so torchvision is not needed.

Rows kept per input: every position the processor's ``attention_mask`` marks as real (batch
padding dropped). For a ColPali page that is the ``image_seq_length`` image tokens, ``<bos>``, the
visual prompt ("Describe the image.") and the closing newline; for a ColPali query, ``<bos>``,
"Question: ", the query, ten augmentation tokens (the pad token, attended) and a newline. A
ColQwen2 page is its visual prompt template with one ``<|image_pad|>`` per merged patch; a ColQwen2
query is "Query: ", the query, ten augmentation tokens and a newline. A ColModernVBert page is
its "User:" visual prompt with the image tokens between ``<fake_token_around_image>`` markers; a
query is the text and ten ``<end_of_utterance>`` augmentation tokens. Special tokens the tokenizer
itself adds are kept too. A v6 ``MultiVectorMask`` can further drop skiplist tokens or keep only
listed token ids (for example the image token) on the document side.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from omniembed.errors import ModelFormatError
from omniembed.formats.hub import HubOptions
from omniembed.formats.modules_json import read_modules_json
from omniembed.inputs.images import load_image, require_pillow
from omniembed.inputs.modality import input_batch, unwrap
from omniembed.late_interaction.config import LateInteractionConfig, allowed_modules
from omniembed.late_interaction.encoder import MultiVectorEncoder, Task, _skiplist_ids
from omniembed.modules.module import read_json
from omniembed.runtime.placement import prepare_for_inference

logger = logging.getLogger(__name__)

# model_type -> (model class, processor class) in transformers; only families whose processor runs
# on the Pillow backend (no torchvision) and that are tested here.
FAMILIES = {
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
    "colmodernvbert": ("ColModernVBertForRetrieval", "ColModernVBertProcessor"),
}


def is_vision_retrieval_folder(folder: Path) -> bool:
    """Whether ``config.json`` names a transformers ``*ForRetrieval`` architecture."""
    architectures = read_json(folder / "config.json", missing_ok=True).get("architectures") or []
    return any(str(name).endswith("ForRetrieval") for name in architectures)


def _family(folder: Path) -> tuple[str, str]:
    config = read_json(folder / "config.json", missing_ok=True)
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise ModelFormatError(
            f"{folder} holds a {model_type!r} late-interaction retriever "
            f"({', '.join(config.get('architectures') or [])}); supported: {sorted(FAMILIES)} "
            "(ColPali, ColQwen2, ColModernVBert)"
        )
    return FAMILIES[model_type]


def _mask_settings(folder: Path) -> dict[str, Any]:
    """The v6 ``MultiVectorMask`` settings, or the defaults (nothing dropped) for a bare folder."""
    entries = read_modules_json(folder)
    if entries is None:
        return {}
    modules = allowed_modules(folder, entries)
    for name, _ in modules:
        if name not in ("Transformer", "MultiVectorMask"):
            raise ModelFormatError(
                f"{folder}: module {name!r} does not belong in a vision retriever folder, whose "
                "model projects and normalises by itself"
            )
    masks = [path for name, path in modules if name == "MultiVectorMask"]
    return read_json(masks[0] / "config.json", missing_ok=True) if masks else {}


class VisionMultiVectorEncoder(MultiVectorEncoder):
    """A ``MultiVectorEncoder`` for ColPali / ColQwen2 / ColModernVBert: images and texts to token matrices.

    ``MultiVectorEncoder(folder)`` returns one of these for a ``*ForRetrieval`` folder. Inputs may
    be texts (always rendered as queries by the model's processor, as the model was trained) or
    images (PIL images, paths, ``data:`` URIs, numpy arrays, tensors). Arguments are those of
    ``MultiVectorEncoder``; ``tokenizer_kwargs`` go to the processor.
    """

    @classmethod
    def loads_folder(cls, folder: Path) -> bool:
        """A transformers ``*ForRetrieval`` folder (ColPali, ColQwen2, ColModernVBert)."""
        return is_vision_retrieval_folder(folder)

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: str | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        nn.Module.__init__(self)
        import transformers

        self.name_or_path = os.fspath(model_name_or_path)
        hub = HubOptions(
            cache_folder=cache_folder, revision=revision, token=token, local_files_only=local_files_only
        )
        folder = self._model_folder(model_name_or_path, hub)
        model_name, processor_name = _family(folder)
        mask = _mask_settings(folder)
        self.config = LateInteractionConfig(
            prompts={},
            skiplist_words=list(mask.get("skiplist_words") or []),
            skiplist_tasks=list(mask.get("skiplist_tasks") or ["document"]),
        )
        self.keep_only_token_ids: list[int] | None = mask.get("keep_only_token_ids")
        require_pillow()  # the processors' image side runs on Pillow: a clear MissingExtraError
        try:
            self.processor = getattr(transformers, processor_name).from_pretrained(
                folder, backend="pil", **(tokenizer_kwargs or {})
            )
        except (OSError, ValueError) as error:
            raise ModelFormatError(f"could not load the processor in {folder}: {error}") from error
        kwargs = {"trust_remote_code": trust_remote_code, **(model_kwargs or {})}
        self.model = getattr(transformers, model_name).from_pretrained(folder, **kwargs)
        self.projections = nn.ModuleList()
        self._skip_ids = _skiplist_ids(self.tokenizer, self.config.skiplist_words)
        prepare_for_inference(self, device)
        logger.info("loaded vision late-interaction model from %s", folder)

    @property
    def tokenizer(self) -> Any:
        """The processor's tokenizer."""
        return self.processor.tokenizer

    def get_embedding_dimension(self) -> int:
        """Return the width of each token vector (the model's ``embedding_dim``)."""
        return int(self.model.config.embedding_dim)

    def encode(
        self,
        inputs: Any,
        *,
        task: Task = None,
        prompt: str | None = None,
        batch_size: int = 32,
        convert_to_numpy: bool = True,
        show_progress_bar: bool | None = None,
    ) -> Any:
        """Return one (tokens x dim) matrix per input (one matrix for one input).

        Images become patch plus visual-prompt vectors; texts become query vectors (with the
        processor's query prefix and augmentation tokens, whatever ``task`` says). ``prompt`` is
        put before each text. ``task`` picks which rows a v6 ``MultiVectorMask`` keeps.
        """
        items, kinds, single = input_batch(inputs, ["text", "image"])
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if task not in ("query", "document", None):
            raise ValueError(f"task must be 'query', 'document' or None, got {task!r}")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        prepared = [
            load_image(unwrap(item, kind), index=i)
            if kind == "image"
            else (prompt or "") + unwrap(item, kind)
            for i, (item, kind) in enumerate(zip(items, kinds, strict=True))
        ]
        results: list[Any] = [None] * len(items)
        for indices, matrices in self._vision_batches(prepared, kinds, task, batch_size, show_progress_bar):
            for index, matrix in zip(indices, matrices, strict=True):
                results[index] = matrix.numpy() if convert_to_numpy else matrix
        return results[0] if single else results

    @torch.inference_mode()
    def _vision_batches(
        self, items: list[Any], kinds: list[Any], task: Task, batch_size: int, progress: bool
    ) -> Iterator[tuple[list[int], list[Tensor]]]:
        groups = [[i for i, kind in enumerate(kinds) if kind == wanted] for wanted in ("text", "image")]
        chunks = [group[s : s + batch_size] for group in groups for s in range(0, len(group), batch_size)]
        for chunk in tqdm(chunks, desc="Batches", disable=not progress):
            values = [items[i] for i in chunk]
            # process_images / process_queries add each family's visual prompt and query template.
            if kinds[chunk[0]] == "text":
                batch = self.processor.process_queries(text=values, return_tensors="pt")
            else:
                batch = self.processor.process_images(images=values, return_tensors="pt")
            # ColPali adds training ``labels`` for images; ColQwen2 adds ``image_grid_thw``.
            features = {name: value.to(self.device) for name, value in batch.items() if name != "labels"}
            if "pixel_values" in features:
                features["pixel_values"] = features["pixel_values"].to(self.model.dtype)
            embeddings = self.model(**features).embeddings
            keep = self._keep(features, task)
            yield chunk, [row[mask].float().cpu() for row, mask in zip(embeddings, keep, strict=True)]

    def _keep(self, features: dict[str, Tensor], task: Task) -> Tensor:
        """The scoring mask: real tokens, minus skiplist tokens, restricted to kept ids on documents."""
        keep = features["attention_mask"].bool()
        ids = features["input_ids"]
        if self._skip_ids is not None and (task or "document") in self.config.skiplist_tasks:
            keep &= ~torch.isin(ids, self._skip_ids.to(ids.device))
        if task != "query" and self.keep_only_token_ids:
            keep &= torch.isin(ids, torch.tensor(self.keep_only_token_ids, device=ids.device))
        return keep
