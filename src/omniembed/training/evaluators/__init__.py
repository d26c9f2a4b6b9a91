"""Evaluators: score a model on held-out data during or after training."""

from omniembed.training.evaluators.base import Evaluator
from omniembed.training.evaluators.distill import MSEEvaluator, TranslationEvaluator
from omniembed.training.evaluators.retrieval import InformationRetrievalEvaluator
from omniembed.training.evaluators.sequential import SequentialEvaluator
from omniembed.training.evaluators.similarity import EmbeddingSimilarityEvaluator

__all__ = [
    "EmbeddingSimilarityEvaluator",
    "Evaluator",
    "InformationRetrievalEvaluator",
    "MSEEvaluator",
    "SequentialEvaluator",
    "TranslationEvaluator",
]
