"""Write a classifier ``CrossEncoder`` as a model folder in the reference library's current layout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from omniembed.modules.module import write_json

if TYPE_CHECKING:
    from omniembed.rerank.cross_encoder import CrossEncoder

TRANSFORMER_TYPE = "sentence_transformers.base.modules.transformer.Transformer"
SEQUENCE_CLASSIFICATION = {
    "transformer_task": "sequence-classification",
    "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
    "module_output_name": "scores",
}


def activation_path(activation: Any) -> str:
    """The activation's class path as the folder stores it (``torch.nn.modules.activation.Sigmoid``)."""
    cls = type(activation)
    if not isinstance(activation, nn.Module) or not cls.__module__.startswith("torch."):
        raise ValueError(
            f"activation_fn {activation!r} cannot be saved: a folder names a torch.nn activation "
            "(Sigmoid, Identity, Tanh, ReLU); set model.activation_fn to one of them before saving"
        )
    return f"{cls.__module__}.{cls.__name__}"


def save_cross_encoder(model: CrossEncoder, path: str | os.PathLike[str]) -> None:
    """Write ``model``'s network, tokenizer, ``modules.json``, its config and card to ``path``."""
    import torch
    import transformers

    from omniembed._version import __version__
    from omniembed.modules.scorers import ClassifierScorer

    if not isinstance(model.scorer, ClassifierScorer):
        raise ValueError(
            "only sequence-classification cross-encoders can be saved; this is a causal-LM reranker, "
            "save its network with model.scorer.model.save_pretrained(path)"
        )
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    model.scorer.model.save_pretrained(str(folder))
    model.tokenizer.save_pretrained(str(folder))
    write_json(folder / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": TRANSFORMER_TYPE}])
    write_json(folder / "sentence_bert_config.json", SEQUENCE_CLASSIFICATION)
    versions = {
        "omniembed": __version__,
        "transformers": transformers.__version__,
        "pytorch": torch.__version__,
    }
    config = {
        "__version__": versions,
        "activation_fn": activation_path(model.activation_fn),
        "default_prompt_name": None,
        "model_type": "CrossEncoder",
        "prompts": {},
    }
    write_json(folder / "config_sentence_transformers.json", config)
    if model.model_card:
        (folder / "README.md").write_text(model.model_card, encoding="utf-8")
