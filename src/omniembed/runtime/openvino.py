"""Run the transformer network in OpenVINO's CPU runtime, from the cached ONNX export.

OpenVINO compiles the graph for the CPU it runs on, fusing attention and the feed-forward blocks.
``dtype="float32"`` asks for float32 inference explicitly (OpenVINO would otherwise pick bfloat16
on CPUs that have it), so the numbers stay the reference's; ``dtype="bfloat16"`` computes in
bfloat16 inside the network and still returns float32 token embeddings. A statically quantized
BERT-family model is also compiled with lighter attention for its long inputs (``openvino_attention``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from omniembed.errors import import_extra
from omniembed.modules import Features
from omniembed.runtime.openvino_attention import LONG_INPUT_TOKENS, lighten_attention

logger = logging.getLogger(__name__)

CALIBRATED_TOKENS = ["omniembed", "calibrated_tokens"]
"""Where a statically quantized model keeps the token count of its longest calibration text."""
LONGER_THAN_CALIBRATED = 2
"""Inputs over this many times the longest calibration text get a warning (once): their
activations may exceed the ranges the fixed scales were fitted on."""

PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}
"""OpenVINO's precision for what a model computes outside int8 (static int8 keeps the rest float32)."""


def import_openvino() -> Any:
    """Import ``openvino``, or raise ``MissingExtraError`` naming the extra."""
    return import_extra("openvino", "backend='openvino' needs OpenVINO: pip install 'omniembed[openvino]'")


class OpenVinoNetwork:
    """Callable that adds ``token_embeddings`` to features by running an ONNX file in OpenVINO.

    With ``lighten_long_inputs`` (a statically quantized, right-padded BERT-family model), inputs of
    ``LONG_INPUT_TOKENS`` or more run in a second compiled copy with lighter attention.
    """

    compiled: Any
    compiled_long: Any
    names: list[str]

    def __init__(
        self, path: Path, dtype: str, num_threads: int | None, lighten_long_inputs: bool = False
    ) -> None:
        self.path = path
        self.dtype = dtype
        self.num_threads = num_threads
        self.lighten_long_inputs = lighten_long_inputs
        self.calibrated_tokens: int | None = None
        self._warned = False
        self._open()

    def __getstate__(self) -> dict[str, Any]:
        # A compiled model cannot be pickled; a pool worker compiles the cached file again.
        return {
            "path": self.path,
            "dtype": self.dtype,
            "num_threads": self.num_threads,
            "lighten_long_inputs": self.lighten_long_inputs,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.compiled = self.compiled_long = None
        self.calibrated_tokens, self._warned = None, False

    def _open(self) -> None:
        openvino = import_openvino()
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": PRECISION_HINTS[self.dtype],
            "PERFORMANCE_HINT": "LATENCY",
            # Kernels are kept per input shape (5,000 by default); token-budget batches come in
            # dozens of shapes, and a smaller cache keeps peak memory down at the same speed
            # (BENCHMARKS.md, "Figures behind the runtime choices").
            "CPU_RUNTIME_CACHE_CAPACITY": 64,
        }
        if self.num_threads:
            config["INFERENCE_NUM_THREADS"] = self.num_threads
        core = openvino.Core()
        model = core.read_model(str(self.path))
        if model.has_rt_info(CALIBRATED_TOKENS):
            self.calibrated_tokens = model.get_rt_info(CALIBRATED_TOKENS).astype(int)
        self.compiled = core.compile_model(model, "CPU", config)
        self.names = [port.get_any_name() for port in self.compiled.inputs]
        self.compiled_long = None
        if self.lighten_long_inputs:
            lighter = model.clone()
            if lighten_attention(lighter, openvino):
                self.compiled_long = core.compile_model(lighter, "CPU", config)

    def __call__(self, features: Features) -> Features:
        """Run the network on the features' tensors (on the CPU)."""
        if self.compiled is None:
            self._open()
        if self.calibrated_tokens is not None and not self._warned:
            self._check_length(features)
        inputs = {name: features[name].cpu() for name in self.names}
        features["token_embeddings"] = self._hidden_states(inputs)
        return features

    def _hidden_states(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network's output; with a lightened copy, each input runs in the model its own length
        picks, so a batch across ``LONG_INPUT_TOKENS`` runs in two parts, each cut to its longest input."""
        if self.compiled_long is None:
            return _run(self.compiled, inputs)
        lengths = inputs["attention_mask"].sum(dim=1)
        long = lengths >= LONG_INPUT_TOKENS
        if bool(long.all()):
            return _run(self.compiled_long, inputs)
        if not bool(long.any()):
            return _run(self.compiled, inputs)
        parts = []
        for compiled, rows in ((self.compiled_long, long), (self.compiled, ~long)):
            index = rows.nonzero().squeeze(1)
            width = int(lengths[index].max())
            cut = {name: tensor[index, :width] for name, tensor in inputs.items()}
            parts.append((index, width, _run(compiled, cut)))
        batch, length = inputs["attention_mask"].shape
        hidden = parts[0][2].new_zeros((batch, length, parts[0][2].shape[-1]))
        for index, width, part in parts:
            hidden[index, :width] = part
        return hidden

    def _check_length(self, features: Features) -> None:
        """Warn, once, about inputs much longer than any text the static scales were fitted on."""
        longest = int(features["attention_mask"].sum(dim=1).max()) if "attention_mask" in features else 0
        calibrated = self.calibrated_tokens or 0
        if longest > LONGER_THAN_CALIBRATED * calibrated:
            self._warned = True
            logger.warning(
                "an input of %d tokens is over %d times the longest calibration text (%d tokens): static "
                "int8's activation scales may clip it; calibrate on texts of the lengths you encode",
                longest,
                LONGER_THAN_CALIBRATED,
                calibrated,
            )


def _run(compiled: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The first output of ``compiled`` on ``inputs``, as a tensor of its own."""
    # One request per call: requests hold state, and callers may run in several threads.
    request = compiled.create_infer_request()
    outputs = request.infer({name: tensor.numpy() for name, tensor in inputs.items()})
    return torch.from_numpy(outputs[compiled.outputs[0]].copy())
