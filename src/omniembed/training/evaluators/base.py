"""What every evaluator shares: its name, its primary metric, and a CSV log of its results."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omniembed.embedding.encoder import SentenceTransformer


class Evaluator:
    """Score a model on held-out data; calling it returns ``{metric: value}`` with names prefixed
    by ``name``. ``primary_metric`` names the one to select checkpoints by."""

    name: str = ""
    primary_metric: str = ""
    greater_is_better: bool = True
    csv_file: str = ""

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: float = -1, steps: int = -1
    ) -> dict[str, float]:
        """Evaluate ``model``; append a row to ``output_path``'s CSV file when given."""
        with eval_mode(model):
            metrics = self.compute_metrics(model)
        if output_path is not None and self.csv_file:
            append_csv(
                os.path.join(output_path, self.csv_file),
                ["epoch", "steps", *metrics],
                [epoch, steps, *metrics.values()],
            )
        prefixed = {self.prefixed(key): float(value) for key, value in metrics.items()}
        return prefixed

    def compute_metrics(self, model: SentenceTransformer) -> dict[str, float]:
        """Return the metrics, unprefixed."""
        raise NotImplementedError

    def prefixed(self, key: str) -> str:
        """``key`` with this evaluator's name in front."""
        return f"{self.name}_{key}" if self.name else key

    @property
    def primary_metric_name(self) -> str:
        """The primary metric's key in the dict a call returns."""
        return self.prefixed(self.primary_metric)

    @property
    def description(self) -> str:
        """What is measured, for the model card."""
        return type(self).__name__.removesuffix("Evaluator")


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Run the block with dropout off, restoring training mode after."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def append_csv(path: str, headers: list[str], row: list[Any]) -> None:
    """Append ``row`` to the CSV file at ``path``, writing ``headers`` first when it is new."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    new = not os.path.isfile(path)
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(headers)
        writer.writerow(row)
