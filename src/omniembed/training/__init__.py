"""Fine-tune embedding models: ``Trainer``, ``TrainingArguments``, ``losses`` and ``evaluators``;
``mine_hard_negatives``; rerankers in ``omniembed.training.rerank``; multilingual distillation rows
in ``omniembed.training.distillation``.

``Trainer``, ``TrainingArguments`` and ``mine_hard_negatives`` need the ``train`` extra
(``datasets`` and ``accelerate``): ``pip install 'omniembed[train]'``. The losses and evaluators
need only torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omniembed.training import evaluators, losses

if TYPE_CHECKING:
    from omniembed.training.arguments import TrainingArguments
    from omniembed.training.hard_negatives import mine_hard_negatives
    from omniembed.training.trainer import Trainer

__all__ = ["Trainer", "TrainingArguments", "evaluators", "losses", "mine_hard_negatives"]


def __getattr__(name: str) -> Any:
    if name not in ("Trainer", "TrainingArguments", "mine_hard_negatives"):
        raise AttributeError(f"module 'omniembed.training' has no attribute {name!r}")
    from omniembed.errors import MissingExtraError

    try:
        import accelerate  # noqa: F401
        import datasets  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(
            f"omniembed.training.{name} needs the train extra ({error.name} is missing): "
            "pip install 'omniembed[train]'"
        ) from error
    if name == "Trainer":
        from omniembed.training.trainer import Trainer

        return Trainer
    if name == "mine_hard_negatives":
        from omniembed.training.hard_negatives import mine_hard_negatives

        return mine_hard_negatives
    from omniembed.training.arguments import TrainingArguments

    return TrainingArguments
