"""Train rerankers: ``CrossEncoderTrainer``, its losses and ``RerankingEvaluator``.

``CrossEncoderTrainer`` needs the ``train`` extra (``pip install 'omniembed[train]'``); the losses
and the evaluator need only torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omniembed.training.rerank.evaluator import RerankingEvaluator
from omniembed.training.rerank.losses import (
    BinaryCrossEntropyLoss,
    ListNetLoss,
    MultipleNegativesRankingLoss,
    RerankLoss,
)

if TYPE_CHECKING:
    from omniembed.training.rerank.trainer import CrossEncoderTrainer

__all__ = [
    "BinaryCrossEntropyLoss",
    "CrossEncoderTrainer",
    "ListNetLoss",
    "MultipleNegativesRankingLoss",
    "RerankLoss",
    "RerankingEvaluator",
]


def __getattr__(name: str) -> Any:
    if name != "CrossEncoderTrainer":
        raise AttributeError(f"module 'omniembed.training.rerank' has no attribute {name!r}")
    from omniembed.training import Trainer  # raises MissingExtraError without the train extra

    del Trainer
    from omniembed.training.rerank.trainer import CrossEncoderTrainer

    return CrossEncoderTrainer
