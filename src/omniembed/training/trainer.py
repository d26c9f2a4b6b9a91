"""``Trainer``: transformers' Trainer for omniembed models, with losses and evaluators.

transformers runs the loop (optimizer, schedule, gradient accumulation, logging, checkpoints,
resume, devices); this class supplies what differs for embedding models: batches tokenized per
column, the loss computed by a loss module, evaluators run at each evaluation, and checkpoints
written as model folders the reference library also loads.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader
from transformers import Trainer as HFTrainer
from transformers import TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME

from omniembed.embedding.encoder import SentenceTransformer
from omniembed.training.arguments import TrainingArguments
from omniembed.training.data import Collator, check_dataset, split_batch
from omniembed.training.evaluators import Evaluator, SequentialEvaluator
from omniembed.training.losses import CoSENTLoss, EmbeddingLoss
from omniembed.training.model_card import ModelCardCallback
from omniembed.training.samplers import NoDuplicatesBatchSampler, ShuffledBatchSampler

if TYPE_CHECKING:
    from transformers.trainer_utils import EvalLoopOutput

_NO_EVAL_DATASET = "evaluator only"


class Trainer(HFTrainer):
    """Train a ``SentenceTransformer`` with a loss from ``omniembed.training.losses``.

    Args:
        model: the model to train (loaded with the torch backend in float32 or bfloat16).
        args: the training arguments (default: ``TrainingArguments("trainer_output")``).
        train_dataset: a ``datasets.Dataset`` whose columns fit the loss: the label column is the
            one named ``label``, ``labels``, ``score`` or ``scores``; every other column is text,
            in order (``(anchor, positive[, negative...])``, ``(sentence1, sentence2, score)``).
        eval_dataset: a dataset of the same shape, whose loss is reported at each evaluation.
        loss: the loss module, made with this same model (default: ``CoSENTLoss(model)``).
        evaluator: an evaluator (or a list, run in order) whose metrics are reported at each evaluation.
        callbacks: more transformers ``TrainerCallback``s.
        optimizers: an (optimizer, scheduler) pair to use instead of AdamW and the scheduler of ``args``.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        args: TrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: EmbeddingLoss | None = None,
        evaluator: Evaluator | list[Evaluator] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
    ) -> None:
        self.check_model(model)
        args = args if args is not None else TrainingArguments(output_dir="trainer_output")
        if not isinstance(args, TrainingArguments):
            raise TypeError(
                f"args must be omniembed.training.TrainingArguments, got {type(args).__name__}; "
                "it takes the same arguments as transformers' plus prompts and batch_sampler"
            )
        loss = loss if loss is not None else self.default_loss(model)
        self.check_loss(loss, model)
        for role, dataset in (("train", train_dataset), ("eval", eval_dataset)):
            if dataset is not None:
                check_dataset(dataset, loss.columns, type(loss).__name__, role)
        if isinstance(evaluator, list):
            evaluator = SequentialEvaluator(evaluator)
        if args.eval_strategy != "no" and eval_dataset is None and evaluator is None:
            raise ValueError(
                f"eval_strategy is {str(args.eval_strategy)!r} but there is nothing to evaluate: give an "
                "eval_dataset or an evaluator, or set eval_strategy='no'"
            )
        super().__init__(
            model=model,
            args=args,
            data_collator=self.make_collator(model, args),
            train_dataset=train_dataset,
            eval_dataset=eval_dataset if eval_dataset is not None or evaluator is None else _NO_EVAL_DATASET,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        if isinstance(self.eval_dataset, str) and self.eval_dataset == _NO_EVAL_DATASET:
            self.eval_dataset = None
        self.can_return_loss = True
        self.loss = loss.to(model.device)
        self.evaluator = evaluator
        self.add_callback(ModelCardCallback(self))

    @property
    def encoder(self) -> SentenceTransformer:
        """The model being trained."""
        assert isinstance(self.model, SentenceTransformer)
        return self.model

    @staticmethod
    def check_model(model: Any) -> None:
        """Raise unless this trainer can train ``model``."""
        check_model(model)

    @staticmethod
    def check_loss(loss: Any, model: Any) -> None:
        """Raise unless ``loss`` fits this trainer and was made with ``model``."""
        check_loss(loss, model)

    @staticmethod
    def default_loss(model: Any) -> Any:
        """The loss used when none is given."""
        return CoSENTLoss(model)

    @staticmethod
    def make_collator(model: Any, args: TrainingArguments) -> Any:
        """The function turning dataset rows into a batch."""
        return Collator(model, args.prompts)

    @property
    def training_args(self) -> TrainingArguments:
        """``args``, typed as this package's arguments."""
        assert isinstance(self.args, TrainingArguments)
        return self.args

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """Return the loss of a collated batch (and no outputs: the losses return none)."""
        features, labels = split_batch(inputs)
        value = self.loss(features, labels)
        return (value, {}) if return_outputs else value

    def create_optimizer(self, model: nn.Module | None = None) -> Any:
        """Optimize the loss module's parameters: the model's, and any the loss holds itself."""
        return super().create_optimizer(model if model is not None else self.loss)

    def get_train_dataloader(self) -> DataLoader[Any]:
        """Batches of the training set, shuffled from ``args.seed``, collated per column."""
        if self.train_dataset is None:
            raise ValueError("training needs a train_dataset")
        generator = torch.Generator()
        generator.manual_seed(self.args.seed)
        sampler: BatchSampler
        batch_size, drop_last = self.args.train_batch_size, self.args.dataloader_drop_last
        if self.training_args.batch_sampler == "no_duplicates":
            sampler = NoDuplicatesBatchSampler(self.train_dataset, batch_size, drop_last, seed=self.args.seed)
        else:
            sampler = ShuffledBatchSampler(self.train_dataset, batch_size, drop_last, generator)
        loader: DataLoader[Any] = self.accelerator.prepare(self._loader(self.train_dataset, sampler))
        return loader

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader[Any]:
        """Batches of the evaluation set in order; an empty loader when only an evaluator runs."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            if self.evaluator is not None:
                return DataLoader([])  # type: ignore[arg-type]
            raise ValueError("evaluation needs an eval_dataset or an evaluator")
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]  # type: ignore[index]
        sampler = BatchSampler(range(len(dataset)), self.args.eval_batch_size, drop_last=False)  # type: ignore[arg-type]
        loader: DataLoader[Any] = self.accelerator.prepare(self._loader(dataset, sampler))
        return loader

    def _loader(self, dataset: Any, sampler: BatchSampler) -> DataLoader[Any]:
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            persistent_workers=self.args.dataloader_persistent_workers,
            prefetch_factor=self.args.dataloader_prefetch_factor,
        )

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> EvalLoopOutput:
        """The eval dataset's loss (if any), then the evaluator's metrics, prefixed like the loss."""
        output = super().evaluation_loop(*args, **kwargs)
        if self.evaluator is None:
            return output
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        folder = None
        if self.is_world_process_zero():
            folder = os.path.join(self.args.output_dir or ".", "eval")
        epoch, steps = self.state.epoch or -1, self.state.global_step
        metrics = self.evaluator(self.model, output_path=folder, epoch=epoch, steps=steps)  # type: ignore[arg-type]
        found = output.metrics if output.metrics is not None else {}
        for key, value in metrics.items():
            found[key if key.startswith(f"{prefix}_") else f"{prefix}_{key}"] = value
        output = output._replace(metrics=found)
        return output

    def _save(self, output_dir: str | None = None, state_dict: dict[str, Any] | None = None) -> None:
        """Write the model as a model folder (the reference library loads it too)."""
        folder = output_dir if output_dir is not None else self.args.output_dir
        assert folder is not None
        os.makedirs(folder, exist_ok=True)
        model: Any = self.model
        model.save(folder)
        torch.save(self.args, os.path.join(folder, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Load the weights of a checkpoint folder that ``_save`` wrote into the model."""
        target = model if model is not None else self.model
        assert target is not None
        loaded = type(target)(resume_from_checkpoint, device="cpu")
        target.load_state_dict(loaded.state_dict())

    def _load_best_model(self) -> None:
        """Load the best checkpoint's weights (``load_best_model_at_end``)."""
        if self.state.best_model_checkpoint:
            self._load_from_checkpoint(self.state.best_model_checkpoint)


def check_model(model: Any) -> None:
    """Raise unless ``model`` is a SentenceTransformer whose network runs in torch, where it can learn."""
    if not isinstance(model, SentenceTransformer):
        raise TypeError(f"Trainer trains an omniembed SentenceTransformer, got {type(model).__name__}")
    runtime = model.runtime
    if runtime.resolved_backend() != "torch" or runtime.dtype == "int8":
        raise ValueError(
            f"this model runs with backend={runtime.resolved_backend()!r}, dtype={runtime.dtype!r}, which "
            "cannot learn: load it with the default backend='torch' and dtype='float32' to train it"
        )


def check_loss(loss: Any, model: SentenceTransformer) -> None:
    """Raise unless ``loss`` is one of the embedding losses and every model inside it is ``model``."""
    if not isinstance(loss, EmbeddingLoss):
        raise TypeError(
            f"loss must be one of omniembed.training.losses (such as CoSENTLoss(model)), "
            f"got {type(loss).__name__}"
        )
    for module in loss.modules():
        if isinstance(module, EmbeddingLoss) and module.model is not model:
            raise ValueError(
                f"{type(module).__name__} was made with a different model than the one given to the Trainer; "
                "make the loss with the model you train: loss = Loss(model)"
            )
