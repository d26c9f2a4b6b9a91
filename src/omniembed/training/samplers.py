"""Batch samplers: shuffled batches, and batches in which no text appears twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import BatchSampler, RandomSampler

from omniembed.training.data import LABEL_COLUMNS


class ShuffledBatchSampler(BatchSampler):
    """Rows in a random order (from ``generator``), ``batch_size`` at a time."""

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, generator: torch.Generator) -> None:
        super().__init__(RandomSampler(range(len(dataset)), generator=generator), batch_size, drop_last)

    def set_epoch(self, epoch: int) -> None:
        """Kept for the trainer, which calls it each epoch; the generator moves on by itself."""


class NoDuplicatesBatchSampler(BatchSampler):
    """Shuffled batches in which no text value occurs twice (across every text column).

    With in-batch negatives, a text repeated in one batch would be a negative of its own anchor.
    Rows that would repeat a value wait for a later batch; the order is drawn from ``seed + epoch``.
    """

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, seed: int = 0) -> None:
        super().__init__(range(len(dataset)), batch_size, drop_last)
        columns = [name for name in dataset.column_names if name not in LABEL_COLUMNS]
        self.values = [
            tuple(str(value) for value in row)
            for row in zip(*(dataset[name] for name in columns), strict=True)
        ]
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next epoch's order from ``seed + epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        waiting = torch.randperm(len(self.values), generator=generator).tolist()
        while waiting:
            batch: list[int] = []
            seen: set[str] = set()
            later: list[int] = []
            for index in waiting:
                row = self.values[index]
                if len(batch) < self.batch_size and seen.isdisjoint(row):
                    batch.append(index)
                    seen.update(row)
                else:
                    later.append(index)
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch
            waiting = later
