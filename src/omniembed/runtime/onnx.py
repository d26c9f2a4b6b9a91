"""Run the transformer network in ONNX Runtime: export once, cache, optionally quantize to int8.

Only the network moves to ONNX Runtime; tokenizing, pooling and the later modules stay in torch,
so they are the same code for every backend. ONNX Runtime runs a length-dynamic graph without
eager torch's per-operator dispatch, which makes fp32 faster on a CPU at the same numbers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from omniembed.errors import ModelFormatError, import_extra
from omniembed.modules import Features, Transformer
from omniembed.runtime.cache import cache_root, model_digest
from omniembed.runtime.onnx_attention import rewrite_applies, rewrite_attention

logger = logging.getLogger(__name__)

OPSET = 18
EXPORT_FORMAT = 2
"""Bumped when the way we export changes, so older cache entries are not reused."""


def import_onnxruntime() -> Any:
    """Import ``onnxruntime``, or raise ``MissingExtraError`` naming the extra."""
    return import_extra(
        "onnxruntime", "backend='onnx' and dtype='int8' need ONNX Runtime: pip install 'omniembed[onnx]'"
    )


class _Network(nn.Module):
    """The transformers model as a function of named tensors to ``last_hidden_state``, for export."""

    def __init__(self, model: nn.Module, names: tuple[str, ...], use_cache: bool) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.use_cache = use_cache

    def forward(self, *tensors: Tensor) -> Tensor:
        inputs: dict[str, Any] = dict(zip(self.names, tensors, strict=True))
        if self.use_cache:
            inputs["use_cache"] = False
        return self.model(**inputs, return_dict=True).last_hidden_state  # type: ignore[no-any-return]


def export(transformer: Transformer, path: Path) -> None:
    """Export ``transformer``'s network to ``path`` with dynamic batch and sequence axes."""
    names = transformer.model_inputs
    sample, _ = transformer.tokenize(["an example input to trace", "a second, longer example input to trace"])
    tensors = tuple(sample[name] for name in names if name in sample)
    names = tuple(name for name in names if name in sample)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    network = _Network(transformer.auto_model, names, transformer.passes_use_cache).eval()
    size = sum(p.numel() * p.element_size() for p in network.parameters())
    # The exporter reports its progress on stdout and warns about tracing details a user cannot act on.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                network,
                tensors,
                input_names=list(names),
                output_names=["last_hidden_state"],
                dynamic_shapes=(tuple({0: batch, 1: length} for _ in names),),
                opset_version=OPSET,
                dynamo=True,
                external_data=size > 1_500_000_000,
            )
        except Exception as error:
            raise ModelFormatError(
                f"could not export {type(transformer.auto_model).__name__} to ONNX ({error}); "
                "use backend='torch' for this model"
            ) from error
        assert program is not None
        program.save(str(path), external_data=size > 1_500_000_000)


def quantize_int8(source: Path, target: Path) -> None:
    """Quantize the weight matrix products of ``source`` to int8 (per channel), activations dynamically.

    Only products with a weight operand are quantized: quantizing the attention products of two
    activations costs accuracy for little speed.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    weights = {tensor.name for tensor in graph.initializer}
    nodes = [
        node.name
        for node in graph.node
        if node.op_type in ("MatMul", "Gemm") and any(name in weights for name in node.input)
    ]
    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_quantize=nodes,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextlib.contextmanager
def _quiet_root_logger() -> Any:
    # The quantizer logs a pre-processing hint on the root logger at WARNING level on every call.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def cached_model(
    transformer: Transformer,
    dtype: str,
    cache_folder: str | os.PathLike[str] | None,
    lighter_attention: bool = True,
) -> Path:
    """Return the cached ONNX file for ``transformer`` at ``dtype``, exporting it on the first use.

    With ``lighter_attention``, a BERT-family encoder's file has its attention rewritten
    (``runtime.onnx_attention``), which the float runtimes and dynamic int8 run faster with the same
    numbers; static int8 calibrates the export as it is (BENCHMARKS.md, "Attention in the ONNX
    export", has why).
    """
    ort = import_onnxruntime()
    options = {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "inputs": transformer.model_inputs,
    }
    folder = cache_root(cache_folder) / "onnx" / model_digest(transformer.auto_model, options)
    exported = folder / "model.onnx"
    lighter = lighter_attention and rewrite_applies(transformer)
    source = folder / "model.lighter-attention.onnx" if lighter else exported
    target = source if dtype == "float32" else folder / f"model.{dtype}.onnx"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    if not exported.is_file():
        logger.info(
            "exporting %s to %s (once; later loads reuse it)", type(transformer.auto_model).__name__, exported
        )
        _atomic(exported, lambda path: export(transformer, path))
    if not source.is_file():
        _atomic(source, lambda path: _write_lighter_attention(exported, path))
    if dtype == "int8":
        _atomic(target, lambda path: quantize_int8(source, path))
    return target


def _write_lighter_attention(exported: Path, path: Path) -> None:
    """Write ``exported`` with its attention rewritten (as it is where the rewrite does not apply)."""
    import onnx

    model = onnx.load(str(exported))
    if not rewrite_attention(model):
        logger.debug("%s: attention not in the expected shape, kept as exported", exported)
    onnx.save(model, str(path))


def _atomic(target: Path, write: Any) -> None:
    """Write through a temporary name in the same folder, so a crash never leaves a half file."""
    handle, name = tempfile.mkstemp(dir=target.parent, suffix=".onnx.partial")
    os.close(handle)
    try:
        write(Path(name))
        os.replace(name, target)
    finally:
        if os.path.exists(name):
            os.remove(name)


class OnnxNetwork:
    """Callable that adds ``token_embeddings`` to features by running an ONNX file in ONNX Runtime."""

    session: Any
    names: list[str]

    def __init__(self, path: Path, num_threads: int | None) -> None:
        self.path = path
        self.num_threads = num_threads
        self._open()

    def __getstate__(self) -> dict[str, Any]:
        # A session cannot be pickled; a pool worker reopens the cached file, with its own thread count.
        return {"path": self.path, "num_threads": self.num_threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.num_threads = state["num_threads"]
        self.session = None

    def _open(self) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.num_threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Memory patterns are planned per input shape, and token-budget batches come in many, so
        # they raise peak memory (BENCHMARKS.md, "Figures behind the runtime choices").
        options.enable_mem_pattern = False
        # Idle pool threads otherwise spin for a while after each run, taking the cores from torch
        # (tokenizing, pooling) and from other processes; the cost is a little latency per call.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.names = [node.name for node in self.session.get_inputs()]

    def __call__(self, features: Features) -> Features:
        """Run the network on the features' tensors (on the CPU)."""
        if self.session is None:
            self._open()
        feed = {name: np.ascontiguousarray(features[name].cpu().numpy()) for name in self.names}
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        features["token_embeddings"] = torch.from_numpy(hidden)
        return features
