"""SequentialEvaluator: run several evaluators and report all their metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from omniembed.training.evaluators.base import Evaluator

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer


class SequentialEvaluator(Evaluator):
    """Run ``evaluators`` in order; the result holds every metric plus ``sequential_score``, which
    ``main_score_function`` makes from each evaluator's primary metric (default: the last one's).
    """

    primary_metric = "sequential_score"

    def __init__(
        self,
        evaluators: Iterable[Evaluator],
        main_score_function: Callable[[list[float]], float] = lambda scores: scores[-1],
    ) -> None:
        self.evaluators = list(evaluators)
        if not self.evaluators:
            raise ValueError("give SequentialEvaluator at least one evaluator")
        self.main_score_function = main_score_function

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        """Every evaluator's metrics, then ``sequential_score``."""
        results: dict[str, float] = {}
        primaries = []
        for evaluator in self.evaluators:
            metrics = evaluator(model, output_path, epoch, steps)
            primaries.append(
                metrics[evaluator.primary_metric_name]
                if evaluator.primary_metric
                else next(iter(metrics.values()))
            )
            results.update(metrics)
        results["sequential_score"] = float(self.main_score_function(primaries))
        return results
