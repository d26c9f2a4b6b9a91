"""``TrainingArguments``: transformers' training arguments plus the ones embedding training adds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from transformers import TrainingArguments as HFTrainingArguments

BatchSamplerName = Literal["batch_sampler", "no_duplicates"]


@dataclass
class TrainingArguments(HFTrainingArguments):
    """transformers' ``TrainingArguments`` (output folder, epochs, batch size, learning rate,
    schedule, evaluation and save steps, seed, ...) plus:

    Args:
        prompts: a prompt put before every text, or a prompt per column name
            (``{"anchor": "query: ", "positive": "passage: "}``), as ``encode(prompt=...)`` does.
        batch_sampler: ``"batch_sampler"`` (shuffled rows) or ``"no_duplicates"`` (no text twice in
            a batch: use it with in-batch negative losses).
        warmup_ratio: the share of steps spent warming up the learning rate (sets ``warmup_steps``).
    """

    prompts: str | dict[str, str] | None = field(default=None, metadata={"help": "Prompts per column."})
    batch_sampler: BatchSamplerName = field(
        default="batch_sampler", metadata={"help": "How rows form batches."}
    )
    warmup_ratio: float | None = field(default=None, metadata={"help": "Share of steps to warm up over."})

    def __post_init__(self) -> None:
        """Check the added arguments, then let transformers check its own."""
        if self.batch_sampler not in ("batch_sampler", "no_duplicates"):
            raise ValueError(
                f"batch_sampler {self.batch_sampler!r} is not known; use 'batch_sampler' or 'no_duplicates'"
            )
        if self.warmup_ratio is not None:
            if not 0 <= self.warmup_ratio < 1:
                raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
            if self.warmup_steps == 0:
                self.warmup_steps = self.warmup_ratio  # a float below 1 is a ratio to transformers
        super().__post_init__()  # type: ignore[no-untyped-call]
        # The losses return the loss only; predictions have no meaning for the Trainer.
        self.prediction_loss_only = True
