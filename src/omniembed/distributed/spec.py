"""What an embedding job runs: the model, how to load it, how to call it. Checked in the driver."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from omniembed.distributed.rows import Modality, OnBad

ModelClass = Literal["SentenceTransformer", "SparseEncoder", "MultiVectorEncoder"]
Task = Literal["query", "document"] | None
LOADERS: dict[str, str] = {
    "SentenceTransformer": "omniembed.embedding.encoder",
    "SparseEncoder": "omniembed.sparse.encoder",
    "MultiVectorEncoder": "omniembed.late_interaction.encoder",
}
"""The model classes a worker may load, by name, and the module each lives in."""
THREADED = ("SentenceTransformer", "SparseEncoder")
"""The classes whose constructor takes ``num_threads``."""


@dataclass(frozen=True)
class EmbedSpec:
    """Everything a worker needs to load its model once and embed batches of one column."""

    model: str
    model_class: ModelClass = "SentenceTransformer"
    column: str = "text"
    output_column: str = "embedding"
    modality: Modality = "text"
    task: Task = None
    on_bad: OnBad = "refuse"
    key_column: str | None = None
    num_cpus: float = 1.0
    device: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    encode_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def threads(self) -> int:
        """CPU threads a forward pass may use: the actor's share of the cores (at least one)."""
        return max(1, math.floor(self.num_cpus))

    def check(self) -> EmbedSpec:
        """Return the spec, or raise ``ValueError`` naming the option that cannot work."""
        if self.model_class not in LOADERS:
            raise ValueError(f"model_class {self.model_class!r} is not one of {sorted(LOADERS)}")
        if self.modality not in ("text", "image"):
            raise ValueError(f"modality must be 'text' or 'image', got {self.modality!r}")
        if self.modality == "image" and self.model_class != "SentenceTransformer":
            raise ValueError(f"{self.model_class} embeds texts only; images need a SentenceTransformer")
        if self.task not in ("query", "document", None):
            raise ValueError(f"task must be 'query', 'document' or None, got {self.task!r}")
        if self.on_bad not in ("refuse", "skip"):
            raise ValueError(f"on_bad must be 'refuse' or 'skip', got {self.on_bad!r}")
        if self.column == self.output_column:
            raise ValueError(f"output_column {self.output_column!r} would overwrite the input column")
        if self.num_cpus <= 0:
            raise ValueError(f"num_cpus must be positive, got {self.num_cpus!r}")
        taken = {"inputs", "show_progress_bar", "convert_to_numpy", "convert_to_tensor", "task"}
        clash = sorted(taken & set(self.encode_kwargs))
        if clash:
            raise ValueError(f"encode option(s) {clash} are set by embed itself; leave them out")
        if "num_threads" in self.model_kwargs:
            raise ValueError("num_threads follows num_cpus (each actor's share); set num_cpus instead")
        return self

    def constructor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the model class: the user's, the device and the thread limit."""
        kwargs = {**self.model_kwargs, "device": self.device or self.model_kwargs.get("device")}
        if self.model_class in THREADED and (self.device or "cpu").startswith("cpu"):
            kwargs["num_threads"] = self.threads
        return kwargs
