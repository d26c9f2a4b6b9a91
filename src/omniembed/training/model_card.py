"""The model card a trained model saves as README.md: base model, losses, data, settings, results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from omniembed.training.trainer import Trainer

CARD_ARGUMENTS = (
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "seed",
    "bf16",
    "fp16",
    "batch_sampler",
    "prompts",
)
ModelSummary = tuple[str, tuple[str, ...], str]
"""What the model is ("reranker"), its hub tags, and one sentence on what it does."""


@dataclass
class TrainingRecord:
    """What the card reports, gathered during training."""

    base_model: str | None
    loss: str
    loss_config: dict[str, Any]
    train_rows: int | None
    eval_rows: int | None
    columns: list[str]
    hyperparameters: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    epoch: float = 0.0

    def render(self, summary: ModelSummary) -> str:
        """The card as Markdown."""
        kind, tags, sentence = summary
        lines = [
            "---",
            "library_name: omniembed",
            f"tags: [{', '.join(tags)}]",
            f"base_model: {self.base_model}" if self.base_model else "",
            "---",
            "",
            f"# Fine-tuned {kind}",
            "",
            f"Trained with omniembed from `{self.base_model or 'a model built in code'}`. {sentence} "
            "It loads in omniembed and in sentence-transformers.",
            "",
            "## Training",
            "",
            f"- Loss: `{self.loss}` with `{json.dumps(self.loss_config, default=str)}`",
            f"- Training rows: {self.train_rows}"
            + (f"; evaluation rows: {self.eval_rows}" if self.eval_rows else ""),
            f"- Columns: {', '.join(self.columns)}",
            f"- Steps: {self.steps} ({self.epoch:.2f} epochs)",
            "",
            "| hyperparameter | value |",
            "|---|---|",
            *(f"| {name} | {value} |" for name, value in self.hyperparameters.items()),
        ]
        if self.metrics:
            lines += ["", "## Evaluation (last)", "", "| metric | value |", "|---|---|"]
            lines += [f"| {name} | {value:.4f} |" for name, value in sorted(self.metrics.items())]
        return "\n".join(line for line in lines if line is not None) + "\n"


def training_record(trainer: Trainer) -> TrainingRecord:
    """Gather the card's facts from a trainer before training."""
    model, args, loss = trainer.model, trainer.args, trainer.loss
    train, evaluation = trainer.train_dataset, trainer.eval_dataset
    return TrainingRecord(
        base_model=getattr(model, "name_or_path", None),
        loss=type(loss).__name__,
        loss_config=loss.get_config_dict(),
        train_rows=len(train) if train is not None else None,  # type: ignore[arg-type]
        eval_rows=len(evaluation) if evaluation is not None else None,  # type: ignore[arg-type]
        columns=list(getattr(train, "column_names", None) or []),
        hyperparameters={
            name: getattr(args, name) for name in CARD_ARGUMENTS if getattr(args, name, None) is not None
        },
    )


class ModelCardCallback(TrainerCallback):
    """Keep the model's card (``model.model_card``) current through training and evaluation."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.record: TrainingRecord | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Gather the facts known before the first step."""
        self.record = training_record(self.trainer)
        self._write(state)

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Keep the latest evaluation numbers."""
        if self.record is None:
            self.record = training_record(self.trainer)
        metrics = kwargs.get("metrics") or {}
        self.record.metrics = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        self._write(state)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Count the steps taken (the card of a checkpoint says how far it got)."""
        self._write(state)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Write the final card."""
        self._write(state)

    def _write(self, state: TrainerState) -> None:
        if self.record is None:
            return
        self.record.steps = state.global_step
        self.record.epoch = float(state.epoch or 0)
        model: Any = self.trainer.model
        model.model_card = self.record.render(model_summary(model))


def model_summary(model: Any) -> ModelSummary:
    """What the trained model is, its hub tags, and one sentence on what it does, for its card."""
    dimension = getattr(model, "get_sentence_embedding_dimension", None)
    if dimension is None:
        sentence = f"It scores (query, document) pairs with {model.num_labels} output(s)."
        return "reranker", ("sentence-transformers", "cross-encoder", "text-ranking"), sentence
    sentence = (
        f"It maps text to {int(dimension())}-dimensional embeddings compared by "
        f"{model.similarity_fn_name} similarity."
    )
    return "embedding model", ("sentence-transformers", "sentence-similarity", "feature-extraction"), sentence
