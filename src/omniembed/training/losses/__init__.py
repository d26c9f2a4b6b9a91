"""Training losses: each takes the model it trains and a batch's tokenized columns (and labels).

Which columns a loss takes (``(anchor, positive[, negative...])``, ``(sentence1, sentence2,
score)``, ...) is in its ``columns``; the trainer checks a dataset against it before training.
"""

from omniembed.training.losses.base import ColumnSpec, EmbeddingLoss
from omniembed.training.losses.cached import CachedMultipleNegativesRankingLoss
from omniembed.training.losses.distill import MarginMSELoss, MSELoss
from omniembed.training.losses.matryoshka import MatryoshkaLoss
from omniembed.training.losses.pairs import AnglELoss, ContrastiveLoss, CoSENTLoss, CosineSimilarityLoss
from omniembed.training.losses.ranking import (
    MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss,
)
from omniembed.training.losses.triplet import TripletLoss

__all__ = [
    "AnglELoss",
    "CachedMultipleNegativesRankingLoss",
    "CoSENTLoss",
    "ColumnSpec",
    "ContrastiveLoss",
    "CosineSimilarityLoss",
    "EmbeddingLoss",
    "MSELoss",
    "MarginMSELoss",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "TripletLoss",
]
